"""The dashboard's schedule and trigger pages through Django's test client: forms call the
verbs, buttons are POST-only, other teams' rows are 404."""

import pytest

from tests.factories import make_base_task
from webapp.automation import schedules, triggers
from webapp.automation.models import Schedule, Trigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def base(admin_user):
    return make_base_task(admin_user, "nightly", params={"lr": "0.1"})


def test_a_schedule_is_created_edited_paused_and_shown_with_its_next_ticks(admin_client, base):
    page = admin_client.get("/schedules/new/")
    assert page.status_code == 200 and base.pk in page.content.decode()
    answer = admin_client.post(
        "/schedules/new/",
        {
            "name": "nightly",
            "target_kind": "task",
            "base_task": base.pk,
            "queue": "default",
            "task_parameters": "General/lr=0.5",
            "cron": "30 2 * * *",
            "timezone": "Europe/Riga",
            "overlap": "skip",
            "missed": "run_once",
        },
    )
    schedule = Schedule.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/schedules/{schedule.pk}/"
    assert schedule.task_parameters == {"General/lr": "0.5"}
    detail = admin_client.get(f"/schedules/{schedule.pk}/").content.decode()
    assert detail.count(" UTC</li>") == 5 and "Europe/Riga" in detail
    # A bad edit shows the verb's refusal on the form and changes nothing.
    bad = admin_client.post(
        f"/schedules/{schedule.pk}/",
        {**_form(schedule), "cron": "not a cron"},
    )
    assert bad.status_code == 200 and "cron:" in bad.content.decode()
    assert admin_client.get(f"/schedules/{schedule.pk}/pause/").status_code == 405
    admin_client.post(f"/schedules/{schedule.pk}/pause/")
    assert Schedule.objects.get().paused
    listing = admin_client.get("/schedules/").content.decode()
    assert "nightly" in listing and "paused" in listing


def _form(schedule):
    return {
        "name": schedule.name,
        "target_kind": schedule.target_kind,
        "base_task": schedule.base_task_id,
        "queue": schedule.queue,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "overlap": schedule.overlap,
        "missed": schedule.missed,
    }


def test_a_trigger_form_names_the_field_it_refuses(admin_client, base):
    answer = admin_client.post(
        "/triggers/new/",
        {
            "name": "on failure",
            "source": "task",
            "event": "status",
            "target_kind": "task",
            "base_task": base.pk,
            "sign": "max",
        },
    )
    assert answer.status_code == 200 and "statuses: one or more of" in answer.content.decode()
    answer = admin_client.post(
        "/triggers/new/",
        {
            "name": "on failure",
            "source": "task",
            "event": "status",
            "statuses": ["failed"],
            "target_kind": "task",
            "base_task": base.pk,
            "task_parameters": "General/lr=${trigger.parameters.General/lr}",
            "sign": "max",
        },
    )
    trigger = Trigger.objects.get()
    assert answer.status_code == 302 and trigger.statuses == ["failed"]
    assert "ends failed" in admin_client.get(f"/triggers/{trigger.pk}/").content.decode()


def test_other_teams_schedules_and_triggers_are_not_found(stranger_client, admin_user, base):
    schedule = schedules.create_schedule(
        user=admin_user, name="s", base_task=base.pk, interval_seconds=60
    )
    trigger = triggers.create_trigger(
        user=admin_user, name="t", base_task=base.pk, event="tags", on_tags=["x"]
    )
    for url in (
        f"/schedules/{schedule.pk}/",
        f"/triggers/{trigger.pk}/",
    ):
        assert stranger_client.get(url).status_code == 404
    for url in (f"/schedules/{schedule.pk}/pause/", f"/triggers/{trigger.pk}/delete/"):
        assert stranger_client.post(url).status_code == 404
    assert "nightly" not in stranger_client.get("/schedules/").content.decode()
    assert Trigger.objects.filter(pk=trigger.pk).exists()


def test_secret_parameter_values_are_masked_on_the_page_and_kept_when_saved_back(
    admin_client, base
):
    schedule = schedules.create_schedule(
        user=base.created_by,
        name="with a secret",
        base_task=base.pk,
        interval_seconds=60,
        task_parameters={"General/db_password": "hunter2", "General/lr": "0.5"},
    )
    page = admin_client.get(f"/schedules/{schedule.pk}/").content.decode()
    assert "hunter2" not in page and "General/db_password=********" in page
    # The edit form holds the mask; saving it back keeps the stored value.
    admin_client.post(
        f"/schedules/{schedule.pk}/",
        {
            **_form(schedule),
            "interval_seconds": "60",
            "cron": "",
            "task_parameters": "General/db_password=********\nGeneral/lr=0.7",
        },
    )
    schedule.refresh_from_db()
    assert schedule.task_parameters == {"General/db_password": "hunter2", "General/lr": "0.7"}
    api = admin_client.get(f"/api/v1/schedules/{schedule.pk}/").json()
    assert api["task_parameters"]["General/db_password"] == "********"
