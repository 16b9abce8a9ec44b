"""A decorator pipeline whose logic runs here and whose components run on workers: two
components that depend on nothing run at the same time (each waits, bounded, for the
other's handshake file), then one combines them, and one fans out over a list."""

import sys

from pipelines.automation.controller import PipelineDecorator

queue, folder = sys.argv[1], sys.argv[2]


@PipelineDecorator.component(return_values=["stamp"])
def left(folder):
    return handshake(folder, "left", "right")


@PipelineDecorator.component(return_values=["stamp"])
def right(folder):
    return handshake(folder, "right", "left")


def handshake(folder, mine, theirs):
    """Show this side is running, then wait (bounded) for the other side to be: both can
    only finish if they ran at the same time."""
    import time
    from pathlib import Path

    Path(folder, mine).touch()
    deadline = time.monotonic() + 60
    while not Path(folder, theirs).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{theirs} never ran while {mine} did")
        time.sleep(0.05)
    return mine


@PipelineDecorator.component(return_values=["joined"])
def combine(a, b):
    return f"{a}+{b}"


@PipelineDecorator.component(return_values=["numbers"])
def numbers(count):
    return list(range(count))


@PipelineDecorator.component(return_values=["square"])
def square(x, offset=0):
    return x * x + offset


@PipelineDecorator.pipeline(
    name="decorator parallel", project="examples", pipeline_execution_queue=None
)
def logic(folder):
    a, b = left(folder), right(folder)
    print("JOINED", combine(a, b), flush=True)
    squares = square.map(numbers(4), max_parallel=2, offset=1)
    print("SQUARES", list(squares), "SUM", sum(squares), flush=True)


if __name__ == "__main__":
    PipelineDecorator.set_default_execution_queue(queue)
    logic(folder)
    print("DONE", flush=True)
