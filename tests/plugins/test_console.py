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
    for nonsense in ("x", "-2", "1.5"):
        response = admin_client.get(f"/tasks/{task.id}/console-lines/?since={nonsense}")
        assert response.status_code == 400 and response.json()["error"] == "invalid"


def test_earlier_lines_come_in_batches_before_a_seq_oldest_first(admin_client, task):
    execution.append_log(task, [{"text": f"line {i}"} for i in range(2_500)])
    url = f"/tasks/{task.id}/console-lines/"
    batch = admin_client.get(url, {"before": 2_000}).json()
    assert [line["seq"] for line in batch["lines"]] == list(range(1_000, 2_000))
    assert batch["first"] == 1_000 and batch["more"] is True
    last = admin_client.get(url, {"before": batch["first"]}).json()
    assert last["lines"][0]["text"] == "line 0" and last["more"] is False
    assert admin_client.get(url, {"before": "-1"}).status_code == 400


def test_search_reads_the_whole_console_and_download_sends_every_line(admin_client, task):
    execution.append_log(task, [{"text": f"step {i} loss {i / 10}"} for i in range(12_000)])
    execution.append_log(task, [{"text": "Traceback: boom", "stream": "stderr"}])
    found = admin_client.get(f"/tasks/{task.id}/console-search/", {"q": "traceback"}).json()
    assert found["lines"] == [{"seq": 12_000, "stream": "stderr", "text": "Traceback: boom"}]
    many = admin_client.get(f"/tasks/{task.id}/console-search/", {"q": "loss"}).json()
    assert len(many["lines"]) == 500 and many["more"] is True
    assert admin_client.get(f"/tasks/{task.id}/console-search/", {"q": ""}).status_code == 400
    response = admin_client.get(f"/tasks/{task.id}/console-download/")
    assert response["Content-Disposition"].startswith('attachment; filename="subject-')
    text = b"".join(response.streaming_content).decode()
    assert text.splitlines()[0] == "step 0 loss 0.0"
    assert text.splitlines()[-1] == "Traceback: boom" and len(text.splitlines()) == 12_001


def test_a_long_console_starts_near_its_end(admin_client, task):
    execution.append_log(task, [{"text": str(i)} for i in range(TAIL_LINES + 10)])
    page = admin_client.get(f"/tasks/{task.id}/console/")
    assert page.context["since"] == 9
    assert b"Showing the last lines only" in page.content


def test_strangers_get_404(stranger_client, task):
    assert stranger_client.get(f"/tasks/{task.id}/console-lines/").status_code == 404
    for feed in ("console-search/?q=a", "console-download/"):
        assert stranger_client.get(f"/tasks/{task.id}/{feed}").status_code == 404
