"""The tasks a run launches: clones of base tasks, made and enqueued together, any number in
a few statements (or, for a step its controller runs itself, inserted as drafts)."""

from dataclasses import dataclass

from django.utils import timezone

from .. import services
from ..choices import NodeStatus
from ..models import Task
from ._pass import Pass, note

# What a node shows while its task waits for the controller's process to start it.
LOCAL_MESSAGE = "runs in the controller's process"


@dataclass
class Launch:
    """One node to give a new task: the clone of `base` named `name`, with these overrides
    (sections as build_clone takes them) on `queue`."""

    node: object
    name: str
    base: Task
    hyperparameters: dict
    configuration: dict
    time_limit: float | None
    queue: str


def clone_all(work: Pass, launches: list, local: bool = False) -> None:
    """Clone and enqueue (or, with `local`, insert as drafts) the tasks of `launches`, and
    show each node queued with its task. The clones, their queue entries and the nodes are
    written in one statement each; the nodes at the end of the pass."""
    if not launches:
        return
    controller = controller_of(work)
    clones = [
        services.build_clone(
            launch.base,
            user=controller.created_by,
            project=controller.project,
            name=launch.name,
            parent=controller,
            hyperparameters=launch.hyperparameters,
            configuration=launch.configuration,
            time_limit=launch.time_limit,
        )
        for launch in launches
    ]
    queues = [launch.queue for launch in launches]
    if local:
        services.insert_clones(clones)
    else:
        services.enqueue_clones(clones, queues, queues_of(work, queues))
    now = timezone.now()
    for launch, task in zip(launches, clones, strict=True):
        node, was = launch.node, launch.node.status
        node.task, node.status, node.updated = task, NodeStatus.QUEUED, now
        node.message = LOCAL_MESSAGE if local else f"enqueued on {launch.queue}"
        if not node.map_step:
            note(work, node, was)  # a fan-out's batches are not steps of the run
        else:
            work.changed = True
        work.unwritten[node.pk] = node


def controller_of(work: Pass) -> Task:
    """The clones' parent, project and owner, which never change during a run."""
    shape = work.shape
    if shape.controller is None:
        shape.controller = Task.objects.select_related("project", "created_by").get(
            pk=work.run.controller_id
        )
    return shape.controller


def queues_of(work: Pass, names: list) -> dict:
    known = work.shape.queues
    missing = set(names) - set(known)
    if missing:
        known.update(services.queues_named(missing))
    return known
