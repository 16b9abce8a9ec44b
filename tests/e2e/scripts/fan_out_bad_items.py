"""Fan-outs over lists that cannot be: one step returns a set (stored pickled, which the
server never loads), another more items than a map may have. Argument: queue."""

import sys

from pipelines.automation import PipelineController

queue = sys.argv[1]


def a_set():
    return {1, 2, 3}


def too_many():
    return list(range(10_001))


def square(x):
    return x * x


pipe = PipelineController(
    name="fan out bad items", project="e2e-dynamic", default_execution_queue=queue
)
pipe.add_function_step(name="a_set", function=a_set, function_return=["numbers"])
pipe.add_function_step(name="too_many", function=too_many, function_return=["numbers"])
for source in ("a_set", "too_many"):
    pipe.add_map_step(
        name=f"square_{source}",
        function=square,
        items=f"${{{source}.numbers}}",
        function_return=["y"],
        continue_on_fail=True,
    )
pipe.start()
print("RUN", pipe._run["id"], flush=True)
