"""ClearML's wire protocol on a live server, byte for byte where the SDK is strict: the
envelope on every outcome, GET bodies, tokens, status rules, filters, events, file server.
No SDK needed: these are the traps the protocol research lists (section 2.6)."""

import base64
import json
import uuid

import pytest
import requests

from tests.compat.conftest import clearml_keys

pytestmark = [pytest.mark.compat, pytest.mark.e2e]


class Api:
    def __init__(self, server, key: str | None = None):
        self.server = server
        self.base = f"{server.url}/clearml-api"
        access, secret = clearml_keys(key or server.api_key)
        login = requests.get(f"{self.base}/auth.login", auth=(access, secret), timeout=10)
        assert login.status_code == 200, login.text
        self.token = login.json()["data"]["token"]

    def raw(self, endpoint: str, body=None, method: str = "get", version: str = "v2.23/", **kw):
        headers = {"Authorization": f"Bearer {self.token}", **kw.pop("headers", {})}
        return requests.request(
            method,
            f"{self.base}/{version}{endpoint}",
            data=json.dumps(body or {}),
            headers={"Content-Type": "application/json", **headers},
            allow_redirects=False,
            timeout=30,
            **kw,
        )

    def __call__(self, endpoint: str, **body) -> dict:
        response = self.raw(endpoint, body)
        payload = response.json()
        assert response.status_code == payload["meta"]["result_code"] == 200, (
            payload["meta"].get("result_msg"),
            payload["meta"],
        )
        return payload["data"]

    def error(self, endpoint: str, **body) -> tuple[int, str]:
        response = self.raw(endpoint, body)
        meta = response.json()["meta"]
        assert response.status_code == meta["result_code"]
        return meta["result_code"], meta["result_msg"]

    def new_task(self, name: str = "protocol task", **fields) -> str:
        project = self("projects.create", name=f"protocol/{uuid.uuid4().hex[:8]}")["id"]
        return self("tasks.create", name=name, project=project, type="training", **fields)["id"]


@pytest.fixture(scope="module")
def api(compat_server):
    return Api(compat_server)


def _envelope(response) -> dict:
    payload = response.json()
    assert set(payload) == {"meta", "data"}, payload
    assert response.status_code == payload["meta"]["result_code"]
    return payload["meta"]


def test_login_issues_a_token_with_the_claims_the_sdk_reads(compat_server, api):
    claims = json.loads(base64.urlsafe_b64decode(api.token.split(".")[1] + "=="))
    assert claims["api_version"] == "2.31"
    assert claims["feature_set"] == "basic"
    assert claims["exp"] > claims["iat"]
    access, _ = clearml_keys(compat_server.api_key)
    wrong = requests.get(f"{api.base}/auth.login", auth=(access, "nope"), timeout=10)
    assert wrong.status_code == 401 and _envelope(wrong)["result_code"] == 401


def test_every_error_is_an_envelope_with_the_http_status_and_never_a_redirect(api):
    cases = [
        (api.raw("tasks.no_such_action"), 404),
        (api.raw("tasks.get_all", headers={"Authorization": "Bearer garbage"}), 401),
        (api.raw("tasks.get_all", headers={"Authorization": ""}), 401),
        (api.raw("tasks.get_all", method="delete"), 405),
        (api.raw("not-an-endpoint/at/all"), 404),
        (api.raw("tasks.get_by_id", {"task": "0" * 32}), 400),
        (api.raw("queues.get_by_id", {"queue": "services"}), 400),
    ]
    bad_json = requests.get(
        f"{api.base}/tasks.get_all",
        data="{not json",
        headers={"Authorization": f"Bearer {api.token}"},
        timeout=10,
    )
    cases.append((bad_json, 400))
    for response, status in cases:
        meta = _envelope(response)
        assert meta["result_code"] == status, (response.url, meta)
        assert meta["result_msg"]


def test_get_bodies_work_with_or_without_version_and_trailing_slash(api):
    task_id = api.new_task()
    for version, suffix in (("v2.23/", ""), ("", ""), ("v2.5/", "/")):
        response = api.raw(f"tasks.get_by_id{suffix}", {"task": task_id}, version=version)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["task"]["id"] == task_id
    # the SDK's junk "method" key (and any unknown key) is ignored
    assert api("tasks.get_by_id", task=task_id, method="get", surprise=1)["task"]["id"] == task_id


def test_revoking_a_key_ends_its_tokens(compat_server):
    key = compat_server.manage(
        "shell",
        "-c",
        "from webapp.core.keys import create_api_key;"
        "from django.contrib.auth import get_user_model;"
        "print(create_api_key(get_user_model().objects.get(username='admin'))[1])",
    ).split()[-1]
    api = Api(compat_server, key)
    assert api("projects.get_all", name="^nothing$")["projects"] == []
    compat_server.api(key).delete(f"{compat_server.url}/api/v1/keys/?prefix={key.split('_')[1]}")
    assert api.error("projects.get_all")[0] == 401


def test_status_rules_follow_clearml(api):
    task_id = api.new_task()
    api("tasks.started", task=task_id)
    api("tasks.started", task=task_id, force=False)  # same state is allowed
    api("tasks.failed", task=task_id, status_reason="boom")
    # failed -> completed is refused: a failed pipeline stays failed when its runner reports
    code, message = api.error("tasks.completed", task=task_id, force=False)
    assert code == 400 and "failed" in message
    assert api("tasks.get_by_id", task=task_id)["task"]["status"] == "failed"
    # completed -> stopped needs force; stopped tasks can be enqueued (pipe.start() does it)
    other = api.new_task(system_tags=["development"])
    api("tasks.started", task=other)
    api("tasks.completed", task=other)
    assert api.error("tasks.stopped", task=other)[0] == 400
    api("tasks.stopped", task=other, force=True)
    queue = api("queues.get_all", name="^services$")["queues"][0]["id"]
    assert api("tasks.enqueue", task=other, queue=queue)["queued"] == 1
    document = api("tasks.get_by_id", task=other)["task"]
    assert document["status"] == "queued"
    assert document["execution"]["queue"] == queue
    assert "development" not in document["system_tags"]
    # an agent pulls it: popped and running, the queue empty again
    entry = api.raw("queues.get_next_task", {"queue": queue}, headers={"X-ClearML-Worker": "w1"})
    assert entry.json()["data"]["entry"]["task"] == other
    assert api("tasks.get_by_id", task=other)["task"]["status"] == "in_progress"
    assert api("queues.get_next_task", queue=queue) == {}
    api("tasks.reset", task=other, force=True)
    assert api("tasks.get_by_id", task=other)["task"]["status"] == "created"


def test_name_regexes_tag_filters_projection_and_paging(api):
    project = api("projects.create", name="protocol/regex space")["id"]
    for name in ("Pipeline demo", "Pipeline demo #2", "Pipeline demolition"):
        api("tasks.create", name=name, project=project, system_tags=["pipeline"])
    found = api(
        "tasks.get_all",
        project=[project],
        name=r"^Pipeline\ demo(| #\d+)$",
        system_tags=["pipeline", "-archived"],
        only_fields=["id", "name"],
        order_by=["-created"],
        page=0,
        page_size=100,
    )["tasks"]
    assert [t["name"] for t in found] == ["Pipeline demo #2", "Pipeline demo"]
    assert set(found[0]) == {"id", "name"}
    assert len(api("tasks.get_all", project=[project], page=1, page_size=2)["tasks"]) == 1
    # our archived flag is ClearML's `archived` system tag, both ways
    newest = found[0]["id"]
    api("tasks.archive", tasks=[newest])
    kept = api("tasks.get_all", project=[project], system_tags=["-archived"])["tasks"]
    assert newest not in {t["id"] for t in kept} and len(kept) == 2
    tags = api("tasks.get_by_id", task=newest)["task"]["system_tags"]
    api("tasks.edit", task=newest, force=True, system_tags=[t for t in tags if t != "archived"])
    assert "archived" not in api("tasks.get_by_id", task=newest)["task"]["system_tags"]
    # project names are regexes too, matched ignoring case, hidden ones only when asked
    assert api("projects.get_all", name=r"^PROTOCOL/regex\ space$")["projects"][0]["id"] == project
    api("projects.update", project=project, system_tags=["hidden"])
    assert api("projects.get_all", name=r"^protocol/regex\ space$")["projects"] == []
    assert api("projects.get_all", name=r"^protocol/regex\ space$", search_hidden=True)["projects"]


def test_parameters_round_trip_in_both_shapes(compat_server, api):
    task_id = api.new_task()
    hyperparams = {
        "General": {
            "test_size": {
                "section": "General",
                "name": "test_size",
                "value": "0.2",
                "type": "float",
            }
        }
    }
    api("tasks.edit", task=task_id, force=True, hyperparams=hyperparams)
    api(
        "tasks.edit_hyper_params",
        task=task_id,
        hyperparams=[{"section": "properties", "name": "version", "value": "0.0.1"}],
        replace_hyperparams="none",
    )
    document = api("tasks.get_by_id", task=task_id)["task"]
    assert document["hyperparams"]["General"]["test_size"]["value"] == "0.2"
    assert document["hyperparams"]["properties"]["version"]["name"] == "version"
    ours = compat_server.api().get(f"{compat_server.url}/api/v1/tasks/{task_id}/").json()
    assert ours["hyperparameters"]["General"]["test_size"] == {
        "value": "0.2",
        "type": "float",
        "description": "",
    }
    script = {"entry_point": "s.py", "working_dir": ".", "diff": "print('hi')\n"}
    api("tasks.edit", task=task_id, force=True, script=script)
    api("tasks.set_requirements", task=task_id, requirements={"pip": "numpy == 2.0\n"})
    ours = compat_server.api().get(f"{compat_server.url}/api/v1/tasks/{task_id}/").json()
    assert ours["script"]["code"] == "print('hi')\n"
    assert ours["script"]["requirements"] == ["numpy==2.0"]
    theirs = api("tasks.get_by_id", task=task_id)["task"]["script"]
    assert theirs["diff"] == "print('hi')\n" and theirs["requirements"]["pip"] == "numpy == 2.0\n"


def test_events_become_console_scalars_and_upserted_plots(compat_server, api):
    task_id = api.new_task()
    api("tasks.started", task=task_id)
    figure = {"data": [{"type": "sankey"}], "layout": {"title": "Execution Flow"}}
    plot = {
        "task": task_id,
        "type": "plot",
        "metric": "Pipeline",
        "variant": "Execution Flow",
        "iter": 0,
        "plot_str": json.dumps(figure),
    }
    lines = [
        {"task": task_id, "type": "log", "level": "info", "msg": "hello\nworld"},
        {
            "task": task_id,
            "type": "training_stats_scalar",
            "metric": "loss",
            "variant": "train",
            "iter": 3,
            "value": 0.5,
        },
        plot,
        {**plot, "plot_str": json.dumps({**figure, "layout": {"title": "again"}})},
        {"task": task_id, "type": "no_such_event"},
    ]
    response = requests.post(
        f"{api.base}/events.add_batch",
        data="\n".join(json.dumps(line) for line in lines),
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json-lines"},
        timeout=10,
    )
    assert _envelope(response)["result_code"] == 200
    # `added` counts the events sent (the agent compares), however many lines a log holds
    assert response.json()["data"]["added"] == 4
    assert response.json()["data"]["errors"] == 1
    rest = compat_server.api()
    console = rest.get(f"{compat_server.url}/api/v1/tasks/{task_id}/console/").json()
    assert [line["text"] for line in console] == ["hello", "world"]
    scalars = rest.get(f"{compat_server.url}/api/v1/tasks/{task_id}/scalars/").json()
    assert scalars["loss"]["train"] == {"x": [3], "y": [0.5]}
    plots = rest.get(f"{compat_server.url}/api/v1/tasks/{task_id}/plots/").json()
    assert len(plots) == 1 and plots[0]["figure"]["layout"]["title"] == "again"


def test_file_server_round_trip_makes_a_registered_artifact_ready(compat_server, api):
    task_id = api.new_task()
    api("tasks.started", task=task_id)
    files = f"{compat_server.url}/clearml-files"
    path = f"examples/.pipelines/p demo/step.{task_id}/artifacts/data/data.bin"
    uri = f"{files}/{requests.utils.quote(path)}"
    # registered first (the SDK does), uploaded in the background afterwards
    api(
        "tasks.add_or_update_artifacts",
        task=task_id,
        artifacts=[{"key": "data", "type": "custom", "uri": uri, "content_size": 3}],
    )
    rest = compat_server.api()
    listed = rest.get(f"{compat_server.url}/api/v1/tasks/{task_id}/artifacts/").json()
    assert listed[0]["state"] == "pending"
    auth = {"Authorization": f"Bearer {api.token}"}
    assert requests.post(files, files={path: ("x", b"abc")}, timeout=10).status_code == 401
    upload = requests.post(files, files={path: (f"/{path}", b"abc")}, headers=auth, timeout=10)
    assert upload.status_code == 200, upload.text
    assert requests.get(uri, headers=auth, timeout=10).content == b"abc"
    assert requests.get(uri + "x", headers=auth, timeout=10).status_code == 404
    listed = rest.get(f"{compat_server.url}/api/v1/tasks/{task_id}/artifacts/").json()
    assert listed[0]["state"] == "ready" and listed[0]["size"] == 3
    assert rest.get(listed[0]["url"]).content == b"abc"
    document = api("tasks.get_by_id", task=task_id)["task"]
    assert document["execution"]["artifacts"][0]["uri"] == uri


def test_tasks_edit_moves_a_task_under_a_new_parent_but_never_under_itself(api):
    # given two drafts (the SDK's Task.set_parent sends tasks.edit with `parent`)
    first, second = api.new_task("parent to be"), api.new_task("child to be")
    # when the second is moved under the first, the move is kept
    assert api("tasks.edit", task=second, parent=first)["updated"] == 1
    assert api("tasks.get_by_id", task=second)["task"]["parent"] == first
    listed = api("tasks.get_all", parent=[first], only_fields=["id"])["tasks"]
    assert [t["id"] for t in listed] == [second]
    # and a task is never put under itself or one of its descendants, nor under a task
    # the caller does not see
    assert api.error("tasks.edit", task=first, parent=second)[0] == 400
    assert api.error("tasks.edit", task=first, parent=first)[0] == 400
    assert api.error("tasks.edit", task=first, parent=uuid.uuid4().hex)[0] == 400
    assert api("tasks.get_by_id", task=first)["task"].get("parent") in (None, "")
