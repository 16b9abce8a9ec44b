"""A fan-out over a list one step makes at run time: `square` runs once per number, some
of which fail, and `total` adds up the results of those that did not (None for a failed
item). Arguments: queue, how many numbers, which of them fail (comma-separated)."""

import sys

from pipelines.automation import PipelineController

queue, count, failing = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def make_numbers(count):
    return list(range(count))


def square(x, failing):
    if x in failing:
        raise ValueError(f"item {x} fails on purpose")
    return x * x


def total(squares):
    done = [value for value in squares if value is not None]
    print(f"TOTAL {sum(done)} OF {len(done)}", flush=True)
    return sum(done)


pipe = PipelineController(
    name=f"fan out {count} failing {failing}", project="examples", default_execution_queue=queue
)
pipe.add_function_step(
    name="make",
    function=make_numbers,
    function_kwargs={"count": count},
    function_return=["numbers"],
)
pipe.add_map_step(
    name="square",
    function=square,
    items="${make.numbers}",
    function_kwargs={"failing": [int(x) for x in failing.split(",") if x]},
    function_return=["y"],
    max_parallel=4,
    items_per_task=10,
    min_success_ratio=0.8,
)
pipe.add_function_step(
    name="total",
    function=total,
    function_kwargs={"squares": "${square.y}"},
    function_return=["sum"],
)
pipe.start()
print("RUN", pipe._run["id"], flush=True)
