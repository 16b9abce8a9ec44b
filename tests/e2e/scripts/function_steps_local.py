"""Function steps run as subprocesses of this controller
(start_locally(run_pipeline_steps_locally=True)), each still a task with its console,
artifacts and plots."""

from pipelines import PipelineController


def produce(rows):
    from pipelines import Task

    print(f"PRODUCE {rows}", flush=True)
    Task.current_task().get_logger().report_scalar("rows", "made", rows, 0)
    return [{"n": i, "square": i * i} for i in range(rows)]


def consume(table):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipelines import Task

    plt.plot([row["n"] for row in table], [row["square"] for row in table])
    Task.current_task().get_logger().report_matplotlib_figure("squares", "curve", plt.gcf(), 0)
    print(f"CONSUME {len(table)}", flush=True)
    return sum(row["square"] for row in table)


pipe = PipelineController(name="local function steps", project="examples")
pipe.add_function_step(
    name="produce", function=produce, function_kwargs={"rows": 4}, function_return=["table"]
)
pipe.add_function_step(
    name="consume",
    function=consume,
    function_kwargs={"table": "${produce.table}"},
    function_return=["total"],
)
print("OUTCOME", pipe.start_locally(run_pipeline_steps_locally=True), flush=True)
print("CONTROLLER", pipe.id, flush=True)
