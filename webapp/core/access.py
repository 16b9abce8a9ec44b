"""Who sees what. One place, so the API, the dashboard, the admin and the ClearML front door
agree.

- A project belongs to a team, or (no team) is personal to the user who created it.
- A user sees, and may change, the projects of their teams and their own personal projects,
  with everything in them. Staff see everything.
- Worker keys see every task (they run them); only staff may create them.
- A task key acts as its task's owner for reading and writes only to its own task (and the
  tasks it created, which are its children).

Anything a caller may not see is reported as not found (404), never as forbidden, so ids
and names of other teams' objects cannot be probed. What each kind of caller may change is
the table in policy.py; `permits` and friends below evaluate its object rules.
"""

from django.db.models import Q, QuerySet

from . import policy
from .choices import ApiKeyKind, TaskStatus
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


# ----------------------------------------------------------------- the table's object rules


def runs(task_id, key) -> bool:
    """Does this worker key run the task: it pulled it from its queue or marked it started
    (the ClearML door records that key, compat.TaskExtra.run_key) and the task is running?"""
    if not task_id or getattr(key, "kind", None) != ApiKeyKind.WORKER:
        return False
    return Task.objects.filter(
        pk=task_id, status=TaskStatus.IN_PROGRESS, clearml__run_key=key.pk
    ).exists()


def ran(task_id, key) -> bool:
    """Is this worker key the one that last pulled or started the task, whatever its status?"""
    if not task_id or getattr(key, "kind", None) != ApiKeyKind.WORKER:
        return False
    return Task.objects.filter(pk=task_id, clearml__run_key=key.pk).exists()


def created(task: Task, key) -> bool:
    """Did this task or worker key create (or clone) the task? The ClearML door records the
    key (compat.TaskExtra.created_key): the SDK moves a step it created under another parent
    (its pipeline's controller) and must still be able to change it."""
    key_id = getattr(key, "pk", None)
    if key_id is None or getattr(key, "kind", None) not in (ApiKeyKind.TASK, ApiKeyKind.WORKER):
        return False
    return Task.objects.filter(pk=task.pk, clearml__created_key=key_id).exists()


def permits(rule: str, user, key, task: Task) -> bool:
    """May this caller, whose object rule for the verb at hand is `rule` (policy.rule_for),
    act on `task`? The caller is assumed to see the task (doors look tasks up through
    visible_tasks, so a hidden one is not found before this is asked)."""
    if rule in (policy.ANY, policy.FENCED):
        return True
    if rule in (policy.VISIBLE, policy.TEAM):
        # A user changes what it sees: its teams' and its own personal projects.
        return visible_tasks(user, key).filter(pk=task.pk).exists()
    if rule == policy.OWN:
        own = getattr(key, "task_id", None)
        return own is not None and (own in (task.pk, task.parent_id) or created(task, key))
    if rule == policy.RUNS:
        if runs(task.pk, key) or runs(task.parent_id, key):
            return True
        # A draft it made for a task it still runs, whatever parent the SDK gave it since
        # (a controller re-parents the steps it creates): the run ends with that task.
        return (
            task.status == TaskStatus.CREATED and created(task, key) and running_tasks(key).exists()
        )
    if rule == policy.RAN:
        # A controller reports on its steps too (ClearML aborts a step with `stopped`).
        return ran(task.pk, key) or runs(task.parent_id, key)
    return False


def permits_project(rule: str, user, key, project: Project) -> bool:
    """The project rules: users (and task keys, as their task's owner) change their teams'
    projects; a worker key those of the owner of a task it runs."""
    if rule == policy.ANY:
        return True
    if rule in (policy.VISIBLE, policy.TEAM):
        return may_use_project(project, user)
    if rule == policy.RUNS:
        return acting_owner(key, project) is not None
    return False


def running_tasks(key) -> QuerySet:
    """The tasks this worker key runs, the most recently started first."""
    if getattr(key, "kind", None) != ApiKeyKind.WORKER:
        return Task.objects.none()
    return (
        Task.objects.filter(status=TaskStatus.IN_PROGRESS, clearml__run_key=key.pk)
        .exclude(created_by=None)
        .select_related("created_by", "project")
        .order_by("-started", "-created")
    )


def acting_owner(key, project: Project | None = None, *, task: Task | None = None):
    """The user a worker key acts as when it creates something: the owner of a task it runs
    (of `task` itself when given), one who may use `project` when there is one. None when
    the key runs no such task."""
    candidates = [task] if task is not None else list(running_tasks(key)[:50])
    if project is not None:
        # A task of the same project first: a pipeline's steps go to its controller's.
        candidates.sort(key=lambda t: t.project_id != project.pk)
    for candidate in candidates:
        owner = candidate.created_by
        if owner is not None and (project is None or may_use_project(project, owner)):
            return owner, candidate
    return None


def new_task_for(
    rule: str,
    user,
    key,
    *,
    parent: Task | None,
    project: Project | None,
    source: Task | None = None,
):
    """(the user a new task is created as, its parent) for a caller whose task.create rule
    is `rule`. A task key's new tasks are children of its task; a worker key creates only
    for a task it runs, as that task's owner, copying (`source`, a clone's) only what that
    owner sees. Raises policy.Forbidden otherwise."""
    if rule in (policy.ANY, policy.TEAM):
        return user, parent
    if rule == policy.OWN:
        if parent is None:
            parent = Task.objects.filter(pk=key.task_id).first()
        if parent is None or not permits(rule, user, key, parent):
            raise policy.Forbidden("a task key creates tasks only as children of its own task")
        return user, parent
    if rule == policy.RUNS:
        if parent is not None:
            runner = parent if runs(parent.pk, key) else None
            if runner is None and runs(parent.parent_id, key):
                runner = parent.parent
            found = acting_owner(key, project, task=runner) if runner is not None else None
        else:
            found = acting_owner(key, project)
            parent = found[1] if found else None
        if found is None or (
            source is not None and not visible_tasks(found[0]).filter(pk=source.pk).exists()
        ):
            raise policy.Forbidden(
                "a worker key creates tasks only for a task it runs, in that task's team"
            )
        return found[0], parent
    raise policy.Forbidden("this key may not create tasks")


def project_owner(rule: str, user, key, name: str):
    """The user a project named `name` is created (or found) as: the caller, or for a worker
    key the owner of a task it runs. Raises policy.Forbidden if a worker key runs none."""
    if rule != policy.RUNS:
        return user
    existing = Project.objects.filter(name=(name or "").strip().strip("/")).first()
    found = acting_owner(key, existing)
    if found is None:
        raise policy.Forbidden("a worker key creates projects only for a task it runs")
    return found[0]
