"""Who sees what. One place, so the API, the dashboard, the admin and the ClearML front door
agree.

- A project belongs to a team, or (no team) is personal to the user who created it.
- A user sees, and may change, the projects of their teams and their own personal projects,
  with everything in them. Staff see everything.
- Worker keys see every task (they run them); only staff may create them.
- A task key acts as its task's owner for reading and writes only to its own task (and the
  tasks it created).

Anything a caller may not see is reported as not found (404), never as forbidden, so ids
and names of other teams' objects cannot be probed.
"""

from django.db.models import Q, QuerySet

from .choices import ApiKeyKind
from .errors import Conflict, InvalidInput
from .models import Artifact, Project, Task, Team, TrainedModel


def is_worker_key(key) -> bool:
    return getattr(key, "kind", None) == ApiKeyKind.WORKER


def sees_everything(user, key=None) -> bool:
    return bool(user and (user.is_staff or user.is_superuser)) or is_worker_key(key)


def _project_rule(user, prefix: str = "") -> Q:
    """Q over Project (or over a relation to it, via `prefix`) for what `user` may see."""
    if user is None or not getattr(user, "is_authenticated", False):
        return Q(pk__in=[])
    teams = Team.objects.filter(members=user).values("pk")
    return Q(**{f"{prefix}team__in": teams}) | Q(
        **{f"{prefix}team__isnull": True, f"{prefix}created_by": user}
    )


def visible_projects(user, key=None) -> QuerySet:
    if sees_everything(user, key):
        return Project.objects.all()
    return Project.objects.filter(_project_rule(user))


def visible_tasks(user, key=None) -> QuerySet:
    if sees_everything(user, key):
        return Task.objects.all()
    return Task.objects.filter(_project_rule(user, "project__"))


def visible_artifacts(user, key=None) -> QuerySet:
    if sees_everything(user, key):
        return Artifact.objects.all()
    return Artifact.objects.filter(_project_rule(user, "task__project__"))


def visible_models(user, key=None) -> QuerySet:
    if sees_everything(user, key):
        return TrainedModel.objects.all()
    return TrainedModel.objects.filter(_project_rule(user, "project__"))


def visible_teams(user, key=None) -> QuerySet:
    """Teams listed to a caller: staff see all, others the teams they belong to."""
    if sees_everything(user, key):
        return Team.objects.all()
    if user is None or not getattr(user, "is_authenticated", False):
        return Team.objects.none()
    return Team.objects.filter(members=user)


def may_write_task(task: Task, key=None) -> bool:
    """A task-scoped key writes only to its own task (and the tasks it created)."""
    if getattr(key, "kind", None) != ApiKeyKind.TASK:
        return True
    return task.pk == key.task_id or task.parent_id == key.task_id


def may_use_project(project: Project, user) -> bool:
    """May `user` add tasks to (or otherwise change) this existing project?"""
    if sees_everything(user):
        return True
    return visible_projects(user).filter(pk=project.pk).exists()


def team_for_new_project(user, team=None) -> Team | None:
    """The team a project created by `user` goes to.

    An explicit `team` must be one of the user's teams (staff may pick any). Without one, a
    user in exactly one team creates team projects; anyone else creates personal ones.
    """
    if team is not None:
        if not isinstance(team, Team):
            team = Team.objects.filter(pk=str(team)).first()
        if team is None or not visible_teams(user).filter(pk=team.pk).exists():
            raise InvalidInput("team: not one of your teams", field="team")
        return team
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    teams = list(Team.objects.filter(members=user)[:2])
    return teams[0] if len(teams) == 1 else None


def check_project_access(project: Project, user) -> Project:
    """Refuse to use a project found by name that the user may not see.

    Project names are unique across the server, so the honest answer is that the name is
    taken; nothing else about the project is revealed.
    """
    if user is not None and not may_use_project(project, user):
        raise Conflict(
            f"project name {project.name!r} is taken by a project you have no access to; "
            "choose another name"
        )
    return project
