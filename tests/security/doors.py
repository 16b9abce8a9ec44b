"""The world the door tests walk: a live server, team red (alice) and team blue (bob), and
a key of every kind, with team red's objects made through the doors themselves.

Kinds of caller, each named after its relation to the team-red object a case acts on:
- user_a: alice (team red); user_b: bob (team blue); staff: the admin's user key;
- worker: a worker key that runs nothing; runner: a worker key that pulled the target
  from its queue (as clearml-agent and our ClearML runner do);
- task_own: the target's own task key (a step's); task_a: the key of another team-red
  task; task_b: the key of a team-blue task.

`expected()` reads the answer each kind must get from the policy table itself, so a verb's
rules and the tests cannot drift apart.
"""

import json
import sqlite3
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

import requests

KINDS = ("user_a", "user_b", "staff", "worker", "runner", "task_own", "task_a", "task_b")
# The policy's kind (webapp/core/policy.py) of each.
POLICY_KIND = {
    "user_a": "user",
    "user_b": "user",
    "staff": "staff",
    "worker": "worker",
    "runner": "worker",
    "task_own": "task",
    "task_a": "task",
    "task_b": "task",
}
# The kinds that see team red's objects (a task key sees what its task's owner sees).
SEES_TEAM_RED = {"user_a", "staff", "worker", "runner", "task_own", "task_a"}

_SETUP = """
import json
from django.contrib.auth import get_user_model
from webapp.core import keys
from webapp.core.models import Team
User = get_user_model()
out = {}
for name, team in (("alice", "red"), ("bob", "blue")):
    user = User.objects.create_user(name, password="pw-" + name)
    Team.objects.get_or_create(name=team)[0].members.add(user)
    out[name] = keys.create_api_key(user)[1]
admin = User.objects.get(username="admin")
out["runner"] = keys.create_api_key(admin, kind="worker", name="runner")[1]
print(json.dumps(out))
"""


def expected(verb_name: str, kind: str, on: str | None) -> str:
    """'ok', 'forbidden' or 'hidden': the answer the table gives `kind` for `verb_name` on a
    team-red object of type `on` ("task", "project", "model"; None: the verb has none)."""
    from webapp.core import policy

    rule = policy.VERBS[verb_name].rule(POLICY_KIND[kind])
    if rule is None:
        return "forbidden"
    if rule in (policy.RUNS, policy.RAN):
        # Whatever the object (or none): a worker key acts only for the tasks it runs.
        return "ok" if kind == "runner" else "forbidden"
    if on is None or rule in (policy.ANY, policy.FENCED):
        return "ok"
    if kind not in SEES_TEAM_RED:
        return "hidden"
    if rule in (policy.VISIBLE, policy.TEAM):
        return "ok"
    if rule == policy.OWN:
        return "ok" if kind == "task_own" else "forbidden"
    raise AssertionError(f"no expectation for rule {rule}")


def db_state(server) -> dict:
    """Every row of every table of the server's database (ApiKey.last_used aside: reading
    with a key may stamp it), to prove a refused call changed nothing."""
    url = server.env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        connection = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
        names = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        import psycopg

        connection = psycopg.connect(url)
        names = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    try:
        tables = [row[0] for row in connection.execute(names).fetchall()]
        state = {}
        for table in tables:
            if table == "django_migrations":
                continue
            # The names come from the database's own catalogue.
            cursor = connection.execute(f'SELECT * FROM "{table}"')  # noqa: S608
            columns = [d[0] for d in cursor.description]
            keep = [i for i, name in enumerate(columns) if name != "last_used"]
            state[table] = sorted(repr([row[i] for i in keep]) for row in cursor.fetchall())
        return state
    finally:
        connection.close()


def sdk_path(project: str, task_name: str, task_id: str, rest: str) -> str:
    """An object path as the ClearML SDK builds it (Task._get_output_destination_suffix):
    `<project>/<task name>.<task id>/<rest>`, each part quoted with the SDK's safe set."""
    safe = "'[]{}()$^,.; -_+-=/"
    return "/".join(quote(part, safe=safe) for part in (project, f"{task_name}.{task_id}", rest))


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))


@dataclass
class Doors:
    server: object
    keys: dict = field(default_factory=dict)
    red_project: str = ""
    red_project_name: str = ""
    # Objects of team red the refused calls aim at (they must stay as they are).
    shared: dict = field(default_factory=dict)

    # ------------------------------------------------------------- the two doors

    def key(self, kind: str, target: dict | None = None) -> str:
        """The kind's key; a task_own caller uses the key of the target it owns."""
        if kind == "task_own" and target and target.get("key"):
            return target["key"]
        return self.keys[kind]

    def compat(self, kind: str, endpoint: str, body=None, key=None) -> requests.Response:
        """One ClearML call with this kind's key as the bearer (the server takes raw keys)."""
        return requests.post(
            f"{self.server.url}/clearml-api/v2.23/{endpoint}",
            data=json.dumps(body if body is not None else {}),
            headers={
                "Authorization": f"Bearer {key or self.keys[kind]}",
                "Content-Type": "application/json",
            },
            timeout=30,
        )

    def ok(self, kind: str, endpoint: str, as_key: str | None = None, **body) -> dict:
        """The data of a ClearML call that must succeed (`as_key`: a key other than the
        kind's own, e.g. a fresh target's task key)."""
        response = self.compat(kind, endpoint, body, key=as_key)
        assert response.status_code == 200, (endpoint, response.text)
        return response.json()["data"]

    def rest(
        self, kind: str, method: str, path: str, body=None, key=None, **kw
    ) -> requests.Response:
        return requests.request(
            method,
            f"{self.server.url}/api/v1/{path}",
            json=body,
            headers={"Authorization": f"Bearer {key or self.keys[kind]}"},
            timeout=30,
            **kw,
        )

    def rest_ok(self, kind: str, method: str, path: str, body=None) -> dict:
        response = self.rest(kind, method, path, body)
        assert response.status_code < 300, (method, path, response.text)
        return response.json() if response.content else {}

    # ------------------------------------------------------------- objects

    def unique(self, prefix: str = "doors") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def new_task(self, kind: str = "user_a", project: str | None = None, **fields) -> str:
        return self.ok(
            kind,
            "tasks.create",
            name=fields.pop("name", "doors target"),
            project=project or self.red_project,
            type=fields.pop("type", "training"),
            hyperparams={
                "General": {
                    "lr": {"section": "General", "name": "lr", "value": "0.1", "type": "float"}
                }
            },
            configuration={"config": {"name": "config", "value": "a: 1", "type": "yaml"}},
            **fields,
        )["id"]

    def pulled_by_runner(self, task_id: str) -> None:
        """The runner takes the task from a queue of its own, as an agent does."""
        queue = self.ok("staff", "queues.create", name=self.unique("pull"))["id"]
        self.ok("user_a", "tasks.enqueue", task=task_id, queue=queue)
        entry = self.ok("runner", "queues.get_next_task", queue=queue)
        assert entry["entry"]["task"] == task_id
        self.ok("runner", "tasks.started", task=task_id, force=True)

    def claimed_key(self, task_id: str, owner: str = "user_a") -> str:
        """A step's own key for the task: our worker claims it through the REST API."""
        self.rest_ok(owner, "post", f"tasks/{task_id}/enqueue/", {"queue": self.unique("claim")})
        attempt = self.rest_ok(owner, "get", f"tasks/{task_id}/")["attempt"]
        claimed = self.rest_ok(
            "worker",
            "post",
            f"tasks/{task_id}/claim/",
            {"attempt": attempt, "worker": "doors-claimer", "claim_id": uuid.uuid4().hex},
        )
        return claimed["task_key"]

    @property
    def files(self) -> str:
        return f"{self.server.url}/clearml-files"

    def upload(self, kind: str, path: str, data: bytes, key: str | None = None):
        return requests.post(
            f"{self.files}/",
            files={path: (path.rsplit("/", 1)[-1], data)},
            headers={"Authorization": f"Bearer {key or self.keys[kind]}"},
            timeout=30,
        )

    def file(self, kind: str, method: str, path: str, key: str | None = None, **kw):
        return requests.request(
            method,
            f"{self.files}/{path}",
            headers={"Authorization": f"Bearer {key or self.keys[kind]}"},
            timeout=30,
            **kw,
        )

    def model_of(self, task_id: str) -> str:
        return self.ok(
            "user_a",
            "models.create",
            name="doors model",
            uri="s3://b/m.pkl",
            task=task_id,
            ready=False,
        )["id"]

    def target_for(self, kind: str, **fields) -> dict:
        """A fresh team-red task in the relation to `kind` that the kind's name says."""
        task_id = self.new_task(**fields)
        if kind == "runner":
            self.pulled_by_runner(task_id)
        elif kind == "task_own":
            return {"task": task_id, "key": self.claimed_key(task_id)}
        return {"task": task_id}


def build_doors(server) -> Doors:
    keys = json.loads(server.manage("shell", "-c", _SETUP).splitlines()[-1])
    doors = Doors(
        server,
        keys={
            "user_a": keys["alice"],
            "user_b": keys["bob"],
            "staff": server.api_key,
            "worker": server.worker_key,
            "runner": keys["runner"],
        },
    )
    doors.red_project_name = f"red/{doors.unique('project')}"
    doors.red_project = doors.ok("user_a", "projects.create", name=doors.red_project_name)["id"]
    other = doors.ok("user_a", "projects.create", name=f"red/{doors.unique('other')}")["id"]
    doors.keys["task_a"] = doors.claimed_key(doors.new_task(project=other, name="other task"))
    blue = doors.ok("user_b", "projects.create", name=f"blue/{doors.unique('project')}")["id"]
    doors.keys["task_b"] = doors.claimed_key(
        doors.new_task("user_b", project=blue, name="blue task"), owner="user_b"
    )
    shared = doors.new_task(name="shared target")
    doors.keys["task_own"] = doors.claimed_key(shared)
    doors.shared = {
        "task": shared,
        "model": doors.model_of(shared),
        "queue": doors.ok("staff", "queues.create", name=doors.unique("empty"))["id"],
    }
    doors.shared["artifact"] = doors.rest_ok(
        "user_a",
        "post",
        f"tasks/{shared}/artifacts/",
        {"name": "shared", "kind": "file", "filename": "s.bin", "size": 1},
    )["id"]
    # A model of our own REST API (the ClearML door's models are doors.shared["model"]).
    doors.shared["rest_model"] = doors.rest_ok(
        "user_a",
        "post",
        f"tasks/{shared}/models/",
        {"name": "shared weights", "filename": "w.bin", "size": 1},
    )["id"]
    controller = doors.new_task(name="shared controller", type="controller")
    doors.shared["run"] = doors.rest_ok(
        "user_a",
        "post",
        "pipelines/",
        {"controller": controller, "steps": [{"name": "one", "base_task_id": shared}]},
    )["id"]
    teams = doors.rest_ok("user_a", "get", "teams/")
    doors.shared["red_team"] = next(t["id"] for t in teams["results"] if t["name"] == "red")
    doors.ok(
        "task_own",
        "events.add_batch",
        **{"type": "plot", "task": shared, "metric": "m", "variant": "v", "plot_str": "{}"},
    )
    # What the reads across many rows (tags in use, parents, frameworks, metadata keys and
    # values, a parameter's values) would show of team red: MARKERS says which is which.
    doors.ok("user_a", "tasks.update_tags", ids=[shared], add_tags=[MARKERS["tag"]])
    doors.ok("user_a", "models.update_tags", ids=[doors.shared["model"]], add_tags=[MARKERS["tag"]])
    doors.ok(
        "user_a",
        "models.edit",
        model=doors.shared["model"],
        framework=MARKERS["framework"],
        metadata=[{"key": MARKERS["metadata_key"], "value": MARKERS["metadata_value"]}],
    )
    doors.ok("user_a", "projects.update", project=doors.red_project, tags=[MARKERS["tag"]])
    doors.ok(
        "user_a",
        "tasks.edit_hyper_params",
        task=shared,
        force=True,
        hyperparams=[{"section": "General", "name": "doors", "value": MARKERS["parameter"]}],
    )
    # Machine statistics for the workers' charts to read (workers.get_metric_keys).
    doors.ok(
        "staff", "workers.status_report", worker="doors-stats", machine_stats={"cpu_usage": [1]}
    )
    doors.ok(
        "task_own",
        "events.add_batch",
        **{
            "type": "training_stats_scalar",
            "task": shared,
            "metric": MARKERS["metric"],
            "variant": "v",
            "iter": 1,
            "value": 1.0,
        },
    )
    doors.new_task(name="shared child", parent=shared)
    return doors


MARKERS = {
    "tag": "doors-red-tag",
    "framework": "DoorsFramework",
    "metadata_key": "doors_key",
    "metadata_value": "doors-value",
    "parameter": "doors-parameter-value",
    "metric": "doors-metric",
}
