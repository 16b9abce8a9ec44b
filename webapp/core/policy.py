"""Who may do what, through every door: one table of verbs.

Both doors onto the same verbs, the REST API (webapp/api) and the ClearML wire protocol and
file server (webapp/compat), name one verb of this table for each of their endpoints: a
compat endpoint cannot be registered without one (`registry.endpoint(verb=...)`), a REST
action without one is refused and fails the `api.E001` system check. Each verb says, for
each kind of caller, which object rule applies, or that the kind may not do it at all:

- `user`: a person's own credentials (a user key or the logged-in session);
- `staff`: the same, of a staff user;
- `worker`: a worker key (our step workers, ClearML agents and runners);
- `task`: the key a step gets for its one task (it acts as that task's owner).

The object rules (evaluated in access.py, `permits`):

- `any`: no object-level limit.
- `visible`: the object is one the caller sees (its teams' and its own personal projects,
  with everything in them). Anything else answers as not found, never as forbidden.
- `team`: the caller may change it: its teams' and its own personal objects. A task key
  acts as its task's owner here (creating projects).
- `own`: a task key changes its own task, that task's children, and the tasks it created
  wherever they were moved since; whatever it creates becomes a child of its task (the
  ClearML SDK creates a pipeline's steps that way, then re-parents them to the controller).
- `runs`: a worker key changes the tasks it runs (it pulled them from their queue or marked
  them started, and they are in progress) and their children, and the drafts it created
  while it still runs a task; it creates only for them, as their owner
  (ClearML agents hand their own key to the task they run).
- `ran`: a worker key reports on a task it pulled or started, whatever its status since
  (a run's last console lines and its final status arrive after an abort or after the
  task marked itself failed; then the state machine answers), and on the children of a
  task it runs.
- `fenced`: any task; the verb itself checks the attempt the worker claimed.

docs/architecture.md ("Who may do what") shows this table with the endpoints of each verb.
"""

from dataclasses import dataclass

from .choices import ApiKeyKind
from .errors import DomainError

USER, STAFF, WORKER, TASK = "user", "staff", "worker", "task"
KINDS = (USER, STAFF, WORKER, TASK)

ANY, VISIBLE, TEAM, OWN, RUNS, RAN, FENCED = (
    "any",
    "visible",
    "team",
    "own",
    "runs",
    "ran",
    "fenced",
)
RULES = (ANY, VISIBLE, TEAM, OWN, RUNS, RAN, FENCED)


class Forbidden(DomainError):
    """The caller's kind may not do this, or not to this object (403)."""

    status_code = 403
    code = "forbidden"


@dataclass(frozen=True)
class Verb:
    """One thing callers do, and the object rule for each kind of caller (None: refused)."""

    name: str
    summary: str
    user: str | None = None
    staff: str | None = None
    worker: str | None = None
    task: str | None = None

    def __post_init__(self):
        for kind in KINDS:
            if getattr(self, kind) not in (*RULES, None):
                raise ValueError(f"verb {self.name}: unknown rule {getattr(self, kind)!r}")

    def rule(self, kind: str) -> str | None:
        return getattr(self, kind)


# The write rules every verb changing a task shares.
_TASK_WRITE = {"user": TEAM, "staff": ANY, "worker": RUNS, "task": OWN}
_EVERYONE = {"user": ANY, "staff": ANY, "worker": ANY, "task": ANY}

VERBS: dict[str, Verb] = {
    verb.name: verb
    for verb in (
        Verb("identity.read", "who the caller is; the server's version", **_EVERYONE),
        Verb(
            "task.read",
            "read tasks and everything in them (parameters, console, results, artifacts, files)",
            user=VISIBLE,
            staff=ANY,
            worker=ANY,
            task=VISIBLE,
        ),
        Verb("task.create", "create or clone a task", **_TASK_WRITE),
        Verb(
            "task.edit",
            "change a task's definition, parameters, tags or archive flag",
            **_TASK_WRITE,
        ),
        Verb("task.queue", "enqueue, dequeue or reorder a task", **_TASK_WRITE),
        Verb("task.abort", "abort or stop a task", **_TASK_WRITE),
        Verb("task.reset", "reset a task to a draft", **_TASK_WRITE),
        Verb("task.publish", "publish a task", **_TASK_WRITE),
        Verb("task.delete", "delete a task", **_TASK_WRITE),
        Verb(
            "task.outputs",
            "add, upload or delete a task's artifacts, models, debug samples and stored files",
            **_TASK_WRITE,
        ),
        Verb(
            "task.report",
            "report a run: started, completed, failed, stopped, pings, events",
            user=TEAM,
            staff=ANY,
            worker=RAN,
            task=OWN,
        ),
        Verb(
            "task.console",
            "append console lines (a step's worker streams them; its key is not tied to a task)",
            user=TEAM,
            staff=ANY,
            worker=ANY,
            task=OWN,
        ),
        Verb(
            "task.claim",
            "take a queued task to run it: claim, heartbeat and finish an attempt, pull a queue",
            staff=FENCED,
            worker=FENCED,
        ),
        Verb(
            "pipeline.drive",
            "start, stop, rerun or advance a pipeline run, launch or skip its steps "
            "(judged on its controller task)",
            **_TASK_WRITE,
        ),
        Verb(
            "pipeline.plan",
            "plan a pipeline run: which steps would run and which be reused (it reads only "
            "what the caller sees and creates nothing)",
            **_EVERYONE,
        ),
        Verb(
            "project.read",
            "list and read projects",
            user=VISIBLE,
            staff=ANY,
            worker=ANY,
            task=VISIBLE,
        ),
        Verb(
            "project.create",
            "create a project (in the caller's team)",
            user=TEAM,
            staff=ANY,
            worker=RUNS,
            task=TEAM,
        ),
        Verb(
            "project.edit",
            "change a project's description, tags or output destination",
            user=TEAM,
            staff=ANY,
            worker=RUNS,
            task=TEAM,
        ),
        Verb(
            "project.delete",
            "delete a project that holds nothing (no task, model, schedule or trigger)",
            user=TEAM,
            staff=ANY,
        ),
        Verb(
            "model.read",
            "list and read registered models",
            user=VISIBLE,
            staff=ANY,
            worker=ANY,
            task=VISIBLE,
        ),
        Verb(
            "model.write",
            "register, change or delete a model (judged on its task; without one, its creator)",
            **_TASK_WRITE,
        ),
        Verb(
            "queue.read", "list and read queues (entries: only tasks the caller sees)", **_EVERYONE
        ),
        Verb("queue.create", "create a queue", **_EVERYONE),
        Verb(
            "queue.manage",
            "rename, tag or delete a queue, or clear it (its tasks go back to drafts)",
            staff=ANY,
        ),
        Verb(
            "worker.read",
            "list workers (their current task only when the caller sees it)",
            **_EVERYONE,
        ),
        Verb(
            "worker.report",
            "register, heartbeat and unregister a worker",
            staff=ANY,
            worker=ANY,
        ),
        Verb("team.read", "list and read teams", user=VISIBLE, staff=ANY, task=VISIBLE),
        Verb("team.manage", "create teams and change their members", staff=ANY),
        Verb("key.manage", "list, create and revoke one's own user keys", user=ANY, staff=ANY),
        # What a schedule or trigger starts runs as its owner: a person's credentials only.
        Verb(
            "automation.read",
            "list and read schedules, triggers and their firings",
            user=VISIBLE,
            staff=ANY,
        ),
        Verb(
            "automation.manage",
            "create, edit, pause, resume and delete schedules and triggers",
            user=TEAM,
            staff=ANY,
        ),
        Verb("key.create_worker", "create a worker key", staff=ANY),
        Verb("user.preferences", "read and set one's own web preferences", user=ANY, staff=ANY),
        Verb("user.create", "create a user (with no password and in no team)", staff=ANY),
        Verb(
            "user.impersonate",
            "act as another user, with that user's rights (ClearML's impersonation header)",
            staff=ANY,
        ),
    )
}


def kind_of(user, key=None) -> str:
    """The caller's kind (see above) from its user and the API key it used, if any."""
    key_kind = getattr(key, "kind", None)
    if key_kind == ApiKeyKind.TASK:
        return TASK
    if key_kind == ApiKeyKind.WORKER:
        return WORKER
    if user is not None and (user.is_staff or user.is_superuser):
        return STAFF
    return USER


def verb(name: str) -> Verb:
    """The table's entry for `name`; a door naming a verb the table lacks fails loudly."""
    try:
        return VERBS[name]
    except KeyError:
        raise LookupError(f"{name!r} is not a verb of webapp.core.policy.VERBS") from None


CALLERS = {USER: "a user", STAFF: "a staff user", WORKER: "a worker key", TASK: "a task key"}


def rule_for(name: str, user, key=None) -> str:
    """The object rule that applies to this caller for verb `name`; Forbidden if its kind
    may not do it at all."""
    entry = verb(name)
    kind = kind_of(user, key)
    rule = entry.rule(kind)
    if rule is None:
        raise Forbidden(f"{CALLERS[kind]} may not {entry.summary}")
    return rule
