"""The admin saves schedules and triggers through the verbs, and refuses what they refuse."""

import pytest

from tests.factories import make_base_task
from webapp.automation.models import Schedule, Trigger

pytestmark = pytest.mark.django_db


def _schedule_form(base, **changes):
    return {
        "name": "admin nightly",
        "target_kind": "task",
        "base_task": base.pk,
        "queue": "default",
        "task_parameters": "{}",
        "pipeline_parameters": "{}",
        "tags": "[]",
        "cron": "0 3 * * *",
        "timezone": "UTC",
        "overlap": "skip",
        "missed": "run_once",
        "firings-TOTAL_FORMS": "0",
        "firings-INITIAL_FORMS": "0",
        **changes,
    }


def test_the_admin_creates_through_the_verb_and_refuses_a_bad_cron(admin_client, admin_user):
    base = make_base_task(admin_user, "nightly")
    bad = admin_client.post("/admin/automation/schedule/add/", _schedule_form(base, cron="99 *"))
    assert bad.status_code == 200 and "cron:" in bad.content.decode()
    assert not Schedule.objects.exists()
    good = admin_client.post("/admin/automation/schedule/add/", _schedule_form(base))
    assert good.status_code == 302, good.content.decode()[:2000]
    schedule = Schedule.objects.get()
    assert schedule.next_tick is not None and schedule.created_by == admin_user
    assert schedule.project == base.project
    edited = admin_client.post(
        f"/admin/automation/schedule/{schedule.pk}/change/",
        _schedule_form(base, cron="", interval_seconds="30"),
    )
    assert edited.status_code == 302
    schedule.refresh_from_db()
    assert (schedule.cron, schedule.interval_seconds) == ("", 30.0)
    page = admin_client.get(f"/admin/automation/schedule/{schedule.pk}/change/")
    assert page.status_code == 200


def test_the_admin_pauses_triggers_with_the_verb(admin_client, admin_user):
    from webapp.automation import triggers

    base = make_base_task(admin_user, "follow up")
    trigger = triggers.create_trigger(
        user=admin_user, name="t", base_task=base.pk, event="tags", on_tags=["go"]
    )
    admin_client.post(
        "/admin/automation/trigger/",
        {"action": "pause", "_selected_action": [trigger.pk]},
    )
    assert Trigger.objects.get().paused
    assert admin_client.get(f"/admin/automation/trigger/{trigger.pk}/change/").status_code == 200
