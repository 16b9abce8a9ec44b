"""Teams: who sees and changes which projects (one rule, webapp/core/access.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from webapp.core import access, services
from webapp.core.errors import Conflict
from webapp.core.keys import authenticate_api_key
from webapp.core.models import Project, Team


def _ids(response) -> set[str]:
    data = response.json()
    rows = data["results"] if isinstance(data, dict) else data
    return {row["id"] for row in rows}


def test_team_members_share_projects_and_others_see_none_of_them(world, django_user_model):
    # given dave joins alice's team
    dave = django_user_model.objects.create_user("dave")
    world.red.members.add(dave)
    project = world.objects["project"]
    # then the project (created by alice, in red) is dave's too, and not bob's or carol's
    assert project.team == world.red
    assert access.visible_projects(dave).filter(pk=project.pk).exists()
    assert access.visible_tasks(dave).filter(pk=world.objects["base"].pk).exists()
    for outsider in (world.bob, world.carol):
        assert not access.visible_projects(outsider).filter(pk=project.pk).exists()
        assert not access.visible_tasks(outsider).filter(project=project).exists()
        assert not access.visible_artifacts(outsider).exists()
    # staff and worker keys see everything
    assert access.visible_projects(world.admin).filter(pk=project.pk).exists()
    worker_key = authenticate_api_key(world.keys["worker"])
    assert access.visible_tasks(worker_key.user, worker_key).filter(project=project).exists()


def test_leaving_the_team_ends_access_even_for_the_creator(world):
    world.red.members.remove(world.alice)
    assert not access.visible_projects(world.alice).filter(pk=world.objects["project"].pk)


def test_a_user_in_no_team_or_several_teams_creates_personal_projects(world):
    mine = services.get_or_create_project("carol/own", world.carol)
    assert mine.team is None
    assert list(access.visible_projects(world.carol)) == [mine]
    assert not access.visible_projects(world.alice).filter(pk=mine.pk).exists()
    world.blue.members.add(world.alice)  # alice is now in red and blue
    assert services.get_or_create_project("alice/personal", world.alice).team is None


def test_nobody_adds_tasks_to_another_teams_project_by_naming_it(world):
    with pytest.raises(Conflict, match="taken by a project you have no access to"):
        services.create_task(user=world.bob, project_name="red/private", name="intruder")
    response = world.client("bob").post(
        "/api/v1/tasks/", {"project_name": "red/private", "name": "x"}, format="json"
    )
    assert response.status_code == 409
    assert world.objects["project"].tasks.filter(name__in=["intruder", "x"]).count() == 0
    # cloning one's own task into that project is refused the same way
    own = services.create_task(user=world.bob, project_name="blue/p", name="own")
    response = world.client("bob").post(
        f"/api/v1/tasks/{own.id}/clone/", {"project_name": "red/private"}, format="json"
    )
    assert response.status_code == 409


def test_project_create_accepts_only_one_of_the_callers_teams(world):
    alice = world.client("alice")
    created = alice.post("/api/v1/projects/", {"name": "red/two", "team": world.red.id})
    assert created.status_code == 201, created.content
    assert created.json()["team"] == world.red.id
    assert created.json()["team_name"] == "red"
    for team in (world.blue.id, "0" * 32):
        refused = alice.post("/api/v1/projects/", {"name": f"p-{team}", "team": team})
        assert refused.status_code == 400
        assert refused.json()["detail"] == "team: not one of your teams"
    assert not Project.objects.filter(name__startswith="p-").exists()


def test_teams_api_lists_own_teams_and_only_staff_create_them(world):
    listed = world.client("alice").get("/api/v1/teams/")
    assert [row["name"] for row in listed.json()["results"]] == ["red"]
    assert listed.json()["results"][0]["members"] == ["alice"]
    assert world.client("alice").get(f"/api/v1/teams/{world.blue.id}/").status_code == 404
    body = {"name": "green", "members": ["alice", "bob"]}
    assert world.client("alice").post("/api/v1/teams/", body, format="json").status_code == 403
    assert world.client("worker").post("/api/v1/teams/", body, format="json").status_code == 403
    created = world.client("admin").post("/api/v1/teams/", body, format="json")
    assert created.status_code == 201
    assert sorted(created.json()["members"]) == ["alice", "bob"]
    unknown = world.client("admin").post(
        "/api/v1/teams/", {"name": "x", "members": ["ghost"]}, format="json"
    )
    assert unknown.status_code == 400 and "ghost" in unknown.json()["detail"]
    green = Team.objects.get(name="green")
    moved = world.client("admin").post(
        f"/api/v1/teams/{green.id}/members/", {"remove": ["bob"]}, format="json"
    )
    assert moved.json()["members"] == ["alice"]
    assert world.client("admin").get("/api/v1/teams/").json()["count"] == 3


def test_keys_can_expire_and_an_expired_or_revoked_key_is_refused(world):
    alice = world.client("alice")
    made = alice.post("/api/v1/keys/", {"name": "short", "expires_in": 3600}, format="json")
    assert made.status_code == 201
    expires = made.json()["expires"]
    assert expires is not None
    key = authenticate_api_key(made.json()["key"])
    assert timedelta(minutes=59) < key.expires - timezone.now() <= timedelta(hours=1)
    listed = {row["prefix"]: row for row in alice.get("/api/v1/keys/").json()}
    assert listed[key.prefix]["expires"] is not None
    assert alice.post("/api/v1/keys/", {"expires_in": 0}, format="json").status_code == 400
    assert alice.post("/api/v1/keys/", {"expires_in": "x"}, format="json").status_code == 400
    # the moment it passes, the key is refused like a revoked one
    key.expires = timezone.now() - timedelta(seconds=1)
    key.save(update_fields=["expires"])
    for secret in (made.json()["key"], world.keys["expired"], world.keys["revoked"]):
        response = world.client().get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {secret}")
        assert response.status_code == 401
        assert response.json()["detail"] == "invalid, expired or revoked API key"


def test_only_staff_create_worker_keys_and_scoped_keys_cannot_mint_keys(world):
    assert (
        world.client("alice").post("/api/v1/keys/", {"kind": "worker"}, format="json").status_code
        == 403
    )
    assert (
        world.client("admin").post("/api/v1/keys/", {"kind": "worker"}, format="json").status_code
        == 201
    )
    # a task key or a worker key turned into a full user key would escape its scope
    for scoped in ("task", "worker"):
        client = world.client(scoped)
        assert client.post("/api/v1/keys/", {}, format="json").status_code == 403
        assert client.get("/api/v1/keys/").status_code == 403
        assert client.delete("/api/v1/keys/?prefix=x").status_code == 403
