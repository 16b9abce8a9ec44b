"""R52-R55, R59: what each kind of key may do through the ClearML door and the REST door, on
a live server, as the clients that use them do it: a worker key (clearml-agent, our
ClearML runner), a step's task key (the ClearML SDK inside a step), and users of two teams.
"""

import pytest

from tests.security.doors import changed_tables, db_state

pytestmark = pytest.mark.e2e


def _refused(doors, kind: str, endpoint: str, code: int = 403, **body) -> None:
    response = doors.compat(kind, endpoint, body)
    meta = response.json()["meta"]
    assert (response.status_code, meta["result_code"]) == (code, code), (endpoint, meta)


def test_a_worker_key_cannot_change_another_teams_task_over_the_clearml_protocol(doors):
    """The report: a worker key edited, enqueued, dequeued, created and deleted team red's
    tasks over /clearml-api/ while REST refused it the same."""
    task = doors.new_task(name="not the worker's")
    queued = doors.new_task(name="queued by alice")
    doors.ok("user_a", "tasks.enqueue", task=queued, queue_name="red-queue")
    before = db_state(doors.server)
    for endpoint, body in (
        ("tasks.edit", {"task": task, "force": True, "comment": "owned"}),
        (
            "tasks.edit_hyper_params",
            {"task": task, "force": True, "hyperparams": [{"section": "General", "name": "x"}]},
        ),
        ("tasks.enqueue", {"task": task, "queue_name": "worker-queue"}),
        ("tasks.dequeue", {"task": queued}),
        ("tasks.create", {"name": "planted", "project": doors.red_project, "type": "training"}),
        ("tasks.clone", {"task": task}),
        ("projects.create", {"name": f"red/{doors.unique('planted')}"}),
        ("tasks.delete", {"task": task, "force": True}),
        ("tasks.stop", {"task": queued}),
        ("models.edit", {"model": doors.shared["model"], "comment": "owned"}),
    ):
        _refused(doors, "worker", endpoint, **body)
    assert changed_tables(before, db_state(doors.server)) == []
    # (the REST door, as before, agrees)
    for method, path, body in (
        ("patch", f"tasks/{task}/", {"comment": "owned"}),
        ("post", f"tasks/{task}/enqueue/", {}),
        ("post", f"tasks/{queued}/dequeue/", {}),
    ):
        assert doors.rest("worker", method, path, body).status_code == 403, path


def test_a_clearml_agent_with_a_worker_key_runs_a_controller_and_its_steps(doors):
    """What clearml-agent and our runner do with their worker key, and what the SDK in the
    controller they run does with it: all of it works, for that run only."""
    controller = doors.new_task(name="controller", type="controller")
    base = doors.new_task(name="step base")
    doors.pulled_by_runner(controller)
    # the controller (its SDK holds the runner's key) reads its base task, clones it as
    # its step, overrides a parameter and enqueues it
    doors.ok("runner", "tasks.get_by_id", task=base)
    step = doors.ok(
        "runner",
        "tasks.clone",
        task=base,
        new_task_parent=controller,
        new_task_project=doors.red_project,
    )["id"]
    doors.ok(
        "runner",
        "tasks.edit_hyper_params",
        task=step,
        force=True,
        hyperparams=[{"section": "General", "name": "lr", "value": "0.5"}],
    )
    doors.ok("runner", "tasks.enqueue", task=step, queue_name="default")
    # a function step: created without a parent, it is the controller's child, owned by
    # the controller's owner, and the controller goes on writing it
    function_step = doors.ok(
        "runner", "tasks.create", name="function step", project=doors.red_project, type="training"
    )["id"]
    made = doors.rest_ok("user_a", "get", f"tasks/{function_step}/")
    assert made["parent"] == controller
    doors.ok("runner", "tasks.edit", task=function_step, force=True, comment="definition")
    doors.ok("runner", "tasks.enqueue", task=function_step, queue_name="default")
    # it reports on itself and aborts a step the way ClearML's job does
    event = {"type": "log", "task": controller, "msg": "controller line", "level": "info"}
    assert doors.ok("runner", "events.add_batch", **event)["added"] == 1
    doors.ok("runner", "tasks.stopped", task=step, force=True)
    # it marks itself failed; the agent's later `completed` meets ClearML's state machine
    doors.ok("runner", "tasks.failed", task=controller, force=True)
    response = doors.compat("runner", "tasks.completed", {"task": controller})
    assert response.json()["meta"]["result_subcode"] == 110, response.text
    # and the agent's last console lines still arrive
    assert doors.ok("runner", "events.add_batch", **event)["added"] == 1
    # once the controller has ended, its steps are no longer the runner's to change
    _refused(doors, "runner", "tasks.edit", task=function_step, force=True, comment="late")
    # a worker key never copies into its run what the run's owner cannot see
    controller2 = doors.new_task(name="controller 2", type="controller")
    doors.pulled_by_runner(controller2)
    blue = doors.ok("user_b", "projects.create", name=f"blue/{doors.unique('secret')}")["id"]
    blue_base = doors.new_task("user_b", project=blue, name="blue base")
    _refused(doors, "runner", "tasks.clone", task=blue_base, new_task_parent=controller2)
    _refused(doors, "runner", "tasks.create", name="in blue", project=blue, type="training")


def test_a_step_key_writes_its_own_task_and_the_tasks_it_creates_and_nothing_else(doors):
    own = doors.target_for("task_own")
    key = own["key"]
    sibling = doors.new_task(name="sibling")
    # over the ClearML door: what it creates or clones is its task's child, and its own
    created = doors.ok(
        "task_own", "tasks.create", as_key=key, name="made by the step", project=doors.red_project
    )["id"]
    cloned = doors.ok("task_own", "tasks.clone", as_key=key, task=sibling)["id"]
    for task_id in (created, cloned):
        assert doors.rest_ok("user_a", "get", f"tasks/{task_id}/")["parent"] == own["task"]
        doors.ok("task_own", "tasks.edit", as_key=key, task=task_id, force=True, comment="mine")
    # a teammate's task is not its to change, nor to adopt as a parent
    for endpoint, body in (
        ("tasks.edit", {"task": sibling, "force": True, "comment": "x"}),
        ("tasks.create", {"name": "adopted", "project": doors.red_project, "parent": sibling}),
        ("tasks.enqueue", {"task": sibling}),
    ):
        response = doors.compat("task_own", endpoint, body, key=key)
        assert response.status_code == 403, (endpoint, response.text)
    # over the REST door the same
    made = doors.rest(
        "task_own",
        "post",
        "tasks/",
        {"project_name": doors.red_project_name, "name": "rest child"},
        key=key,
    )
    assert made.status_code == 201 and made.json()["parent"] == own["task"], made.text
    clone = doors.rest("task_own", "post", f"tasks/{sibling}/clone/", {}, key=key)
    assert clone.status_code == 201 and clone.json()["parent"] == own["task"], clone.text
    adopted = doors.rest(
        "task_own",
        "post",
        "tasks/",
        {"project_name": doors.red_project_name, "name": "adopted", "parent": sibling},
        key=key,
    )
    assert adopted.status_code == 403, adopted.text


def test_workers_and_queues_name_only_the_tasks_the_caller_sees(doors):
    doors.ok("runner", "workers.register", worker="red-runner", queues=["default"])
    running = doors.new_task(name="red secret run")
    queue = doors.ok("staff", "queues.create", name=doors.unique("shown"))["id"]
    doors.ok("user_a", "tasks.enqueue", task=running, queue=queue)
    waiting = doors.new_task(name="red secret wait")
    doors.ok("user_a", "tasks.enqueue", task=waiting, queue=queue)
    doors.compat("runner", "queues.get_next_task", {"queue": queue}).raise_for_status()
    doors.ok("runner", "workers.status_report", worker="red-runner", task=running)

    def listed(kind):
        workers = doors.ok(kind, "workers.get_all")["workers"]
        compat = next(w["task"] for w in workers if w["id"] == "red-runner")
        rest = doors.rest_ok(kind, "get", "workers/")
        rows = rest["results"] if isinstance(rest, dict) else rest
        ours = next(w["current_task"] for w in rows if w["name"] == "red-runner")
        entries = doors.ok(kind, "queues.get_by_id", queue=queue)["queue"]["entries"]
        return compat, ours, [e["task"] for e in entries]

    assert listed("user_a") == ({"id": running, "name": "red secret run"}, running, [waiting])
    assert listed("user_b") == (None, None, [])
    assert listed("task_b") == (None, None, [])
    assert "red secret" not in str(doors.ok("user_b", "queues.get_all"))


def test_user_and_task_keys_neither_pull_tasks_nor_see_teams_beyond_their_own(doors):
    task = doors.new_task(name="waits for a worker")
    queue = doors.ok("staff", "queues.create", name=doors.unique("pull"))["id"]
    doors.ok("user_a", "tasks.enqueue", task=task, queue=queue)
    before = db_state(doors.server)
    # pulling a task to run it is a worker's verb, as a REST claim is
    for kind in ("user_b", "user_a", "task_a"):
        _refused(doors, kind, "queues.get_next_task", queue=queue)
    assert changed_tables(before, db_state(doors.server)) == []
    assert doors.rest_ok("user_a", "get", f"tasks/{task}/")["status"] == "queued"
    # teams and their members are for users: a worker key lists none
    assert doors.rest("worker", "get", "teams/").status_code == 403
    names = [t["name"] for t in doors.rest_ok("task_b", "get", "teams/")["results"]]
    assert names == ["blue"]
