"""Projects as clearml-server's tests and web UI read them (bench/clearml_conformance.py
measures those; these are ours, so CI covers them without that suite): the tree of
subprojects and its search options, statistics and contents, the projects holding a kind
of child, ClearML's reports, starting and deleting pipeline runs, unique project names,
moving tasks, and the API 2.2 clients' single tags list."""

import time
import uuid

import pytest

from tests.compat.test_conformance import _OUTSIDER
from tests.compat.test_protocol import Api

pytestmark = [pytest.mark.compat, pytest.mark.e2e]


@pytest.fixture(scope="module")
def api(compat_server):
    return Api(compat_server)


@pytest.fixture(scope="module")
def outsider(compat_server):
    return Api(compat_server, compat_server.manage("shell", "-c", _OUTSIDER).strip())


def _root(api, prefix: str) -> tuple[str, str]:
    name = f"{prefix} {uuid.uuid4().hex[:8]}"
    return name, api("projects.create", name=name)["id"]


def _task(api, project: str, **fields) -> str:
    fields.setdefault("type", "testing")
    return api("tasks.create", name=fields.pop("name", "tree task"), project=project, **fields)[
        "id"
    ]


def _ran(api, *tasks) -> None:
    for task_id in tasks:
        api("tasks.started", task=task_id)
    time.sleep(1.05)
    for task_id in tasks:
        api("tasks.stopped", task=task_id)


def _ids(projects) -> list[str]:
    return [p["id"] for p in projects]


def test_the_tree_is_searched_shallow_or_deep_under_a_parent(api):
    root, root_id = _root(api, "tree")
    a = api("projects.create", name=f"{root}/a")["id"]
    ab = api("projects.create", name=f"{root}/a/b")["id"]
    aba = api("projects.create", name=f"{root}/a/b/a")["id"]
    deep = api("projects.get_all_ex", name=f"{root}/a", parent=[root_id])["projects"]
    assert set(_ids(deep)) == {a, ab, aba}
    assert _ids(api("projects.get_all_ex", parent=[root_id], shallow_search=True)["projects"]) == [
        a
    ]
    assert _ids(api("projects.get_all_ex", name=f"^{root}$", shallow_search=True)["projects"]) == [
        root_id
    ]
    assert (
        api("projects.get_all_ex", basename="b", shallow_search=True, name=root)["projects"] == []
    )
    assert _ids(api("projects.get_all_ex", basename="b", name=root)["projects"]) == [ab]
    child = api("projects.get_all_ex", id=[ab])["projects"][0]
    assert (child["parent"], child["basename"]) == ({"id": a, "name": f"{root}/a"}, "b")
    assert api("projects.get_by_id", project=ab)["project"]["parent"] == a
    assert api("projects.get_all", id=[root_id])["projects"][0]["parent"] is None


def test_stats_count_a_project_and_its_subprojects_by_state(api):
    root, root_id = _root(api, "stats")
    leaf = api("projects.create", name=f"{root}/x/leaf")["id"]
    active, archived = _task(api, leaf), _task(api, leaf, system_tags=["archived"])
    _ran(api, active, archived)
    empty = api("projects.create", name=f"{root}/empty")["id"]
    found = api("projects.get_all_ex", id=[root_id, empty], include_stats=True)["projects"]
    stats = {p["id"]: p for p in found}
    mine = stats[root_id]["stats"]
    assert set(mine) == {"active"}
    assert mine["active"]["status_count"]["stopped"] == 1
    assert (mine["active"]["total_tasks"], mine["active"]["total_runtime"]) == (1, 1)
    assert mine["active"]["completed_tasks_24h"] == 1 and mine["active"]["last_task_run"]
    assert {p["name"] for p in stats[root_id]["sub_projects"]} == {
        f"{root}/x",
        f"{root}/x/leaf",
        f"{root}/empty",
    }
    assert (
        stats[empty]["stats"]["active"]["total_tasks"] == 0 and stats[empty]["sub_projects"] == []
    )
    both = api("projects.get_all_ex", id=[leaf], include_stats=True, stats_for_state=None)
    assert both["projects"][0]["stats"]["archived"]["total_tasks"] == 1
    api("models.create", name="own", uri="file:///own", project=leaf, labels={})
    found = api("projects.get_all_ex", id=[leaf, root_id], check_own_contents=True)["projects"]
    own = {p["id"]: p for p in found}
    assert (own[leaf]["own_tasks"], own[leaf]["own_models"]) == (1, 1)
    assert (own[root_id]["own_tasks"], own[root_id]["own_models"]) == (0, 0)


def test_task_and_model_queries_take_subprojects_when_asked(api):
    root, root_id = _root(api, "subs")
    child = api("projects.create", name=f"{root}/child")["id"]
    for project in (root_id, child):
        _task(api, project)
        api("models.create", name="m", uri="file:///m", project=project, labels={})
    for endpoint, key in (("tasks.get_all_ex", "tasks"), ("models.get_all", "models")):
        assert len(api(endpoint, project=root_id)[key]) == 1
        assert len(api(endpoint, project=root_id, include_subprojects=True)[key]) == 2


def test_datasets_count_and_report_their_size(api):
    name, dataset = _root(api, "dataset")
    api("projects.update", project=dataset, system_tags=["dataset"])
    counted = api("organization.get_entities_count", datasets={"system_tags": ["dataset"]})
    assert counted["datasets"] >= 1
    named = api("organization.get_entities_count", datasets={"name": f"^{name}$"}, tasks={})
    assert named["datasets"] == 1 and named["tasks"] >= 0
    task = _task(api, dataset)
    read = api("projects.get_all_ex", id=[dataset], include_dataset_stats=True)["projects"][0]
    assert read["dataset_stats"] is None
    api("tasks.edit", task=task, runtime={"ds_file_count": 2, "ds_total_size": 1000})
    read = api("projects.get_all_ex", id=[dataset], include_dataset_stats=True)["projects"][0]
    assert read["dataset_stats"] == {"file_count": 2, "total_size": 1000}


def test_projects_holding_a_kind_of_child_are_listed_with_their_counts(api):
    root, root_id = _root(api, "children")
    data = api("projects.create", name=f"{root}/P1/Data", system_tags=["dataset"], tags=["b", "a"])
    _task(api, data["id"], type="data_processing", system_tags=["dataset"])
    pipe = api("projects.create", name=f"{root}/P2/Pipe", system_tags=["pipeline"])["id"]
    _task(api, pipe, type="controller", system_tags=["pipeline"])
    reports = api("projects.create", name=f"{root}/P3")["id"]
    api("reports.create", name="tagged report", project=reports, tags=["t1", "t2"])
    api("reports.create", name="half report", project=reports, tags=["t1"])
    _task(api, reports)
    shallow = {"parent": [root_id], "shallow_search": True, "include_stats": True}
    listed = api("projects.get_all_ex", **shallow)["projects"]
    # The hidden `.reports` project counts only when reports are asked for.
    assert {p["basename"]: p["stats"]["active"]["total_tasks"] for p in listed} == {
        "P1": 1,
        "P2": 1,
        "P3": 1,
    }
    by_kind = {}
    for kind in ("dataset", "pipeline", "report"):
        found = api("projects.get_all_ex", children_type=kind, check_own_contents=True, **shallow)
        by_kind[kind] = found["projects"]
    assert [p["basename"] for p in by_kind["dataset"]] == ["P1"]
    assert by_kind["dataset"][0]["own_datasets"] == 1
    assert by_kind["dataset"][0]["stats"]["datasets"] == {"count": 1, "tags": ["a", "b"]}
    assert [(p["basename"], p["own_tasks"]) for p in by_kind["pipeline"]] == [("P2", 0)]
    assert by_kind["report"][0]["stats"]["active"]["total_tasks"] == 2
    both = api(
        "projects.get_all_ex",
        children_type="report",
        children_tags=["__$all", "t1", "t2"],
        **shallow,
    )
    assert both["projects"][0]["stats"]["active"]["total_tasks"] == 1
    neither = api(
        "projects.get_all_ex",
        children_type="report",
        children_tags_filter={"all": {"exclude": ["t2"]}},
        **shallow,
    )
    assert neither["projects"][0]["stats"]["active"]["total_tasks"] == 1
    assert api(
        "projects.get_all_ex", children_type="report", children_tags=["nope"], **shallow
    ) == {"projects": []}
    code, _ = api.error("projects.get_all_ex", children_type="nope")
    assert code == 400


def test_reports_live_in_hidden_projects_and_follow_their_rules(api, outsider):
    name, project = _root(api, "reports")
    created = api("reports.create", name="Rep1", comment="first", tags=["hello"], project=project)
    report, home = created["id"], created["project_id"]
    doc = api("tasks.get_all_ex", id=[report])["tasks"][0]
    assert (doc["type"], set(doc["system_tags"])) == ("report", {"hidden", "reports"})
    assert doc["project"]["id"] == home
    hidden = api("projects.get_all_ex", name=f"^{name}/\\.reports$", search_hidden=True)
    assert hidden["projects"][0]["system_tags"] == ["hidden", "reports"]
    assert api("projects.get_all_ex", name=f"^{name}/\\.reports$")["projects"] == []
    assert "hello" in api("reports.get_tags")["tags"]
    assert "hello" not in outsider("reports.get_tags")["tags"]
    assert outsider("reports.get_all_ex", project=project) == {"tasks": []}
    answer = api(
        "reports.update", task=report, report="hello markdown " * 20, report_assets=["file://a.png"]
    )
    assert answer["updated"] == 1 and len(answer["fields"]["report"]) <= 100
    found = api(
        "reports.get_all_ex", project=project, _any_={"pattern": "markdown", "fields": ["report"]}
    )
    assert [t["id"] for t in found["tasks"]] == [report]
    assert found["tasks"][0]["report_assets"] == ["file://a.png"]
    api("reports.publish", task=report)
    code, _ = api.error("reports.update", task=report, report="changed")
    assert code == 400
    api("reports.update", task=report, name="renamed", tags=["after"])
    assert api("tasks.get_by_id", task=report)["task"]["name"] == "renamed"
    plain = _task(api, project)
    assert api.error("reports.update", task=plain, comment="x") == (
        400,
        f"task {plain} is not a report",
    )
    # Moving the only report out deletes its emptied `.reports` project.
    moved = api("reports.move", task=report, project_name=f"{name}/elsewhere")["project_id"]
    assert (
        api("projects.get_by_id", project=moved)["project"]["name"] == f"{name}/elsewhere/.reports"
    )
    assert api.error("projects.get_by_id", project=home)[0] == 400
    root = api("reports.move", task=report, project=None)["project_id"]
    assert api("projects.get_by_id", project=root)["project"]["name"] == ".reports"
    assert report in [t["id"] for t in api("reports.get_all_ex", project=[None])["tasks"]]
    code, _ = api.error("reports.delete", task=report)
    assert code == 400  # published: only with force
    assert api("reports.delete", task=report, force=True) == {"deleted": 1}
    assert outsider.error("reports.create", name="theirs", project=project)[0] == 400


def test_a_pipeline_is_started_from_its_controller_and_its_runs_deleted(api):
    name, project = _root(api, "pipeline")
    controller = _task(
        api,
        project,
        name=name,
        type="controller",
        system_tags=["pipeline"],
        hyperparams={
            "properties": {"version": {"section": "properties", "name": "version", "value": "1"}}
        },
    )
    queue = api("queues.create", name=f"pipes {uuid.uuid4().hex[:6]}")["id"]
    started = api(
        "pipelines.start_pipeline", task=controller, queue=queue, args=[{"name": "n", "value": 3}]
    )
    run = started["pipeline"]
    assert started["enqueued"] is True
    doc = api("tasks.get_all_ex", id=[run])["tasks"][0]
    assert (doc["status"], doc["project"]["id"], doc["name"]) == ("queued", project, f"{name} #2")
    assert doc["hyperparams"]["Args"]["n"]["value"] == "3"
    assert doc["hyperparams"]["properties"]["version"]["value"] == "1"
    watched = api(
        "pipelines.start_pipeline", task=controller, queue=queue, verify_watched_queue=True
    )
    assert watched["queue_watched"] is False
    api("workers.register", worker=f"pipes-{uuid.uuid4().hex[:6]}", queues=[queue])
    watched = api(
        "pipelines.start_pipeline", task=controller, queue=queue, verify_watched_queue=True
    )
    assert watched["queue_watched"] is True
    runs = [run, watched["pipeline"]]
    every = [t["id"] for t in api("tasks.get_all", project=project, type=["controller"])["tasks"]]
    assert api.error("pipelines.delete_runs", project=project, ids=every)[0] == 400
    deleted = api("pipelines.delete_runs", project=project, ids=runs)
    assert {r["id"] for r in deleted["succeeded"]} == set(runs) and deleted["failed"] == []
    assert controller in [t["id"] for t in api("tasks.get_all", project=project)["tasks"]]
    assert api.error("pipelines.start_pipeline", task=controller, queue=queue, args="x")[0] == 400


def test_project_names_are_unique_and_renaming_takes_the_subprojects(api):
    name, project = _root(api, "unique")
    child = api("projects.create", name=f"{name}/child")["id"]
    assert api.error("projects.create", name=name)[0] == 400
    meta = api.raw("projects.create", {"name": name}).json()["meta"]
    assert meta["result_subcode"] == 801
    assert api.raw("projects.create", {"name": "/"}).json()["meta"]["result_subcode"] == 407
    other_name, other = _root(api, "unique other")
    assert (
        api.raw("projects.update", {"project": other, "name": name}).json()["meta"][
            "result_subcode"
        ]
        == 801
    )
    assert (
        api.raw("projects.update", {"project": child, "name": f"{other_name}/child"}).json()[
            "meta"
        ]["result_subcode"]
        == 408
    )
    renamed = f"{name} renamed"
    assert api("projects.update", project=project, name=renamed)["updated"] == 1
    assert api("projects.get_by_id", project=child)["project"]["name"] == f"{renamed}/child"


def test_tasks_and_models_move_to_another_project_but_never_to_none(api, outsider):
    _, first = _root(api, "moves")
    second_name, second = _root(api, "moves")
    task = _task(api, first, tags=["moving"])
    api("tasks.edit", task=task, project=second)
    assert api("projects.get_task_tags", projects=[first])["tags"] == []
    assert api("projects.get_task_tags", projects=[second])["tags"] == ["moving"]
    target = f"{second_name}/by name"
    moved_to = api("tasks.move", ids=[task], project_name=target)["project_id"]
    assert api("tasks.get_by_id", task=task)["task"]["project"] == moved_to
    model = api("models.create", name="moved", uri="file:///mv", labels={})["id"]
    assert api("models.move", ids=[model], project=second)["project_id"] == second
    assert api("models.get_by_id", model=model)["model"]["project"] == second
    assert api.error("tasks.move", ids=[task], project=None)[0] == 400
    _, theirs = _root(outsider, "outsider")
    assert api("tasks.get_by_id", task=task)["task"]["project"] == moved_to
    assert outsider.error("tasks.edit", task=task, project=theirs)[0] == 400


def test_an_api_2_2_client_reads_and_writes_system_tags_in_tags(api):
    _, project = _root(api, "legacy")
    old = {"version": "v2.2/"}

    def call(endpoint, **body):
        response = api.raw(endpoint, body, **old)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    task = call(
        "tasks.create", name="legacy", type="testing", project=project, tags=["development", "t"]
    )["id"]
    assert set(call("tasks.get_by_id", task=task)["task"]["tags"]) == {"development", "t"}
    now = api("tasks.get_by_id", task=task)["task"]
    assert (now["tags"], now["system_tags"]) == (["t"], ["development"])
    assert task not in [
        t["id"] for t in call("tasks.get_all", project=[project], tags=["-development"])["tasks"]
    ]
    call("tasks.update", task=task, tags=["t"])
    assert api("tasks.get_by_id", task=task)["task"]["system_tags"] == []
