"""Behaviours clearml-server's own API tests asked for (test_task_hyperparams,
test_paging_and_scrolling, test_tasks_filtering, test_workers, test_queues, test_users),
through the real HTTP door: parameters as clearml-server answers them, API 2.8's legacy
parameters, ordering by a parameter's value, scrolling, pings, the workers' machine
statistics, a queue's workers, users created by staff and their preferences."""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.compat.test_conformance import _OUTSIDER
from tests.compat.test_protocol import Api

pytestmark = [pytest.mark.compat, pytest.mark.e2e]


@pytest.fixture(scope="module")
def api(compat_server):
    return Api(compat_server)


def _project(api) -> str:
    return api("projects.create", name=f"misc/{uuid.uuid4().hex[:8]}")["id"]


def test_parameters_without_type_or_description_are_answered_without_them(api):
    task = api.new_task(
        hyperparams={"s": {"p": {"section": "s", "name": "p", "value": "1"}}},
        configuration={"c": {"name": "c", "value": "v", "type": "yaml", "description": "d"}},
    )
    document = api("tasks.get_by_id", task=task)["task"]
    assert document["hyperparams"] == {"s": {"p": {"section": "s", "name": "p", "value": "1"}}}
    assert document["configuration"] == {
        "c": {"name": "c", "value": "v", "type": "yaml", "description": "d"}
    }


def test_parameter_lists_are_sorted_and_only_drafts_or_properties_change_without_force(api):
    task = api.new_task()
    params = [
        {"section": "b", "name": "x", "value": "1"},
        {"section": "a", "name": "z", "value": "2"},
        {"section": "a", "name": "y", "value": "3"},
    ]
    api("tasks.edit_hyper_params", task=task, hyperparams=params)
    listed = api("tasks.get_hyper_params", tasks=[task])["params"][0]["hyperparams"]
    assert [(p["section"], p["name"]) for p in listed] == [("a", "y"), ("a", "z"), ("b", "x")]
    api("tasks.edit_configuration", task=task, configuration=[{"name": "z", "value": "1"}])
    api("tasks.edit_configuration", task=task, configuration=[{"name": "e", "value": ""}])
    api("tasks.edit_configuration", task=task, configuration=[{"name": "a", "value": "2"}])
    items = api("tasks.get_configurations", tasks=[task])["configurations"][0]["configuration"]
    assert [i["name"] for i in items] == ["a", "e", "z"]
    names = api("tasks.get_configuration_names", tasks=[task])["configurations"][0]["names"]
    assert names == ["a", "z"]  # an empty one is skipped unless skip_empty is false
    everything = api("tasks.get_configuration_names", tasks=[task], skip_empty=False)
    assert everything["configurations"][0]["names"] == ["a", "e", "z"]
    assert api("tasks.delete_configuration", task=task, configuration=["z"])["deleted"] == 1

    api("tasks.started", task=task)
    new = [{"section": "b", "name": "x", "value": "9"}]
    code, message = api.error("tasks.edit_hyper_params", task=task, hyperparams=new)
    assert code == 400 and "Invalid task status" in message
    assert api.error("tasks.delete_configuration", task=task, configuration=["a"])[0] == 400
    api("tasks.edit_hyper_params", task=task, hyperparams=new, force=True)
    # The user properties change in any state.
    props = [{"section": "Properties", "name": "owner", "value": "me"}]
    api("tasks.edit_hyper_params", task=task, hyperparams=props)
    document = api("tasks.get_by_id", task=task)["task"]
    assert document["hyperparams"]["properties"]["owner"]["value"] == "me"
    assert document["hyperparams"]["b"]["x"]["value"] == "9"


def test_legacy_parameters_are_args_and_old_clients_read_them_back(api):
    task = api.new_task(
        execution={
            "parameters": {"lr": 0.1, "TF_DEFINE/depth": "3"},
            "model_desc": {"design": "hello"},
        },
        hyperparams={"General": {"x": {"section": "General", "name": "x", "value": "1"}}},
    )
    document = api("tasks.get_by_id", task=task)["task"]
    assert document["hyperparams"]["Args"]["lr"] == {
        "section": "Args",
        "name": "lr",
        "value": "0.1",
        "type": "legacy",
    }
    assert document["hyperparams"]["TF_DEFINE"]["depth"]["value"] == "3"
    assert document["hyperparams"]["General"]["x"]["value"] == "1"
    assert document["configuration"]["design"]["type"] == "legacy"
    old = api.raw("tasks.get_all_ex", {"id": [task]}, version="v2.8/").json()["data"]["tasks"][0]
    assert old["execution"]["parameters"] == {"lr": "0.1", "TF_DEFINE/depth": "3"}
    assert old["execution"]["model_desc"] == {"design": "hello"}
    # An edit with legacy parameters replaces the legacy ones and keeps the others.
    api("tasks.edit", task=task, execution={"parameters": {"epochs": 2}})
    document = api("tasks.get_by_id", task=task)["task"]
    assert set(document["hyperparams"]) == {"General", "Args"}
    assert set(document["hyperparams"]["Args"]) == {"epochs"}
    code, _ = api.error("tasks.edit", task=task, execution={"parameters": ["not", "a", "dict"]})
    assert code == 400


def test_tasks_order_by_a_parameters_value_numerically_and_scroll(api):
    project = _project(api)
    tasks = [
        api(
            "tasks.create",
            name=f"ordered {value}",
            project=project,
            type="training",
            hyperparams={"s": {"p": {"section": "s", "name": "p", "value": value}}},
        )["id"]
        for value in ("2", "11", "1")
    ]
    by_value = [tasks[2], tasks[0], tasks[1]]
    for path in ("hyperparams.s.p", "hyperparams.s.p.value"):
        rows = api("tasks.get_all_ex", project=[project], order_by=[path])["tasks"]
        assert [t["id"] for t in rows] == by_value
    rows = api("tasks.get_all", project=[project], order_by=["-hyperparams.s.p"])["tasks"]
    assert [t["id"] for t in rows] == by_value[::-1]
    # A page of the ordered rows, then a scroll through them two at a time.
    page = api(
        "tasks.get_all", project=[project], order_by=["hyperparams.s.p"], page=1, page_size=2
    )
    assert [t["id"] for t in page["tasks"]] == by_value[2:]
    seen, scroll = [], None
    for expected in (2, 1, 0):
        answer = api(
            "tasks.get_all",
            project=[project],
            order_by=["hyperparams.s.p"],
            size=2,
            scroll_id=scroll,
        )
        assert len(answer["tasks"]) == expected and answer["scroll_id"]
        seen += [t["id"] for t in answer["tasks"]]
        scroll = answer["scroll_id"]
    assert seen == by_value
    again = api(
        "tasks.get_all",
        project=[project],
        order_by=["hyperparams.s.p"],
        size=2,
        scroll_id=scroll,
        refresh_scroll=True,
    )
    assert [t["id"] for t in again["tasks"]] == by_value
    assert api.error("tasks.get_all", project=[project], size=2, scroll_id="forged")[0] == 400
    # A section with a dot, escaped in the path as the web UI sends it.
    dotted = api(
        "tasks.create",
        name="dotted",
        project=project,
        type="training",
        hyperparams={"a.b": {"p": {"section": "a.b", "name": "p", "value": "x"}}},
    )["id"]
    shown = api("tasks.get_all", id=[dotted], only_fields=["hyperparams.a%2Eb"])["tasks"][0]
    assert shown["hyperparams"] == {"a.b": {"p": {"section": "a.b", "name": "p", "value": "x"}}}
    assert api.error("tasks.get_all", project=[project], scroll_id=None)[0] == 400


def test_a_ping_moves_clearmls_last_update_but_not_the_status_change(api):
    task = api.new_task()
    before = datetime.now(UTC).replace(tzinfo=None)
    time.sleep(0.05)
    api("tasks.ping", task=task)
    since = f">={before.isoformat()}"
    assert task in {t["id"] for t in api("tasks.get_all_ex", last_update=since)["tasks"]}
    fields = ["last_update", "status_changed"]
    any_ = api("tasks.get_all_ex", _any_={"datetime": since, "fields": fields})["tasks"]
    all_ = api("tasks.get_all_ex", _all_={"datetime": since, "fields": fields})["tasks"]
    assert task in {t["id"] for t in any_} and task not in {t["id"] for t in all_}
    earlier = [f">={(before - timedelta(minutes=1)).isoformat()}", f"<={before.isoformat()}"]
    assert task not in {t["id"] for t in api("tasks.get_all_ex", last_update=earlier)["tasks"]}
    document = api("tasks.get_by_id", task=task)["task"]
    assert document["last_update"] > document["status_changed"]


def test_workers_machine_statistics_are_kept_and_charted(api):
    start = (int(time.time()) // 40) * 40
    worker, idle = f"stats-{uuid.uuid4().hex[:8]}", f"idle-{uuid.uuid4().hex[:8]}"
    task = api.new_task()
    api("tasks.started", task=task)
    for step in range(3):
        timestamp = (start + step * 40) * 1000
        api(
            "workers.status_report",
            worker=worker,
            task=task,
            timestamp=timestamp,
            machine_stats={"cpu_usage": [10 + step, 20], "memory_used": 50, "bogus": 1},
        )
        api(
            "workers.status_report",
            worker=idle,
            timestamp=timestamp,
            machine_stats={"cpu_usage": [5]},
        )
    keys = api("workers.get_metric_keys", worker_ids=[worker])["categories"]
    assert {c["name"]: c["metric_keys"] for c in keys} == {
        "cpu": ["cpu_usage"],
        "memory": ["memory_used"],
    }
    code, message = api.error("workers.get_metric_keys", worker_ids=["nobody"])
    assert code == 400
    window = {"from_date": start, "to_date": start + 200, "interval": 1}
    stats = api(
        "workers.get_stats",
        items=[
            {"key": "cpu_usage", "aggregation": "avg"},
            {"key": "cpu_usage", "aggregation": "max"},
            {"key": "memory_used", "aggregation": "min"},
        ],
        worker_ids=[worker],
        **window,
    )["workers"]
    assert [w["worker"] for w in stats] == [worker]
    cpu, memory = stats[0]["metrics"]
    assert (cpu["metric"], memory["metric"]) == ("cpu_usage", "memory_used")
    # 40 s buckets (the least clearml-server charts), the last one complete before to_date.
    assert cpu["dates"] == [(start + 40 * i) * 1000 for i in range(5)]
    values = {s["aggregation"]: s["values"] for s in cpu["stats"]}
    assert values["avg"] == [15, 15.5, 16, 0.0, 0.0] and values["max"][:3] == [20, 20, 20]
    split = api(
        "workers.get_stats",
        items=[{"key": "cpu_usage", "aggregation": "avg"}],
        worker_ids=[worker, idle],
        split_by_variant=True,
        **window,
    )["workers"]
    variants = {w["worker"]: {m["variant"] for m in w["metrics"]} for w in split}
    assert variants == {worker: {"0", "1"}, idle: {"0"}}
    report = api("workers.get_activity_report", **window)
    assert report["total"]["counts"][:3] == [2, 2, 2] and report["active"]["counts"][:3] == [
        1,
        1,
        1,
    ]
    assert api.error("workers.get_stats", items=[], from_date=10, to_date=5, interval=1)[0] == 400


def test_a_queues_workers_are_listed_with_their_task_and_address(api):
    queue = api("queues.create", name=f"misc-{uuid.uuid4().hex[:8]}", display_name="Shown")["id"]
    worker = f"queue-worker-{uuid.uuid4().hex[:8]}"
    task = api.new_task(name="worker's task")
    api("tasks.started", task=task)
    api("workers.register", worker=worker, queues=[queue])
    api("workers.status_report", worker=worker, task=task, timestamp=int(time.time() * 1000))
    listed = api("queues.get_all_ex", id=[queue])["queues"][0]["workers"]
    user = api("users.get_current_user")["user"]["id"]
    assert listed == [
        {
            "name": worker,
            "ip": "127.0.0.1",
            "key": f"worker_pipelines_{user}_{worker}",
            "task": {"id": task, "name": "worker's task"},
        }
    ]
    row = next(w for w in api("workers.get_all")["workers"] if w["id"] == worker)
    assert [(q["id"], q["display_name"]) for q in row["queues"]] == [(queue, "Shown")]
    queued = api.new_task()
    api("tasks.enqueue", task=queued, queue=queue)
    shown = api("tasks.get_by_id_ex", id=[queued], only_fields=["execution.queue.display_name"])
    assert shown["tasks"][0]["execution"]["queue"]["display_name"] == "Shown"


def test_staff_create_users_and_act_as_them_whose_preferences_are_their_own(compat_server, api):
    name = uuid.uuid4().hex
    user = api("auth.create_user", company="pipelines", name=name, email=f"{name}@example.com")[
        "id"
    ]
    assert api.error("auth.create_user", name=name)[0] == 400  # the name is taken
    as_user = {"X-ClearML-Impersonate-As": user}

    def call(endpoint, **body):
        response = api.raw(endpoint, body, headers=as_user)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    assert call("users.get_current_user")["user"]["name"] == name
    assert call("users.get_preferences")["preferences"] == {}
    call("users.set_preferences", preferences={"a": 0})
    call("users.set_preferences", preferences={"section": {"a": 2, "b": 1}})
    call("users.set_preferences", preferences={"section": {"a": None}})
    assert call("users.get_preferences")["preferences"] == {"a": 0, "section": {"a": None}}
    assert api("users.get_preferences")["preferences"] == {}  # the staff user's own
    bad = api.raw("users.set_preferences", {"preferences": {"$x": 1}}, headers=as_user)
    assert bad.status_code == 400
    # Acting as the new user gives its rights, not the staff key's: it sees no admin task.
    admin_task = api.new_task()
    assert api.raw("tasks.get_by_id", {"task": admin_task}, headers=as_user).status_code == 400
    unknown = api.raw("users.get_preferences", headers={"X-ClearML-Impersonate-As": "999999"})
    assert unknown.status_code == 400

    outsider = Api(compat_server, compat_server.manage("shell", "-c", _OUTSIDER).strip())
    assert outsider.error("auth.create_user", name=uuid.uuid4().hex)[0] == 403
    refused = outsider.raw("users.get_preferences", headers=as_user)
    assert refused.status_code == 403
    # Its own preferences, apart from anyone's.
    outsider("users.set_preferences", preferences={"mine": True})
    assert call("users.get_preferences")["preferences"] == {"a": 0, "section": {"a": None}}


def test_a_worker_key_of_a_staff_user_neither_creates_users_nor_acts_as_anyone(compat_server, api):
    name = uuid.uuid4().hex
    user = api("auth.create_user", company="pipelines", name=name, email=f"{name}@example.com")[
        "id"
    ]
    worker = Api(compat_server, compat_server.worker_key)
    assert worker.error("auth.create_user", name=uuid.uuid4().hex)[0] == 403
    acting = worker.raw("users.get_current_user", headers={"X-ClearML-Impersonate-As": user})
    assert acting.status_code == 403, acting.text
    # without the header the same key is itself, not the user it named
    assert worker("users.get_current_user")["user"]["name"] != name
