"""The "Rerun from a step" page and the diff page, through Django's test client: what they
show, the plan, a start (once, however often the form is sent), CSRF, other teams."""

import re

import pytest
from django.test import Client

from tests.factories import make_user
from tests.unit.test_engine_rerun import _complete, _start, _steps, bases  # noqa: F401
from webapp.core.models import PipelineRun, Team

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    user = make_user()
    user.set_password("pw")
    user.save()
    return user


@pytest.fixture
def browser_client(user):
    client = Client()
    client.force_login(user)
    return client


def _form(client, run, step="stage_process"):
    page = client.get(f"/pipelines/runs/{run.id}/rerun-from/", {"step": step})
    assert page.status_code == 200
    html = page.content.decode()
    token = re.search(r'name="token" value="(\w+)"', html).group(1)
    return html, token


def test_the_page_shows_the_plan_and_starts_the_rerun_once(user, bases, browser_client):  # noqa: F811
    first = _complete(_start(user, _steps()))
    run_page = browser_client.get(f"/pipelines/runs/{first.id}/").content.decode()
    assert f"/pipelines/runs/{first.id}/rerun-from/" in run_page
    assert f"/pipelines/runs/{first.id}/diff/" in run_page
    html, token = _form(browser_client, first)
    assert 'name="edit|stage_process|General/test_size" value="0.25"' in html
    assert 'name="edit|stage_train|General/dataset_task_id"' not in html  # a reference
    assert "edit|stage_data|" not in html  # above the step: reused
    body = {
        "step": "stage_process",
        "token": token,
        "edit|stage_process|General/test_size": "0.3",
        "action": "plan",
    }
    plan = browser_client.post(f"/pipelines/runs/{first.id}/rerun-from/", body).content.decode()
    assert 'data-step="stage_data" data-outcome="reused"' in plan
    assert 'data-step="stage_process" data-outcome="ran"' in plan
    assert "parameter `General/test_size` changed from 0.25 to 0.3" in plan
    assert PipelineRun.objects.count() == 1
    body["action"] = "start"
    started = browser_client.post(f"/pipelines/runs/{first.id}/rerun-from/", body)
    again = browser_client.post(f"/pipelines/runs/{first.id}/rerun-from/", body)
    assert started.status_code == 302 and again["Location"] == started["Location"]
    new = PipelineRun.objects.exclude(pk=first.pk).get()
    assert started["Location"] == f"/pipelines/runs/{new.id}/"
    assert new.rerun_of_id == first.id
    step = next(s for s in new.steps if s["name"] == "stage_process")
    assert step["parameter_override"]["General/test_size"] == 0.3  # typed, not text
    page = browser_client.get(f"/pipelines/runs/{new.id}/").content.decode()
    assert f"rerun of {first.id[:8]}" in page

    diff = browser_client.get(f"/pipelines/runs/{new.id}/diff/").content.decode()
    assert 'data-step="stage_data" data-same="1"' in diff
    assert 'data-param="General/test_size" class="differs"' in diff


def test_the_pages_refuse_bad_steps_csrf_and_other_teams(user, bases, browser_client):  # noqa: F811
    first = _complete(_start(user, _steps()))
    url = f"/pipelines/runs/{first.id}/rerun-from/"
    missing = browser_client.post(url, {"step": "nope", "action": "start"})
    assert missing.status_code == 400 and "no step" in missing.content.decode()
    # a field the page did not show (a step above, a parameter the step lacks) is ignored
    forged = {"step": "stage_process", "action": "plan", "edit|stage_data|General/x": "1"}
    plan = browser_client.post(url, forged).content.decode()
    assert 'data-step="stage_data" data-outcome="reused"' in plan
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(url, {"step": "stage_process", "action": "start"}).status_code == 403
    stranger = make_user("mallory")
    Team.objects.create(name="theirs").members.add(stranger)
    other = Client()
    other.force_login(stranger)
    assert other.get(url).status_code == 404
    assert other.post(url, {"step": "stage_process", "action": "start"}).status_code == 404
    assert other.get(f"/pipelines/runs/{first.id}/diff/").status_code == 404
    assert PipelineRun.objects.count() == 1
    running = _start(user, _steps())
    page = browser_client.post(
        f"/pipelines/runs/{running.id}/rerun-from/", {"step": "stage_process", "action": "start"}
    )
    assert page.status_code == 400 and "still running" in page.content.decode()
