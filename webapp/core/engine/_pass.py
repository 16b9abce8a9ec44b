"""One locked visit of a run (`Pass`), and the queries of its nodes."""

from django.db import connection
from django.utils import timezone

from pipelines import dag

from .. import sql
from ..choices import NODE_TERMINAL, NodeStatus, PipelineStatus
from ..models import PipelineNode, PipelineRun
from . import _plot
from ._shape import shape_of


def locked(run_id: str) -> PipelineRun | None:
    runs = PipelineRun.objects.select_for_update().defer("steps", "parameters")
    return one(runs.filter(pk=run_id))


def one(queryset):
    """The row a filter on a unique key finds, or None; `first()` would add an ORDER BY."""
    rows = list(queryset.order_by()[:1])
    return rows[0] if rows else None


def run_nodes(run: PipelineRun):
    """The run's nodes, unordered: ordering by run would join the run. The manager rather
    than `run.nodes`, whose related manager costs more to build than the query."""
    return PipelineNode.objects.filter(run_id=run.pk).order_by()


def nodes_with_tasks(run: PipelineRun):
    return run_nodes(run).select_related("task")


TRACKED = ("status", "completed", "open_nodes", "plot_due", "plot_updated")


class Pass:
    """One locked visit of a run. Changes to the run row are written once, at the end; the
    nodes it changes are written together, before anything reads them back (`write_nodes`),
    so a finish that launches the next step updates both nodes in one statement."""

    def __init__(self, run: PipelineRun, now=None):
        self.run = run
        self.shape = shape_of(run)
        self.now = now or timezone.now()
        self.changed = False
        self.fatal = False  # a step failed in a way that fails the whole run
        self.before = {field: getattr(run, field) for field in TRACKED}
        self.unwritten: dict = {}  # changed nodes by primary key

    def write_nodes(self, before_reading=None) -> None:
        """Write the changed nodes before the database is asked about nodes: all of them, or
        with `before_reading` (the names about to be read) only if one of those changed."""
        if not self.unwritten:
            return
        if before_reading is not None and not any(
            node.name in before_reading for node in self.unwritten.values()
        ):
            return
        save_nodes(list(self.unwritten.values()))
        self.unwritten.clear()

    def flush(self) -> None:
        self.write_nodes()
        run = self.run
        if run.status == PipelineStatus.RUNNING:
            _plot.request(run, self.now, self.changed)
        fields = {f: getattr(run, f) for f in TRACKED if getattr(run, f) != self.before[f]}
        if fields:
            PipelineRun.objects.filter(pk=run.pk).update(**fields)
            self.before.update(fields)


class Nodes(dict):
    """Nodes by name, loaded from the database on first use (reference lookups)."""

    def __init__(self, work: Pass, preloaded=()):
        super().__init__((node.name, node) for node in preloaded)
        self.work = work

    def __missing__(self, name):
        self.work.write_nodes(before_reading=(name,))
        node = one(nodes_with_tasks(self.work.run).filter(name=name))
        self[name] = node
        return node

    def get(self, name, default=None):
        node = self[name]
        return default if node is None else node


def note(work: Pass, node: PipelineNode, was: str) -> None:
    """Keep the run's count of open nodes and remember what the end of the pass must do."""
    work.run.open_nodes += (node.status not in NODE_TERMINAL) - (was not in NODE_TERMINAL)
    work.changed = True
    if node.status in (NodeStatus.FAILED, NodeStatus.ABORTED) and dag.fails_pipeline(
        work.shape.index.steps[node.name], node.status
    ):
        work.fatal = True


def set_node(work: Pass, node: PipelineNode, status: str, message: str = "") -> None:
    was = node.status
    node.status = status
    node.message = message or ""
    node.updated = timezone.now()
    work.unwritten[node.pk] = node
    note(work, node, was)


# Every field the engine changes on a node, so that one statement writes any of them.
NODE_FIELDS = (
    "task",
    "status",
    "message",
    "updated",
    "resolved_overrides",
    "cache_key",
    "attempts",
    "decision",
    "key_inputs",
)


def save_nodes(nodes: list) -> None:
    """One UPDATE statement run for each node (executemany): Django's bulk_update builds a
    CASE expression per row and field, which costs more than the rows it saves."""
    if not nodes:
        return
    statement = sql.update_text(PipelineNode, NODE_FIELDS, ("pk",))
    attnames = [(name, PipelineNode._meta.get_field(name).attname) for name in NODE_FIELDS]
    rows = [
        sql.prepare(PipelineNode, {name: getattr(node, attname) for name, attname in attnames})
        + [node.pk]
        for node in nodes
    ]
    with connection.cursor() as cursor:
        cursor.executemany(statement, rows)
