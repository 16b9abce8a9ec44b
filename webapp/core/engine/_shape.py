"""What never changes after a run starts, decoded once per process."""

import dataclasses
import functools

from django.db import IntegrityError

from pipelines import dag

from ..models import PipelineRun, Task


@dataclasses.dataclass
class Shape:
    """What never changes after start_run: the steps, their graph and the parameters. A
    run whose script adds steps as it goes (an open definition) has a new shape, and a new
    `revision`, with each addition."""

    steps: list
    index: dag.GraphIndex
    parameters: dict
    revision: int = 0
    layout: object = None  # the figure's PipelineLayout, built by the first plot
    controller: Task | None = None  # loaded by the first launch
    # The last completed node of each step in the pipeline's earlier runs, by step name,
    # what a launch's reason is computed against (_why.py); read by the first launch.
    previous: dict | None = None
    # The queues its steps were enqueued on, by name. A queue row never changes; should one
    # be deleted meanwhile, the insert that names it fails and the pass is tried again with
    # the shape forgotten (`retried_with_fresh_shape`).
    queues: dict = dataclasses.field(default_factory=dict)


SHAPES: dict[str, Shape] = {}
SHAPES_MAX = 256


def shape_of(run: PipelineRun) -> Shape:
    """Decoded once per process: the engine reads the run row with its definition deferred,
    since decoding a 5,000-step definition would cost more than the rest of an event."""
    shape = SHAPES.get(run.pk)
    if shape is not None and shape.revision != run.revision:
        shape = None  # steps were added since: the row's definition is newer
    if shape is None:
        if "steps" in run.__dict__ and "parameters" in run.__dict__:
            steps, params = run.steps, run.parameters
        else:
            steps, params = (
                PipelineRun.objects.filter(pk=run.pk).values_list("steps", "parameters").get()
            )
        if len(SHAPES) >= SHAPES_MAX:
            SHAPES.pop(next(iter(SHAPES)))
        shape = SHAPES[run.pk] = Shape(
            steps, dag.index_graph(steps), params or {}, revision=run.revision
        )
    return shape


def forget_shape(run_id: str) -> None:
    SHAPES.pop(run_id, None)


def retried_with_fresh_shape(run_id_of):
    """Run the decorated pass once more, with the run's shape read afresh, if it fails on
    an integrity error: a queue the shape remembers may have been deleted (and made again
    by name). `run_id_of(*args, **kwargs)` names the run."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except IntegrityError:
                forget_shape(run_id_of(*args, **kwargs))
                return function(*args, **kwargs)

        return wrapper

    return decorate
