"""R52-R55: one permission table (webapp/core/policy.py) for both doors, walked on a live
server. Every registered ClearML endpoint (webapp.compat.registry.HANDLERS, so a new one is
walked as soon as it exists) and every REST action that changes something is called with
a key of every kind against team red's objects; each answer must be the one the table
gives that kind: allowed, forbidden (403) or not found, and a refused call changes no row.
"""

import base64
import json
import time
import uuid

import pytest
import requests

from tests.security.doors import KINDS, MARKERS, changed_tables, db_state, expected
from webapp.compat import scroll
from webapp.compat.registry import HANDLERS, PUBLIC, VERBS

pytestmark = pytest.mark.e2e


def _event(task: str) -> dict:
    return {"type": "log", "task": task, "msg": "a line", "level": "info"}


# Bodies per endpoint, aimed at `t` (the target's ids: task, model) of team red. An
# endpoint not listed gets DEFAULT_BODY: the target in every field endpoints look at.
def DEFAULT_BODY(d, t):  # noqa: N802 - a constant-like default
    return {"task": t["task"], "tasks": [t["task"]], "id": [t["task"]], "force": True}


BODIES = {
    "events.add": lambda d, t: _event(t["task"]),
    "events.add_batch": lambda d, t: {"events": None},  # sent as JSON lines, see _call
    "models.add_or_update_metadata": lambda d, t: {
        "model": t["model"],
        "metadata": [{"key": "k", "value": "v", "type": "str"}],
    },
    "models.create": lambda d, t: {"name": "m", "uri": "s3://b/x", "task": t["task"]},
    "models.delete": lambda d, t: {"model": t["model"]},
    "models.edit": lambda d, t: {"model": t["model"], "comment": "edited"},
    "models.update": lambda d, t: {"model": t["model"], "comment": "edited"},
    "models.get_all": lambda d, t: {"id": [t["model"]]},
    "models.get_all_ex": lambda d, t: {"id": [t["model"]]},
    "models.get_by_id": lambda d, t: {"model": t["model"]},
    # Publishing the model's task as well is the task's own verb, walked as tasks.publish.
    "models.set_ready": lambda d, t: {"model": t["model"], "publish_task": False},
    "models.publish_many": lambda d, t: {"ids": [t["model"]], "publish_task": False},
    "models.archive_many": lambda d, t: {"ids": [t["model"]]},
    "models.unarchive_many": lambda d, t: {"ids": [t["model"]]},
    "models.delete_many": lambda d, t: {"ids": [t["model"]], "force": True},
    "models.make_public": lambda d, t: {"ids": [t["model"]]},
    "models.make_private": lambda d, t: {"ids": [t["model"]]},
    "tasks.make_public": lambda d, t: {"ids": [t["task"]]},
    "tasks.make_private": lambda d, t: {"ids": [t["task"]]},
    "tasks.validate": lambda d, t: {
        "name": "validated child",
        "project": d.red_project,
        "parent": t["task"],
        "type": "training",
    },
    "models.update_for_task": lambda d, t: {"task": t["task"], "uri": "s3://b/y", "name": "m"},
    # A new subproject: a name that is taken answers 400/801, one under a project the
    # caller may not see answers as taken by another team.
    "projects.create": lambda d, t: {"name": f"{d.red_project_name}/{d.unique('sub')}"},
    "projects.get_all": lambda d, t: {"id": [d.red_project]},
    "projects.get_all_ex": lambda d, t: {"id": [d.red_project]},
    "projects.get_by_id": lambda d, t: {"project": d.red_project},
    "projects.update": lambda d, t: {"project": d.red_project, "description": "edited"},
    "queues.create": lambda d, t: {"name": d.unique("queue")},
    "queues.get_by_id": lambda d, t: {"queue": d.shared["queue"]},
    "queues.get_num_entries": lambda d, t: {"queue": d.shared["queue"]},
    # An empty queue: a pull that is allowed takes nothing anyone else waits for.
    "queues.get_next_task": lambda d, t: {"queue": d.shared["queue"]},
    "tasks.add_or_update_artifacts": lambda d, t: {
        "task": t["task"],
        "artifacts": [{"key": "k", "type": "custom", "uri": "s3://b/k", "content_size": 1}],
    },
    "tasks.add_or_update_model": lambda d, t: {
        "task": t["task"],
        "name": "m",
        "model": uuid.uuid4().hex,
        "type": "output",
    },
    "tasks.archive": lambda d, t: {"tasks": [t["task"]]},
    "tasks.archive_many": lambda d, t: {"ids": [t["task"]]},
    "events.debug_images": lambda d, t: {"metrics": [{"task": t["task"]}], "iters": 1},
    "events.plots": lambda d, t: {"metrics": [{"task": t["task"]}], "iters": 1},
    # Lines of one metric only: the target's other console lines stay for the next kind.
    "events.clear_task_log": lambda d, t: {
        "task": t["task"],
        "include_metrics": ["doors"],
        "allow_locked": True,
    },
    "events.scalar_metrics_iter_raw": lambda d, t: {
        "task": t["task"],
        "metric": {"metric": MARKERS["metric"], "variants": ["v"]},
        "count_total": True,
    },
    "events.get_plot_sample": lambda d, t: {"task": t["task"], "metric": "m"},
    "events.next_plot_sample": lambda d, t: {
        "task": t["task"],
        "scroll_id": scroll.encode(
            "plot_sample", {"task": t["task"], "metric": "m", "iteration": 0, "all": True}
        ),
    },
    "events.get_debug_image_sample": lambda d, t: {
        "task": t["task"],
        "metric": "m",
        "variant": "v",
    },
    "events.next_debug_image_sample": lambda d, t: {
        "task": t["task"],
        "scroll_id": scroll.encode(
            "image_sample",
            {"task": t["task"], "metric": "m", "variant": "v", "iteration": 0, "all": True},
        ),
    },
    "projects.get_unique_metric_variants": lambda d, t: {"ids": [t["task"]]},
    "tasks.clone": lambda d, t: {"task": t["task"], "new_task_parent": t["task"]},
    "tasks.create": lambda d, t: {
        "name": "created child",
        "project": d.red_project,
        "parent": t["task"],
        "type": "training",
    },
    "tasks.delete_artifacts": lambda d, t: {"task": t["task"], "artifacts": [{"key": "k"}]},
    "tasks.delete_hyper_params": lambda d, t: {
        "task": t["task"],
        "force": True,
        "hyperparams": [{"section": "General", "name": "lr"}],
    },
    "tasks.delete_models": lambda d, t: {
        "task": t["task"],
        "models": [{"name": "m", "type": "output"}],
    },
    "tasks.edit": lambda d, t: {"task": t["task"], "force": True, "comment": "edited"},
    "tasks.edit_configuration": lambda d, t: {
        "task": t["task"],
        "force": True,
        "configuration": [{"name": "c", "value": "v", "type": "str"}],
    },
    "tasks.edit_hyper_params": lambda d, t: {
        "task": t["task"],
        "force": True,
        "hyperparams": [{"section": "General", "name": "lr", "value": "0.2"}],
    },
    "tasks.enqueue": lambda d, t: {
        "task": t["task"],
        "queue_name": "doors-enqueued",
        "force": True,
    },
    "tasks.set_requirements": lambda d, t: {"task": t["task"], "requirements": {"pip": "x"}},
    "tasks.update": lambda d, t: {"task": t["task"], "comment": "edited"},
    "models.delete_metadata": lambda d, t: {"model": t["model"], "keys": ["k"]},
    "models.update_tags": lambda d, t: {"ids": [t["model"]], "add_tags": ["doors"]},
    "tasks.update_tags": lambda d, t: {"ids": [t["task"]], "add_tags": ["doors"]},
    **{
        f"tasks.{verb}_many": lambda d, t: {"ids": [t["task"]], "force": True}
        for verb in ("enqueue", "dequeue", "stop", "reset", "publish", "delete")
    },
    "tasks.unarchive_many": lambda d, t: {"ids": [t["task"]]},
    "projects.delete": lambda d, t: {"project": t.get("project", d.red_project)},
    "projects.validate_delete": lambda d, t: {"project": d.red_project},
    "projects.get_hyperparam_values": lambda d, t: {
        "projects": [d.red_project],
        "section": "General",
        "name": "doors",
    },
    "projects.get_model_metadata_values": lambda d, t: {"key": MARKERS["metadata_key"]},
    **{
        f"queues.{name}": lambda d, t: {"queue": t.get("queue", d.shared["queue"])}
        for name in ("update", "delete", "clear_queue", "peek_task")
    },
    "queues.add_or_update_metadata": lambda d, t: {
        "queue": t.get("queue", d.shared["queue"]),
        "metadata": [{"key": "k", "value": "v"}],
    },
    "queues.delete_metadata": lambda d, t: {
        "queue": t.get("queue", d.shared["queue"]),
        "keys": ["k"],
    },
    **{
        f"queues.{name}": lambda d, t: {
            "queue": t.get("queue", d.shared["queue"]),
            "task": t["task"],
        }
        for name in (
            "add_task",
            "remove_task",
            "move_task_to_front",
            "move_task_to_back",
            "move_task_forward",
            "move_task_backward",
        )
    },
    "organization.get_entities_count": lambda d, t: {"projects": {"id": [d.red_project]}},
    "pipelines.start_pipeline": lambda d, t: {
        "task": t["task"],
        "queue": t.get("queue", d.shared["queue"]),
        "args": [{"name": "doors", "value": "1"}],
    },
    "pipelines.delete_runs": lambda d, t: {"project": d.red_project, "ids": [t["task"]]},
    "reports.create": lambda d, t: {"name": "doors report", "project": d.red_project},
    "reports.update": lambda d, t: {"task": t["task"], "comment": "edited"},
    "reports.move": lambda d, t: {"task": t["task"], "project": d.red_project},
    "reports.publish": lambda d, t: {"task": t["task"]},
    "reports.archive": lambda d, t: {"task": t["task"]},
    "reports.unarchive": lambda d, t: {"task": t["task"]},
    "reports.delete": lambda d, t: {"task": t["task"], "force": True},
    "tasks.move": lambda d, t: {"ids": [t["task"]], "project": d.red_project},
    "models.move": lambda d, t: {"ids": [t["model"]], "project": d.red_project},
    "workers.register": lambda d, t: {"worker": "doors-worker", "queues": []},
    "workers.status_report": lambda d, t: {"worker": "doors-worker", "task": t["task"]},
    "workers.unregister": lambda d, t: {"worker": "doors-worker"},
    "workers.get_stats": lambda d, t: {
        **_last_hour(),
        "items": [{"key": "cpu_usage", "aggregation": "avg"}],
    },
    "workers.get_activity_report": lambda d, t: _last_hour(),
    "workers.get_metric_keys": lambda d, t: {},
    "tasks.delete_configuration": lambda d, t: {
        "task": t["task"],
        "force": True,
        "configuration": ["c"],
    },
    "projects.get_hyper_parameters": lambda d, t: {"project": d.red_project},
    "auth.create_user": lambda d, t: {"name": d.unique("user"), "email": "doors@example.com"},
    "users.set_preferences": lambda d, t: {"preferences": {"doors": {"layout": 1}}},
    "users.get_preferences": lambda d, t: {},
}


def _last_hour() -> dict:
    now = int(time.time())
    return {"from_date": now - 3600, "to_date": now, "interval": 60}


# What each verb acts on: the table's object rule is judged on it.
ON = {"task": "task", "pipeline": "task", "model": "model", "project": "project"}


# Endpoints whose verb names objects but that themselves act on none (counts, and the
# reports' reads, which list only reports: the target is none).
NO_OBJECT = {
    "tasks.get_types",
    "organization.get_entities_count",
    "reports.get_tags",
    "reports.get_all_ex",
}
# Endpoints creating a task from what the caller may read: a task key's new task is a
# child of its own task (policy.py, `own`), so another task's key of the team may too.
CREATE_UNDER_OWN_TASK = {"reports.create", "pipelines.start_pipeline"}
# Endpoints acting on a report: an allowed call gets one of its own.
ON_REPORT = {
    f"reports.{n}" for n in ("update", "move", "publish", "archive", "unarchive", "delete")
}


def _on(name: str) -> str | None:
    return None if name in NO_OBJECT else ON.get(VERBS[name].split(".")[0])


def _call(d, kind: str, name: str, target: dict):
    body = BODIES.get(name, DEFAULT_BODY)(d, target)
    if name == "events.add_batch":
        # The SDK's JSON-lines batch.
        return requests.post(
            f"{d.server.url}/clearml-api/v2.23/events.add_batch",
            data=json.dumps(_event(target["task"])) + "\n",
            headers={
                "Authorization": f"Bearer {d.key(kind, target)}",
                "Content-Type": "application/json-lines",
            },
            timeout=30,
        )
    if name in PUBLIC:
        access, _, secret = d.key(kind, target).partition("_")[2].partition("_")
        credentials = base64.b64encode(f"pk_{access}:{secret}".encode()).decode()
        return requests.get(
            f"{d.server.url}/clearml-api/{name}",
            headers={"Authorization": f"Basic {credentials}"},
            timeout=30,
        )
    return d.compat(kind, name, body, key=d.key(kind, target))


def _answer(name: str, response, object_id: str) -> str:
    """'ok', 'forbidden' or 'hidden' from a ClearML answer (and the envelope is intact)."""
    payload = response.json()
    meta = payload["meta"]
    assert response.status_code == meta["result_code"], payload
    if name.startswith("events.add"):
        data = payload["data"]
        if response.status_code == 400 and meta["result_subcode"] == 131:
            # clearml-server's "events not added": what was wrong is in the error's data.
            data = {"added": 0, "errors": 1, "errors_info": meta["error_data"]}
        if response.status_code == 200 and data["added"] == 1:
            return "ok"
        assert data["added"] == 0 and data["errors"] == 1, data
        message = next(iter(data["errors_info"]))
        return "hidden" if "Invalid task id" in message else "forbidden"
    if response.status_code == 403:
        return "forbidden"
    if response.status_code == 400 and meta["result_subcode"] in (101, 201):
        return "hidden"
    if response.status_code == 400 and "no access" in meta["result_msg"]:
        return "hidden"  # a project name of another team: "taken", nothing more
    if name in ON_QUEUE_ENTRY | {"queues.add_task"} and meta["result_subcode"] in (702, 110):
        # Past the door: the task it may queue or move runs, so it waits in no queue and
        # cannot be put in one (a runner's and a task key's targets).
        return "ok"
    if response.status_code != 200:
        return f"error {response.status_code}/{meta['result_subcode']} {meta['result_msg']}"
    data = payload["data"]
    if name in LISTS and object_id not in str(data):
        return "hidden"  # a list leaves out what the caller may not see
    if name in ACROSS_ROWS and ACROSS_ROWS[name](data) not in str(data):
        return "hidden"  # what it gathers leaves out what the caller may not see
    if isinstance(data, dict) and data.get("failed"):
        # A batch answers 200 and says, task by task, which it refused and why.
        codes = data["failed"][0]["error"]["codes"]
        if codes[0] == 403:
            return "forbidden"
        if codes in ([400, 101], [400, 201]):
            return "hidden"
        return f"error in batch {codes} {data['failed'][0]['error']['msg']}"
    return "ok"


# Reads answering with a list: they hide an object by leaving it out.
LISTS = {
    "tasks.get_all",
    "tasks.get_all_ex",
    "tasks.get_by_id_ex",
    "tasks.get_hyper_params",
    "tasks.get_configurations",
    "tasks.get_configuration_names",
    "events.get_task_plots",
    "events.get_multi_task_plots",
    "events.get_task_single_value_metrics",
    "models.get_all",
    "models.get_all_ex",
    "projects.get_all",
    "projects.get_all_ex",
}


# Reads across many rows (tags in use, parents, ...): the marker of team red's rows each
# shows when it may be seen (doors.MARKERS, set on the shared target).
ACROSS_ROWS = {
    "projects.get_task_tags": lambda data: MARKERS["tag"],
    "projects.get_model_tags": lambda data: MARKERS["tag"],
    "projects.get_project_tags": lambda data: MARKERS["tag"],
    "organization.get_tags": lambda data: MARKERS["tag"],
    "models.get_frameworks": lambda data: MARKERS["framework"],
    "projects.get_model_metadata_keys": lambda data: MARKERS["metadata_key"],
    "projects.get_model_metadata_values": lambda data: MARKERS["metadata_value"],
    "projects.get_hyperparam_values": lambda data: MARKERS["parameter"],
    "projects.get_task_parents": lambda data: "shared target",
    "projects.get_unique_metric_variants": lambda data: MARKERS["metric"],
}
# Queue endpoints that act on a task in the queue: an allowed call gets a queue of its own
# with its target waiting in it.
ON_QUEUE_ENTRY = {
    "queues.remove_task",
    "queues.move_task_to_front",
    "queues.move_task_to_back",
    "queues.move_task_forward",
    "queues.move_task_backward",
}


def _target(d, name: str, kind: str, verdict: str) -> dict:
    """The object a case acts on: a fresh one in the kind's relation when the call will
    change it, the shared one otherwise (refused calls and reads change nothing)."""
    if verdict != "ok" or VERBS[name].endswith(".read"):
        return dict(d.shared)
    fields = {"type": "report"} if name in ON_REPORT else {}
    if name == "pipelines.delete_runs":
        fields = {"type": "controller"}
    target = d.target_for(kind, **fields)
    if name == "pipelines.start_pipeline":
        target["queue"] = d.ok("staff", "queues.create", name=d.unique("start"))["id"]
    if name.startswith("models."):
        target["model"] = d.model_of(target["task"])
    if name.startswith("queues.") and VERBS[name] in ("queue.manage", "task.queue"):
        target["queue"] = d.ok("staff", "queues.create", name=d.unique("queue"))["id"]
        if name in ON_QUEUE_ENTRY and kind not in ("runner", "task_own"):
            # (a runner's and a task key's targets run: they wait in no queue)
            d.ok("staff", "queues.add_task", queue=target["queue"], task=target["task"])
    if name == "tasks.make_private":
        d.ok("staff", "tasks.make_public", ids=[target["task"]])
    if name == "models.make_private":
        d.ok("staff", "models.make_public", ids=[target["model"]])
    if name == "projects.delete":
        target["project"] = d.ok("user_a", "projects.create", name=f"red/{d.unique('gone')}")["id"]
    if name in ("tasks.reset", "tasks.reset_many") and kind not in ("runner", "task_own"):
        # A draft has nothing to reset: give it an ended run first.
        d.ok("staff", "tasks.stopped", task=target["task"], force=True)
    return target


def _object_id(d, name: str, target: dict) -> str:
    verb = VERBS[name]
    if verb.startswith("project."):
        return target.get("project", d.red_project)
    if verb.startswith("model."):
        return target["model"]
    return target["task"]


def test_every_compat_endpoint_answers_each_key_kind_as_the_table_says(doors):
    """R52, R53: every ClearML endpoint through the table, no row changed when refused."""
    mismatches = []
    for name in sorted(HANDLERS):
        verb = VERBS[name]
        for kind in KINDS:
            want = expected(verb, kind, _on(name))
            if name in CREATE_UNDER_OWN_TASK and kind == "task_a":
                want = "ok"
            target = _target(doors, name, kind, want)
            before = db_state(doors.server) if want != "ok" else None
            response = _call(doors, kind, name, target)
            got = _answer(name, response, _object_id(doors, name, target))
            if got != want:
                mismatches.append(
                    f"{name} as {kind}: {got}, the table says {want}: {response.text[:300]}"
                )
            elif before is not None:
                changed = changed_tables(before, db_state(doors.server))
                if changed:
                    mismatches.append(f"{name} as {kind} was refused but changed {changed}")
    assert not mismatches, "\n".join(mismatches)


# ----------------------------------------------------------------- the REST door

REST_BODIES = {
    ("TaskViewSet", "create"): lambda d, t: {
        "project_name": d.red_project_name,
        "name": "rest child",
        "parent": t["task"],
    },
    ("TaskViewSet", "partial_update"): lambda d, t: {"comment": "edited"},
    ("TaskViewSet", "hyperparameters"): lambda d, t: {"values": {"General": {"lr": 0.3}}},
    ("TaskViewSet", "configuration"): lambda d, t: {"values": {"c": "v"}},
    ("TaskViewSet", "runtime"): lambda d, t: {"values": {"r": "v"}},
    ("TaskViewSet", "events"): lambda d, t: {"events": []},
    ("TaskViewSet", "clone"): lambda d, t: {"parent": t["task"]},
    ("TaskViewSet", "enqueue"): lambda d, t: {"queue": "doors-rest"},
    ("TaskViewSet", "move"): lambda d, t: {"direction": "up"},
    ("TaskViewSet", "claim"): lambda d, t: {"attempt": 1, "worker": "w", "claim_id": "ab"},
    ("TaskViewSet", "heartbeat"): lambda d, t: {"attempt": 1, "worker": "w"},
    ("TaskViewSet", "finish"): lambda d, t: {"attempt": 1, "status": "failed"},
    ("TaskViewSet", "console"): lambda d, t: {"lines": [{"text": "a line"}]},
    ("TaskViewSet", "artifact_list"): lambda d, t: {
        "name": d.unique("artifact"),
        "kind": "file",
        "filename": "a.bin",
        "size": 1,
    },
    ("TaskViewSet", "models"): lambda d, t: {
        "name": d.unique("model"),
        "filename": "m.bin",
        "size": 1,
    },
    ("TaskViewSet", "input_models"): lambda d, t: {"model": d.shared["rest_model"]},
    ("TaskViewSet", "release"): lambda d, t: {"attempt": 1, "worker": "w"},
    ("ProjectViewSet", "create"): lambda d, t: {"name": f"red/{d.unique('rest')}"},
    ("PipelineRunViewSet", "create"): lambda d, t: {
        "controller": t["task"],
        "steps": [{"name": "one", "base_task_id": d.shared["task"]}],
        "driver": "client",
    },
    ("PipelineRunViewSet", "launch"): lambda d, t: {"step": "one"},
    ("PipelineRunViewSet", "skip"): lambda d, t: {"step": "one"},
    ("TeamViewSet", "create"): lambda d, t: {"name": d.unique("team")},
    ("TeamViewSet", "members"): lambda d, t: {"add": []},
    ("WorkerViewSet", "heartbeat"): lambda d, t: {"name": "doors-rest-worker", "queues": []},
    ("WorkerViewSet", "unregister"): lambda d, t: {"name": "doors-rest-worker"},
    ("ApiKeyView", "post"): lambda d, t: {"name": "doors"},
}
# What each view's objects are judged on (the table's `on`); the URL's pk for its objects.
REST_ON = {
    "TaskViewSet": "task",
    "ArtifactViewSet": "task",
    "PipelineRunViewSet": "task",
    "ModelViewSet": "task",
}
REST_PK = {
    "TaskViewSet": "task",
    "ArtifactViewSet": "artifact",
    "PipelineRunViewSet": "run",
    "ModelViewSet": "rest_model",
}
SAFE = {"get", "head", "options"}


def _rest_writes():
    from webapp.api.checks import routed_views

    for route, view_class, actions in routed_views():
        if not route.startswith("api/v1/"):
            continue
        for method, action in sorted(actions.items()):
            if method not in SAFE:
                entry = view_class.verbs[action]
                verb = entry[1] if isinstance(entry, tuple) else entry
                yield route, view_class.__name__, method, action, verb


def _rest_target(d, view: str, action: str, kind: str, verdict: str) -> dict:
    if verdict != "ok":
        return dict(d.shared)
    controller = view == "PipelineRunViewSet"
    target = d.target_for(kind, type="controller") if controller else d.target_for(kind)
    if view == "ArtifactViewSet":
        target["artifact"] = d.rest_ok(
            "user_a",
            "post",
            f"tasks/{target['task']}/artifacts/",
            {"name": "upload me", "kind": "file", "filename": "u.bin", "size": 1},
        )["id"]
    if view == "ModelViewSet":
        target["rest_model"] = d.rest_ok(
            "user_a",
            "post",
            f"tasks/{target['task']}/models/",
            {"name": d.unique("weights"), "filename": "w.bin", "size": 1},
        )["id"]
    if controller and action != "create":
        target["run"] = d.rest_ok(
            "staff", "post", "pipelines/", REST_BODIES[(view, "create")](d, target)
        )["id"]
    return target


def _rest_call(d, kind, route, view, method, action, target):
    from tests.security.test_auth_idor import _concrete

    values = {"pk": target.get(REST_PK.get(view, "task"), ""), "name": "default"}
    if view == "TeamViewSet":
        values["pk"] = d.shared["red_team"]
    path = _concrete(route, values).removeprefix("/api/v1/")
    body = REST_BODIES.get((view, action), lambda d, t: {})(d, target)
    key = d.key(kind, target)
    if (view, action) in (("TaskViewSet", "samples"), ("ArtifactViewSet", "upload")):
        files = {"file": ("a.bin", b"x")}
        return d.rest(kind, method, path, key=key, files=files, data={"title": "t"})
    if (view, action) in (("ArtifactViewSet", "content"), ("ModelViewSet", "content")):
        return d.rest(kind, method, path, key=key, data=b"x")
    if (view, action) == ("ApiKeyView", "delete"):
        return d.rest(kind, method, path, key=key, params={"prefix": "nosuchkey"})
    return d.rest(kind, method, path, body, key=key)


def _rest_answer(response, on) -> str:
    if response.status_code == 403:
        return "forbidden"
    if on is not None and response.status_code == 404:
        return "hidden"
    if response.status_code == 401:
        return f"error {response.status_code} {response.text[:200]}"
    # Anything else got past the table: a state conflict or bad input is the verb's answer.
    return "ok"


def test_every_rest_write_action_answers_each_key_kind_as_the_table_says(doors):
    """R52, R54: the REST door's writes through the same table, no row changed when refused."""
    mismatches = []
    walked = 0
    for route, view, method, action, verb in _rest_writes():
        on = REST_ON.get(view)
        for kind in KINDS:
            want = expected(verb, kind, on)
            target = _rest_target(doors, view, action, kind, want)
            before = db_state(doors.server) if want != "ok" else None
            response = _rest_call(doors, kind, route, view, method, action, target)
            got = _rest_answer(response, on)
            walked += 1
            if got != want:
                mismatches.append(
                    f"{method.upper()} {route} ({view}.{action}) as {kind}: {got}, "
                    f"the table says {want}: {response.text[:200]}"
                )
            elif before is not None:
                changed = changed_tables(before, db_state(doors.server))
                if changed:
                    mismatches.append(
                        f"{method} {route} as {kind} was refused but changed {changed}"
                    )
    assert walked > 200, walked
    assert not mismatches, "\n".join(mismatches)
