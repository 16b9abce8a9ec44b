"""The behaviours clearml-server's own API tests showed missing (bench/clearml_conformance.py
measures those; these are ours, so CI covers them without that suite): who the caller is,
the two-phase stop, `published` in tasks.completed, what tasks.reset takes, and our own
`clearml` mark kept out of the protocol's system tags."""

import time
import uuid

import pytest

from tests.compat.test_protocol import Api

pytestmark = [pytest.mark.compat, pytest.mark.e2e]


@pytest.fixture(scope="module")
def api(compat_server):
    return Api(compat_server)


def _running(api, **fields) -> str:
    task_id = api.new_task(**fields)
    api("tasks.started", task=task_id)
    return task_id


def _status(api, task_id: str) -> tuple[str, str]:
    document = api("tasks.get_by_id", task=task_id)["task"]
    return document["status"], document["status_message"]


def test_current_user_is_the_keys_owner(api):
    user = api("users.get_current_user")["user"]
    assert user["name"] == "admin" and user["role"] == "admin"
    assert user["id"] and user["company"]["id"]
    assert api.raw("users.get_current_user", headers={"Authorization": "Bearer x"}).status_code == (
        401
    )


def test_stop_waits_for_a_live_agent_and_force_stops_at_once(api):
    task_id = _running(api)
    worker = f"agent-{uuid.uuid4().hex[:6]}"
    api("workers.register", worker=worker)
    api("workers.status_report", worker=worker, task=task_id, timestamp=int(time.time()))
    fields = api("tasks.stop", task=task_id)["fields"]
    assert (fields["status"], fields["status_message"]) == ("in_progress", "stopping")
    assert _status(api, task_id) == ("in_progress", "stopping")
    # The agent sees `stopping`, kills its process and reports the end itself.
    api("tasks.stopped", task=task_id, force=True)
    assert _status(api, task_id)[0] == "stopped"

    forced = _running(api)
    api("workers.status_report", worker=worker, task=forced, timestamp=int(time.time()))
    assert api("tasks.stop", task=forced, force=True)["fields"]["status"] == "stopped"


def test_stop_is_immediate_without_an_agent_or_for_a_dev_machine_run(api):
    alone = _running(api)
    assert api("tasks.stop", task=alone)["fields"]["status"] == "stopped"
    # A worker that reported the task once and then another one is not its runner any more.
    worker = f"agent-{uuid.uuid4().hex[:6]}"
    moved = _running(api)
    api("workers.status_report", worker=worker, task=moved, timestamp=int(time.time()))
    api("workers.status_report", worker=worker, task=_running(api), timestamp=int(time.time()))
    assert api("tasks.stop", task=moved)["fields"]["status"] == "stopped"
    development = _running(api, system_tags=["development"])
    api("workers.status_report", worker=worker, task=development, timestamp=int(time.time()))
    assert api("tasks.stop", task=development)["fields"]["status"] == "stopped"


def test_completed_says_whether_it_published(api):
    task_id = _running(api)
    answer = api("tasks.completed", task=task_id)
    assert (answer["fields"]["status"], answer["updated"], answer["published"]) == (
        "completed",
        1,
        0,
    )
    answer = api("tasks.completed", task=task_id, publish=True)
    assert (answer["fields"]["status"], answer["published"]) == ("published", 1)


def test_reset_takes_drafts_queued_and_running_tasks_but_not_published(api):
    draft = api.new_task()
    line = {"type": "log", "task": draft, "msg": "before reset", "level": "info", "timestamp": 1}
    assert api.raw("events.add_batch", [line]).status_code == 200
    assert api("events.get_task_log", task=draft)["returned"] == 1
    assert api("tasks.reset", task=draft)["fields"]["status"] == "created"
    assert api("events.get_task_log", task=draft)["returned"] == 0

    queue = api("queues.get_all", name="^default$")["queues"][0]["id"]
    queued = api.new_task()
    api("tasks.enqueue", task=queued, queue=queue)
    assert api("tasks.reset", task=queued)["dequeued"] == {"removed": 1}
    entries = api("queues.get_by_id", queue=queue)["queue"]["entries"]
    assert queued not in [entry["task"] for entry in entries]

    running = _running(api)
    assert api("tasks.reset", task=running)["fields"]["status"] == "created"
    assert _status(api, running)[0] == "created"

    published = _running(api)
    api("tasks.completed", task=published, publish=True)
    for force in (False, True):
        code, _ = api.error("tasks.reset", task=published, force=force)
        assert code == 400
    assert _status(api, published)[0] == "published"


def test_our_clearml_mark_is_hidden_from_the_protocol_and_kept_through_edits(compat_server, api):
    task_id = api.new_task(system_tags=["development"])
    assert api("tasks.get_by_id", task=task_id)["task"]["system_tags"] == ["development"]
    api("tasks.edit", task=task_id, system_tags=["mine"], force=True)
    assert api("tasks.get_by_id", task=task_id)["task"]["system_tags"] == ["mine"]
    ours = compat_server.api().get(f"{compat_server.url}/api/v1/tasks/{task_id}/").json()
    assert set(ours["system_tags"]) == {"mine", "clearml"}


def test_queue_names_may_hold_spaces_and_their_tasks_are_pulled(api):
    name = f"Test queue {uuid.uuid4().hex[:6]}"
    queue = api("queues.create", name=name)["id"]
    assert api("queues.get_all", name=f"^{name}$")["queues"][0]["id"] == queue
    task_id = api.new_task()
    api("tasks.enqueue", task=task_id, queue=queue)
    pulled = api.raw("queues.get_next_task", {"queue": queue}, headers={"X-ClearML-Worker": "w"})
    assert pulled.json()["data"]["entry"]["task"] == task_id
    # Still refused: what is not a letter, digit, space, '-', '_' or '.'.
    for bad in ("a/b", "bad name!", "tab\tname"):
        assert api.error("queues.create", name=bad)[0] == 400


def test_tags_in_use_and_task_parents_are_read_from_what_the_caller_sees(api):
    project = api("projects.create", name=f"tags/{uuid.uuid4().hex[:8]}")["id"]
    parent = api("tasks.create", name="parent", project=project, type="training")["id"]
    child = api(
        "tasks.create",
        name="child",
        project=project,
        type="training",
        parent=parent,
        tags=["a"],
        system_tags=["s"],
    )["id"]
    assert api("projects.get_task_tags", projects=[project]) == {"tags": ["a"]}
    api("tasks.update_tags", ids=[child], add_tags=["b"], remove_tags=["a"])
    assert api("projects.get_task_tags", projects=[project])["tags"] == ["b"]
    answer = api("projects.get_task_tags", projects=[project], include_system=True)
    assert answer["system_tags"] == ["s"]  # our own `clearml` mark is not among them
    excluded = api(
        "projects.get_task_tags", projects=[project], filter={"system_tags": ["__$not", "s"]}
    )
    assert excluded["tags"] == []
    parents = api("projects.get_task_parents", projects=[project])["parents"]
    assert [p["id"] for p in parents] == [parent]
    assert api("projects.get_task_parents", projects=[project], tasks_state="archived") == {
        "parents": []
    }


_OUTSIDER = """
from django.contrib.auth import get_user_model
from webapp.core.keys import create_api_key
outsider, _ = get_user_model().objects.get_or_create(username="outsider")
print(create_api_key(outsider)[1])
"""


def test_another_users_key_neither_reads_nor_changes_these(compat_server, api):
    project = api("projects.create", name=f"private/{uuid.uuid4().hex[:8]}")["id"]
    parent = api("tasks.create", name="parent", project=project, type="training")["id"]
    child = api(
        "tasks.create", name="child", project=project, type="training", parent=parent, tags=["x"]
    )["id"]
    outsider = Api(compat_server, compat_server.manage("shell", "-c", _OUTSIDER).strip())
    me = outsider("users.get_current_user")["user"]
    assert (me["name"], me["role"]) == ("outsider", "user")
    assert outsider("projects.get_task_tags", projects=[project]) == {"tags": []}
    assert "x" not in outsider("organization.get_tags")["tags"]
    assert outsider("projects.get_task_parents", projects=[project]) == {"parents": []}
    assert outsider.error("tasks.update_tags", ids=[child], add_tags=["y"])[0] == 400
    api("tasks.started", task=child)
    assert outsider.error("tasks.stop", task=child)[0] == 400
    assert outsider.error("tasks.reset", task=child)[0] == 400
    assert api("tasks.get_by_id", task=child)["task"]["tags"] == ["x"]
    assert api("tasks.get_by_id", task=child)["task"]["status"] == "in_progress"


def _entries(api, queue: str) -> list[str]:
    return [e["task"] for e in api("queues.get_by_id", queue=queue)["queue"]["entries"]]


def test_queues_keep_tags_and_metadata_and_their_entries_can_be_reordered(api):
    name = f"managed {uuid.uuid4().hex[:6]}"
    queue = api("queues.create", name=name, tags=["a"], system_tags=["k8s-glue"])["id"]
    listed = {q["id"] for q in api("queues.get_all_ex")["queues"]}
    assert queue not in listed  # hidden as clearml-server hides its Kubernetes glue queues
    assert queue in {q["id"] for q in api("queues.get_all_ex", search_hidden=True)["queues"]}
    assert api("queues.update", queue=queue, tags=["b"], system_tags=[])["fields"]["tags"] == ["b"]
    api("queues.add_or_update_metadata", queue=queue, metadata=[{"key": "k", "value": "v"}])
    document = api("queues.get_by_id", queue=queue)["queue"]
    assert document["tags"] == ["b"] and document["metadata"]["k"]["value"] == "v"

    tasks = [api.new_task(name=f"entry {i}") for i in range(3)]
    for task_id in tasks:
        api("tasks.enqueue", task=task_id, queue=queue)
    assert api("queues.peek_task", queue=queue)["task"] == tasks[0]
    listed = api("queues.get_all_ex", id=[queue], max_task_entries=2)["queues"][0]["entries"]
    assert [e["task"] for e in listed] == [
        {"id": t, "name": f"entry {i}"} for i, t in enumerate(tasks[:2])
    ]
    assert api("queues.move_task_backward", queue=queue, task=tasks[0], count=5)["position"] == 2
    assert _entries(api, queue) == [tasks[1], tasks[2], tasks[0]]
    assert api("queues.move_task_to_front", queue=queue, task=tasks[0])["position"] == 0
    assert _entries(api, queue) == tasks
    api("queues.remove_task", queue=queue, task=tasks[2])
    assert api("tasks.get_by_id", task=tasks[2])["task"]["status"] == "created"

    # Deleting a queue with waiting tasks needs force, and puts them back to drafts.
    assert api.error("queues.delete", queue=queue)[0] == 400
    api("queues.delete", queue=queue, force=True)
    assert {api("tasks.get_by_id", task=t)["task"]["status"] for t in tasks} == {"created"}
    assert api.error("queues.get_by_id", queue=queue)[0] == 400
    default = api("queues.get_default")["id"]
    assert api.error("queues.delete", queue=default, force=True)[0] == 400


def test_only_staff_manage_queues(compat_server, api):
    queue = api("queues.create", name=f"staff only {uuid.uuid4().hex[:6]}")["id"]
    outsider = Api(compat_server, compat_server.manage("shell", "-c", _OUTSIDER).strip())
    for endpoint in ("queues.update", "queues.delete", "queues.clear_queue"):
        assert outsider.error(endpoint, queue=queue, tags=["x"], force=True)[0] == 403
    assert (
        outsider.error(
            "queues.create", name=api("queues.get_by_id", queue=queue)["queue"]["name"], tags=["x"]
        )[0]
        == 403
    )
    assert api("queues.get_by_id", queue=queue)["queue"]["tags"] == []
    # A queue of one's own may be created with tags all the same.
    mine = outsider("queues.create", name=f"mine {uuid.uuid4().hex[:6]}", tags=["t"])["id"]
    assert outsider("queues.get_by_id", queue=mine)["queue"]["tags"] == ["t"]
    worker = Api(compat_server, compat_server.worker_key)
    assert worker.error("queues.delete", queue=queue, force=True)[0] == 403


def test_a_project_is_deleted_with_its_subprojects_only_once_it_holds_nothing(compat_server, api):
    name = f"doomed {uuid.uuid4().hex[:6]}"
    project = api("projects.create", name=name)["id"]
    dataset = api("projects.create", name=f"{name}/.datasets/d", system_tags=["dataset"])["id"]
    task_id = api("tasks.create", name="data", project=dataset, type="data_processing")["id"]
    counts = api("projects.validate_delete", project=project)
    assert (counts["tasks"], counts["datasets"]) == (1, 1)
    # Neither force nor delete_contents deletes work here.
    for force in (False, True):
        code, message = api.error("projects.delete", project=project, force=force)
        assert code == 400 and "datasets" in message
    outsider = Api(compat_server, compat_server.manage("shell", "-c", _OUTSIDER).strip())
    api("tasks.delete", task=task_id)
    assert outsider.error("projects.delete", project=project)[0] == 400  # not visible to it
    assert api("projects.validate_delete", project=project)["tasks"] == 0
    assert api("projects.delete", project=project)["deleted"] == 1
    for gone in (project, dataset):
        assert api.error("projects.get_by_id", project=gone)[0] == 400


def test_model_metadata_is_deleted_by_key_and_its_keys_are_listed(compat_server, api):
    model = api("models.create", name="meta model", uri="file:///m", labels={})["id"]
    items = [{"key": k, "type": "str", "value": v} for k, v in (("a1", "x"), ("a2", "y"))]
    api("models.add_or_update_metadata", model=model, metadata=items)
    assert {"a1", "a2"} <= set(api("projects.get_model_metadata_keys")["keys"])
    assert api("projects.get_model_metadata_values", key="a1")["values"] == ["x"]
    project = api("projects.create", name=f"models/{uuid.uuid4().hex[:8]}")["id"]
    placed = [{"key": "in_project", "type": "str", "value": "z"}]
    api("models.create", name="placed", uri="file:///p", project=project, metadata=placed)
    root = api("projects.get_model_metadata_keys", include_subprojects=False)["keys"]
    assert "a1" in root and "in_project" not in root
    assert "in_project" in api("projects.get_model_metadata_keys", project=project)["keys"]
    assert api("models.delete_metadata", model=model, keys=["a2"])["updated"] == 1
    assert set(api("models.get_by_id", model=model)["model"]["metadata"]) == {"a1"}
    outsider = Api(compat_server, compat_server.manage("shell", "-c", _OUTSIDER).strip())
    assert "a1" not in outsider("projects.get_model_metadata_keys")["keys"]
    assert outsider.error("models.delete_metadata", model=model, keys=["a1"])[0] == 400


def test_a_task_created_archived_is_archived(compat_server, api):
    task_id = api.new_task(system_tags=["archived", "x"])
    assert set(api("tasks.get_by_id", task=task_id)["task"]["system_tags"]) == {"archived", "x"}
    ours = compat_server.api().get(f"{compat_server.url}/api/v1/tasks/{task_id}/").json()
    assert ours["archived"] is True and "archived" not in ours["system_tags"]


def test_date_ranges_and_parameter_values_filter_what_the_caller_sees(compat_server, api):
    project = api("projects.create", name=f"dates/{uuid.uuid4().hex[:8]}")["id"]
    before = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    tasks = [
        api("tasks.create", name=f"dated {i}", project=project, type="training")["id"]
        for i in range(2)
    ]
    api("tasks.started", task=tasks[0])
    for i, task_id in enumerate(tasks):
        api(
            "tasks.edit_hyper_params",
            task=task_id,
            hyperparams=[{"section": "S", "name": "p", "value": str(i), "type": "str"}],
            force=True,  # one of them runs
        )
    started = api("tasks.get_all_ex", project=[project], started=[before, None])["tasks"]
    assert [t["id"] for t in started] == [tasks[0]]
    assert api("tasks.get_all_ex", project=[project], created=f"<{before}")["tasks"] == []
    created = api(
        "tasks.get_all_ex",
        project=[project],
        _any_={"datetime": f">={before}", "fields": ["created", "started"]},
    )["tasks"]
    assert {t["id"] for t in created} == set(tasks)
    assert api.error("tasks.get_all_ex", created="yesterday")[0] == 400
    values = api("projects.get_hyperparam_values", projects=[project], section="S", name="p")
    assert values == {"total": 2, "values": ["0", "1"]}
    one = api(
        "projects.get_hyperparam_values", projects=[project], section="S", name="p", pattern="^1"
    )
    assert one["values"] == ["1"]
    outsider = Api(compat_server, compat_server.manage("shell", "-c", _OUTSIDER).strip())
    hidden = outsider("projects.get_hyperparam_values", projects=[project], section="S", name="p")
    assert hidden == {"total": 0, "values": []}


def test_batch_forms_apply_each_task_on_its_own_and_pipeline_steps_follow(compat_server, api):
    controller = api.new_task(name="controller")
    steps = [
        api("tasks.create", name=f"step {i}", type="training", parent=controller)["id"]
        for i in range(2)
    ]
    missing = uuid.uuid4().hex
    answer = api("tasks.enqueue_many", ids=[*steps, missing], queue_name="batch queue")
    assert {s["id"] for s in answer["succeeded"]} == set(steps)
    assert [f["id"] for f in answer["failed"]] == [missing]
    assert answer["failed"][0]["error"]["codes"][0] == 400
    stopped = api("tasks.stop_many", ids=steps)["succeeded"]
    assert {s["fields"]["status"] for s in stopped} == {"stopped"}

    api("tasks.archive", tasks=[controller], include_pipeline_steps=True)
    listed = api("tasks.get_all_ex", id=[controller, *steps], system_tags=["-archived"])
    assert listed["tasks"] == []
    api("tasks.unarchive_many", ids=[controller], include_pipeline_steps=True)
    listed = api("tasks.get_all_ex", id=[controller, *steps], system_tags=["-archived"])
    assert len(listed["tasks"]) == 3

    outsider = Api(compat_server, compat_server.manage("shell", "-c", _OUTSIDER).strip())
    refused = outsider("tasks.delete_many", ids=[controller])
    assert refused["succeeded"] == [] and [f["id"] for f in refused["failed"]] == [controller]
    assert outsider.error("tasks.archive", tasks=[controller])[0] == 400
    api("tasks.delete", task=controller, force=True, include_pipeline_steps=True)
    assert api("tasks.get_all_ex", id=[controller, *steps])["tasks"] == []


def test_task_types_of_projects_and_an_unknown_type_is_a_validation_error(api):
    project = api("projects.create", name=f"types/{uuid.uuid4().hex[:8]}")["id"]
    api("tasks.create", name="ctl", project=project, type="controller")
    assert api("tasks.get_types", projects=[project]) == {"types": ["controller"]}
    assert "optimizer" in api("tasks.get_types")["types"]
    response = api.raw("tasks.create", {"name": "bad type", "project": project, "type": "nope"})
    meta = response.json()["meta"]
    assert (meta["result_code"], meta["result_subcode"]) == (400, 12)


def test_list_filters_take_any_all_include_exclude_and_none_for_no_tags(api):
    tagged, bare = api.new_task(tags=["t1", "t2"]), api.new_task()
    ids = [tagged, bare]

    def found(**condition):
        listed = api("tasks.get_all_ex", id=ids, filters={"tags": condition})["tasks"]
        return {t["id"] for t in listed}

    assert found(any={"include": [None]}) == {bare}
    assert found(any={"include": ["t1", None]}) == {tagged, bare}
    assert found(all={"include": ["t1", "t2"]}) == {tagged}
    assert found(all={"include": ["t1", None]}) == set()
    assert found(all={"exclude": [None]}) == {tagged}
    assert found(any={"include": ["t1"]}, all={"exclude": ["t2"]}) == set()
    for bad in ({"tags": {"some": {"include": ["x"]}}}, {"name": {"any": {}}}, "x"):
        response = api.raw("tasks.get_all_ex", {"filters": bad})
        assert (
            response.json()["meta"]["result_code"],
            response.json()["meta"]["result_subcode"],
        ) == (
            400,
            12,
        )


def test_ordering_puts_empty_values_last_both_ways_and_comment_filters(api):
    comment = f"ordering {uuid.uuid4().hex[:6]}"
    tasks = [api.new_task(name=f"ordered {i}", comment=comment) for i in range(3)]
    api("tasks.started", task=tasks[1])
    api("tasks.started", task=tasks[2])
    for order in ("started", "-started"):
        listed = api("tasks.get_all_ex", comment=comment, order_by=[order])["tasks"]
        assert {t["id"] for t in listed} == set(tasks)
        assert listed[-1]["id"] == tasks[0]  # never started: last either way
    newest_first = api("tasks.get_all_ex", comment=comment, order_by=["-started"])["tasks"]
    assert [t["id"] for t in newest_first[:2]] == [tasks[2], tasks[1]]


def test_a_task_model_updated_by_name_keeps_its_place(api):
    task_id = api.new_task()
    for name in ("first", "second"):
        api("tasks.add_or_update_model", task=task_id, name=name, type="input", model=name)
    api("tasks.add_or_update_model", task=task_id, name="first", type="input", model="new")
    inputs = api("tasks.get_by_id", task=task_id)["task"]["models"]["input"]
    assert [(m["name"], m["model"]) for m in inputs] == [("first", "new"), ("second", "second")]


def test_get_all_ex_names_the_project_and_types_exclude_with_not(api):
    project = api("projects.create", name=f"projection/{uuid.uuid4().hex[:8]}")["id"]
    task_id = api("tasks.create", name="projected", project=project, type="testing")["id"]
    listed = api(
        "tasks.get_all_ex",
        project=[project],
        only_fields=["id", "project.name"],
        type=["__$not", "training", "-inference"],
    )["tasks"]
    assert listed == [
        {
            "id": task_id,
            "project": {"name": api("projects.get_by_id", project=project)["project"]["name"]},
        }
    ]
    assert api("tasks.get_all_ex", project=[project], type=["__$not", "testing"])["tasks"] == []
    assert api("tasks.get_all", project=[project])["tasks"][0]["project"] == project


def test_archiving_a_queued_task_takes_it_out_of_its_queue_with_the_callers_message(api):
    queue = api("queues.get_default")["id"]
    waiting, draft = api.new_task(name="waiting"), api.new_task(name="draft")
    api("tasks.enqueue", task=waiting, queue=queue)
    listed = api("tasks.get_all_ex", id=[waiting])["tasks"][0]
    assert listed["execution"]["queue"] == {"id": queue, "name": "default", "display_name": None}
    api("tasks.archive", tasks=[waiting, draft], status_message="gone", status_reason="tidy")
    for task_id in (waiting, draft):
        document = api("tasks.get_by_id", task=task_id)["task"]
        assert "archived" in document["system_tags"] and document["status"] == "created"
        assert (document["status_message"], document["status_reason"]) == ("gone", "tidy")
    assert waiting not in [
        e["task"] for e in api("queues.get_by_id", queue=queue)["queue"]["entries"]
    ]


def test_a_worker_key_reporting_a_task_it_does_not_run_does_not_delay_its_stop(compat_server, api):
    task_id = _running(api)
    worker = Api(compat_server, compat_server.worker_key)
    name = f"agent-{uuid.uuid4().hex[:6]}"
    worker("workers.register", worker=name)
    worker("workers.status_report", worker=name, task=task_id, timestamp=int(time.time()))
    assert api("tasks.stop", task=task_id)["fields"]["status"] == "stopped"

    # The same key, once it has pulled the task, is its agent: the stop waits for it.
    queue = api("queues.create", name=f"agent queue {uuid.uuid4().hex[:6]}")["id"]
    pulled = api.new_task()
    api("tasks.enqueue", task=pulled, queue=queue)
    entry = worker.raw("queues.get_next_task", {"queue": queue}, headers={"X-ClearML-Worker": name})
    assert entry.json()["data"]["entry"]["task"] == pulled
    worker("workers.status_report", worker=name, task=pulled, timestamp=int(time.time()))
    assert api("tasks.stop", task=pulled)["fields"]["status_message"] == "stopping"
    worker("tasks.stopped", task=pulled, force=True)
    assert _status(api, pulled)[0] == "stopped"


_AGE_WORKERS = """
from datetime import timedelta
from django.utils import timezone
from webapp.core.models import Worker
Worker.objects.filter(name__in={names!r}).update(last_seen=timezone.now() - timedelta(seconds=60))
"""


def test_workers_keep_tags_and_their_own_timeout(compat_server, api):
    worker = Api(compat_server, compat_server.worker_key)
    short, plain = (f"w-{uuid.uuid4().hex[:6]}" for _ in range(2))
    tag = uuid.uuid4().hex[:8]
    worker("workers.register", worker=short, tags=[tag], system_tags=["gpu"], timeout=30)
    worker("workers.register", worker=plain, tags=[tag])
    listed = api("workers.get_all", tags=[tag], system_tags=["gpu"])["workers"]
    assert [(w["id"], w["tags"], w["system_tags"]) for w in listed] == [(short, [tag], ["gpu"])]
    assert api("workers.get_all", tags=[tag], system_tags=["-gpu"])["workers"][0]["id"] == plain
    assert api("workers.get_count", tags=[tag])["count"] == 2
    compat_server.manage("shell", "-c", _AGE_WORKERS.format(names=[short, plain]))
    # Past its own 30 s timeout the first is gone; the other has the server's (600 s).
    assert [w["id"] for w in api("workers.get_all", tags=[tag])["workers"]] == [plain]
    assert api("workers.get_count", tags=[tag], last_seen=10)["count"] == 0
    assert api.error("workers.register", worker=short, timeout=0)[0] == 400
