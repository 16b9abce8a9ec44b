"""The schedules and triggers pages in headless Chromium against a real server process:
create, see the next fire times, pause and resume, edit with a refusal, the history of
firings linked to what they started; at 1280, 800 and 400 px."""

import json
import re

import pytest

from .conftest import SCREENSHOTS, screenshot

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is missing: pip install -r requirements-dev.txt"
)
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
# Its own project: the other browser tests count the tasks of the seeded ones.
PROJECT = "automation pages"

FIRE_TICKS = """
import json
from datetime import timedelta
from webapp.automation import schedules
from webapp.automation.models import Schedule
schedule = Schedule.objects.get(name={name!r})
schedules.fire(schedule.pk, schedule.next_tick + timedelta(seconds=1))
print("FIRED", json.dumps(list(schedule.firings.values_list("state", flat=True))))
"""


def _draft(server, name: str) -> dict:
    response = server.api().post(
        f"{server.url}/api/v1/tasks/",
        json={
            "project_name": PROJECT,
            "name": name,
            "hyperparameters": {"General": {"lr": 0.1}},
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def _at_800(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    page.set_viewport_size({"width": 800, "height": 900})
    page.screenshot(path=str(SCREENSHOTS / f"{name}-800.png"), full_page=True)
    page.set_viewport_size(original)


def test_a_schedule_is_created_paused_resumed_and_shows_its_history(page, dashboard_server):
    server = dashboard_server
    base = _draft(server, "nightly retrain")
    page.goto(f"{server.url}/schedules/")
    expect(page.locator("nav.sidenav a[data-menu=schedules]")).to_have_class(re.compile("active"))
    page.click("text=New schedule")
    page.fill("#id_name", "nightly retrain")
    page.check("input[name=target_kind][value=task]")
    page.select_option("#id_base_task", base["id"])
    page.fill("#id_task_parameters", "General/lr=0.5")
    page.fill("#id_cron", "30 2 * * *")
    page.fill("#id_timezone", "Europe/Riga")
    page.select_option("#id_overlap", "skip")
    _at_800(page, "schedule-new")
    page.click("button:has-text('Create schedule')")
    expect(page.locator(".message-success")).to_contain_text("created")
    expect(page.locator("#upcoming li")).to_have_count(5)
    # 02:30 in Riga is 00:30 UTC in winter and 23:30 UTC in summer.
    for text in page.locator("#upcoming li").all_inner_texts():
        assert re.search(r" (00|23):30:00 UTC$", text), text
    screenshot(page, "schedule-detail")
    _at_800(page, "schedule-detail")

    page.click("#pause-toggle")
    expect(page.locator(".task-title .pill")).to_have_text("paused")
    expect(page.locator("#upcoming")).to_contain_text("none while paused")
    page.click("#pause-toggle")
    expect(page.locator(".task-title .pill")).to_have_text("active")

    # A refused edit names the field and keeps the page.
    page.click("#edit summary")
    page.fill("#schedule-form #id_cron", "every night")
    page.click("#schedule-form button:has-text('Save')")
    expect(page.locator("[data-field=cron] .error")).to_contain_text("cron:")
    screenshot(page, "schedule-edit-refused", narrow=False)

    # The server worker's firing, run in the server's own environment, shows in the history.
    out = server.manage("shell", "-c", FIRE_TICKS.format(name="nightly retrain"))
    assert json.loads(re.search(r"FIRED (.*)", out).group(1)) == ["launched"]
    page.goto(page.url)
    row = page.locator("#firings tbody tr[data-state=launched]")
    expect(row).to_have_count(1)
    screenshot(page, "schedule-history")
    row.locator("a:has-text('task')").click()
    expect(page).to_have_url(re.compile(r".*/tasks/[0-9a-f]{32}/$"))
    expect(page.locator(".task-title h1")).to_contain_text("nightly retrain")

    page.goto(f"{server.url}/schedules/")
    expect(page.locator("#schedules tr[data-schedule='nightly retrain']")).to_contain_text("active")
    screenshot(page, "schedules")
    _at_800(page, "schedules")
    # Buttons are POST forms with the CSRF token: without it, nothing changes.
    schedule_url = page.locator("#schedules a:has-text('nightly retrain')").get_attribute("href")
    refused = page.request.post(f"{server.url}{schedule_url}pause/")
    assert refused.status == 403
    page.goto(f"{server.url}{schedule_url}")
    expect(page.locator(".task-title .pill")).to_have_text("active")


def test_a_trigger_is_created_from_the_form_and_listed(page, dashboard_server):
    server = dashboard_server
    base = _draft(server, "evaluate")
    page.goto(f"{server.url}/triggers/new/")
    page.fill("#id_name", "evaluate after training")
    page.select_option("#id_source", "task")
    page.select_option("#id_event", "status")
    page.check("input[name=statuses][value=completed]")
    page.select_option("#id_watch_project", PROJECT)
    page.fill("#id_name_pattern", "^train")
    page.check("input[name=target_kind][value=task]")
    page.select_option("#id_base_task", base["id"])
    page.fill("#id_task_parameters", "General/model=${trigger.artifacts.model.url}")
    page.click("button:has-text('Create trigger')")
    expect(page.locator(".message-success")).to_contain_text("created")
    expect(page.locator("dl.kv")).to_contain_text(f"a task in {PROJECT} ends completed")
    screenshot(page, "trigger-detail")
    page.goto(f"{server.url}/triggers/")
    expect(page.locator("#triggers tr[data-trigger='evaluate after training']")).to_be_visible()
    screenshot(page, "triggers")
    _at_800(page, "triggers")
