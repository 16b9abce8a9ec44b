from webapp.core import execution
from webapp.plugins.console.tabs import TAIL_LINES


def test_console_lines_are_served_after_a_sequence_number(admin_client, task):
    execution.append_log(task, [{"text": f"line {i}"} for i in range(5)])
    first = admin_client.get(f"/tasks/{task.id}/console-lines/?since=-1").json()
    assert [line["text"] for line in first["lines"]] == [f"line {i}" for i in range(5)]
    assert first["next"] == 4 and first["more"] is False
    execution.append_log(task, [{"text": "late", "stream": "stderr"}])
    later = admin_client.get(f"/tasks/{task.id}/console-lines/?since=4").json()
    assert later["lines"] == [{"seq": 5, "stream": "stderr", "text": "late"}]
    assert admin_client.get(f"/tasks/{task.id}/console-lines/?since=x").json()["next"] == 5


def test_a_long_console_starts_near_its_end(admin_client, task):
    execution.append_log(task, [{"text": str(i)} for i in range(TAIL_LINES + 10)])
    page = admin_client.get(f"/tasks/{task.id}/console/")
    assert page.context["since"] == 9
    assert b"Showing the last lines only" in page.content


def test_strangers_get_404(stranger_client, task):
    assert stranger_client.get(f"/tasks/{task.id}/console-lines/").status_code == 404
