"""Schedules and triggers follow the API's rules: a person's own credentials only (what
they start runs as their owner), another team's rows and base tasks answer exactly like
missing ones, and a trigger never sees another team's tasks."""

import pytest

from webapp.automation.models import Schedule, Trigger, TriggerFiring
from webapp.core import services

pytestmark = pytest.mark.django_db


def _schedule_body(base_id, **extra):
    return {"name": "nightly", "base_task": base_id, "interval_seconds": 60, **extra}


def test_worker_and_task_keys_cannot_set_up_or_read_schedules_and_triggers(world):
    base = world.objects["base"].id
    for key in ("worker", "task"):
        client = world.client(key)
        assert (
            client.post("/api/v1/schedules/", _schedule_body(base), format="json").status_code
            == 403
        )
        trigger = {"name": "t", "base_task": base, "event": "tags", "on_tags": ["x"]}
        assert client.post("/api/v1/triggers/", trigger, format="json").status_code == 403
        assert client.get("/api/v1/schedules/").status_code == 403
    assert not Schedule.objects.exists() and not Trigger.objects.exists()


def test_another_teams_schedules_and_base_tasks_answer_like_missing_ones(world):
    alice, bob = world.client("alice"), world.client("bob")
    base = world.objects["base"].id
    created = alice.post("/api/v1/schedules/", _schedule_body(base), format="json")
    assert created.status_code == 201, created.json()
    schedule = created.json()
    assert schedule["project"] == "red/private" and len(schedule["upcoming"]) == 5
    foreign = bob.post("/api/v1/schedules/", _schedule_body(base), format="json")
    missing = bob.post("/api/v1/schedules/", _schedule_body("0" * 32), format="json")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    for call in (
        lambda path: bob.get(path),
        lambda path: bob.patch(path, {"paused": True}, format="json"),
        lambda path: bob.delete(path),
        lambda path: bob.post(f"{path}pause/"),
        lambda path: bob.get(f"{path}firings/"),
    ):
        assert call(f"/api/v1/schedules/{schedule['id']}/").status_code == 404
        assert call(f"/api/v1/schedules/{'f' * 32}/").status_code == 404
    assert bob.get("/api/v1/schedules/").json()["results"] == []
    assert Schedule.objects.get().paused is False


def test_bad_bodies_are_400_naming_the_field_and_store_nothing(world):
    alice = world.client("alice")
    base = world.objects["base"].id
    for body, field in (
        (_schedule_body(base, interval_seconds=None, cron="* * *"), "cron"),
        (_schedule_body(base, timezone="Nowhere/Land"), "timezone"),
        (_schedule_body(base, interval_seconds=-5), "interval_seconds"),
        (_schedule_body(base, interval_seconds=1e308), "interval_seconds"),
        (_schedule_body(base, overlap="sometimes"), "overlap"),
        (_schedule_body(base, task_parameters={"x": {"nested": 1}}), "task_parameters"),
        (_schedule_body(base, task_parameters={"x": "${trigger.id}"}), "task_parameters"),
        (_schedule_body(base, queue="no/slashes/allowed"), None),
        (
            {"name": "p", "pipeline_name": "nope", "pipeline_project": "x", "cron": "* * * * *"},
            "pipeline_name",
        ),
    ):
        answer = alice.post("/api/v1/schedules/", body, format="json")
        assert answer.status_code in (400, 404), (body, answer.json())
        detail = answer.json()
        assert field is None or detail.get("field") == field or field in detail.get("fields", {}), (
            detail
        )
    assert not Schedule.objects.exists()


def test_a_trigger_without_a_project_never_fires_on_another_teams_tasks(world):
    bob = world.client("bob")
    bobs_base = services.create_task(user=world.bob, project_name="blue/own", name="b")
    answer = bob.post(
        "/api/v1/triggers/",
        {
            "name": "anything that completes",
            "base_task": bobs_base.id,
            "event": "status",
            "statuses": ["completed"],
            "task_parameters": {"General/spy": "${trigger.id}"},
        },
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    services.mark_completed(world.objects["running"])  # alice's task ends
    assert not TriggerFiring.objects.exists()
