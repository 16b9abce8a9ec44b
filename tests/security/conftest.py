"""Fixtures for the security suite: two teams with private objects, keys of every kind.

In-process tests (pytest-django + DRF's APIClient) use `world`; tests that need a real
server process use `live` (one server for the module that asks, its own data dir).
"""

import json
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.support import start_server

ARTIFACT_LIMIT = 64 * 1024  # ARTIFACT_MAX_BYTES of the live server: small, so R35 is cheap


@dataclass
class World:
    """alice (team red) and bob (team blue) each own private objects; carol has no team."""

    alice: object
    bob: object
    carol: object
    admin: object
    red: object
    blue: object
    keys: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)

    def client(self, key_name: str | None = None) -> APIClient:
        client = APIClient()
        if key_name:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.keys[key_name]}")
        return client


def build_world(django_user_model) -> World:
    """Users, teams, keys of every kind and one of each object in alice's team project."""
    from webapp.core import keys, services
    from webapp.core.choices import ApiKeyKind, ArtifactState
    from webapp.core.models import Artifact, Team

    alice = django_user_model.objects.create_user("alice", password="pw-alice")
    bob = django_user_model.objects.create_user("bob", password="pw-bob")
    carol = django_user_model.objects.create_user("carol", password="pw-carol")
    admin = django_user_model.objects.create_superuser("root", password="pw-root")
    red, blue = Team.objects.create(name="red"), Team.objects.create(name="blue")
    red.members.add(alice)
    blue.members.add(bob)
    world = World(alice, bob, carol, admin, red, blue)
    for name, user in (("alice", alice), ("bob", bob), ("carol", carol), ("admin", admin)):
        world.keys[name] = keys.create_api_key(user)[1]
    world.keys["worker"] = keys.create_api_key(admin, kind=ApiKeyKind.WORKER)[1]
    revoked, world.keys["revoked"] = keys.create_api_key(alice, name="revoked")
    keys.revoke_api_key(revoked)
    world.keys["expired"] = keys.create_api_key(
        alice, name="expired", expires=timezone.now() - timedelta(seconds=1)
    )[1]

    base = services.create_task(
        user=alice,
        project_name="red/private",
        name="base",
        script={"entry_point": "s.py", "code": "print(1)"},
        hyperparameters={"General": {"lr": 0.1}},
    )
    running = services.create_task(
        user=alice, project_name="red/private", name="running", start_running=True
    )
    artifact = Artifact.objects.create(
        task=running,
        name="data",
        kind="file",
        filename="data.bin",
        url="http://testserver/files/x/data.bin",
        state=ArtifactState.READY,
        sha256="0" * 64,
    )
    controller = services.create_task(
        user=alice,
        project_name="red/private",
        name="controller",
        task_type="controller",
        start_running=True,
    )
    from webapp.core import engine

    run = engine.start_run(
        user=alice,
        controller=controller,
        steps=[{"name": "one", "base_task_id": base.id}],
        driver="client",
    )
    world.objects.update(
        project=base.project, base=base, running=running, artifact=artifact, run=run
    )
    world.keys["task"] = keys.create_api_key(alice, kind=ApiKeyKind.TASK, task=running)[1]
    return world


@pytest.fixture
def world(db, django_user_model) -> World:
    return build_world(django_user_model)


_LIVE_SETUP = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from webapp.core import keys
from webapp.core.models import Team
User = get_user_model()
out = {}
teams = {name: Team.objects.create(name=name) for name in ("red", "blue")}
for name, team in (("alice", "red"), ("bob", "blue")):
    user = User.objects.create_user(name, password="pw-" + name)
    teams[team].members.add(user)
    out[name] = keys.create_api_key(user)[1]
alice = User.objects.get(username="alice")
revoked, out["revoked"] = keys.create_api_key(alice, name="revoked")
keys.revoke_api_key(revoked)
out["expired"] = keys.create_api_key(
    alice, name="expired", expires=timezone.now() - timedelta(seconds=1))[1]
print(json.dumps(out))
"""


def start_live(tmp_path_factory, name: str, **env):
    data_dir = tmp_path_factory.mktemp(name)
    # Upload spill files go here, so a test can see that none is left behind.
    (data_dir / "upload-tmp").mkdir()
    server = start_server(
        data_dir,
        **{
            "ARTIFACT_MAX_BYTES": str(ARTIFACT_LIMIT),
            "TMPDIR": str(data_dir / "upload-tmp"),
            **env,
        },
    )
    try:
        server.extra.update(json.loads(server.manage("shell", "-c", _LIVE_SETUP).splitlines()[-1]))
    except BaseException:
        server.stop()
        server.drop_database()
        raise
    return server


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """A real server process with a small artifact limit, teams red (alice) and blue (bob);
    `live.extra` holds the keys: alice, bob, revoked, expired."""
    server = start_live(tmp_path_factory, "live")
    yield server
    server.stop()
    server.drop_database()


@pytest.fixture(scope="module")
def doors(tmp_path_factory):
    """A live server with teams red (alice) and blue (bob), keys of every kind and team
    red's objects (tests/security/doors.py)."""
    from tests.security.doors import build_doors

    server = start_server(tmp_path_factory.mktemp("doors"), CELERY_BROKER_URL="memory://")
    try:
        yield build_doors(server)
    finally:
        server.stop()
        server.drop_database()
