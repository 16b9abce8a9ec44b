import pytest

from webapp.core import services
from webapp.plugins.execution.tabs import _requirements


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ({"requirements": ["numpy==2", "pandas"]}, ["numpy==2", "pandas"]),
        ({"requirements": "numpy==2\n\npandas\n"}, ["numpy==2", "pandas"]),
        ({"requirements": {"pip": ["torch"]}}, ["torch"]),
        ({"requirements": {"pip": "a\nb"}}, ["a", "b"]),
        ({}, []),
    ],
)
def test_requirements_are_read_in_every_stored_shape(script, expected):
    assert _requirements(script) == expected


def test_execution_tab_shows_the_script_and_where_it_runs(admin_client, task):
    services.enqueue_task(task, "gpu")
    page = admin_client.get(f"/tasks/{task.id}/execution/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "train.py" in body
    assert "print(&#x27;hi&#x27;)" in body
    assert "numpy" in body
    assert "gpu" in body
    assert "1 of 1" in body  # attempt
