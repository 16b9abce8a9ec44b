"""Test data for the browser tests, created inside the server's environment.

Run through `manage.py shell -c` (see conftest.py) so the rows land in the server's
database. Tasks go through the service verbs; pipeline rows and reported results are
written directly, as the engine and the ingest endpoints would have.
"""

import json

from django.contrib.auth import get_user_model
from django.utils import timezone

from webapp.core import events, execution, services
from webapp.core.choices import NodeStatus, PipelineStatus, TaskType
from webapp.core.models import Artifact, PipelineNode, PipelineRun

SCRIPT = """from pipelines import Task

task = Task.init(project_name="examples", task_name="train")
args = {"lr": 0.01, "epochs": 3}
task.connect(args)
print("training", args)
"""


def _finished(task, *, lines=(), scalars=0):
    services.mark_started(task)
    if lines:
        execution.append_log(task, [{"text": line} for line in lines])
    if scalars:
        batch = [
            {"type": "scalar", "title": "loss", "series": series, "iteration": i, "value": v}
            for i in range(scalars)
            for series, v in (("train", 1.0 / (i + 1)), ("validation", 1.2 / (i + 1)))
        ]
        events.ingest_events(task, batch)
    return services.mark_completed(task)


def seed() -> dict:
    admin = get_user_model().objects.get(username="admin")
    base = services.create_task(
        user=admin,
        project_name="examples",
        name="train model",
        task_type=TaskType.TRAINING,
        script={
            "entry_point": "train.py",
            "working_dir": ".",
            "code": SCRIPT,
            "requirements": ["numpy==2.3.4", "scikit-learn==1.7.2"],
        },
        hyperparameters={"General": {"lr": 0.01, "epochs": 3}, "Args": {"batch_size": 32}},
        tags=["baseline"],
    )
    _finished(base, lines=[f"epoch {i} loss {1 / (i + 1):.3f}" for i in range(5)], scalars=20)
    events.ingest_events(
        base,
        [
            {
                "type": "plot",
                "title": "confusion",
                "series": "test",
                "iteration": 0,
                "figure": {
                    "data": [{"type": "heatmap", "z": [[5, 1], [0, 7]]}],
                    "layout": {"title": {"text": "confusion"}},
                },
            }
        ],
    )
    Artifact.objects.create(
        task=base,
        name="dataset",
        kind="pandas",
        filename="dataset.parquet",
        url="http://127.0.0.1/files/x/dataset.parquet",
        size=2048,
        sha256="a" * 64,
        preview="   sepal  petal\n0   5.1    1.4\n1   4.9    1.4",
        state="ready",
    )

    controller = services.create_task(
        user=admin,
        project_name="examples",
        name="pipeline demo",
        task_type=TaskType.CONTROLLER,
        start_running=True,
    )
    steps = [
        {"name": "stage_data", "parents": [], "parameter_override": {}, "base_task_id": base.id},
        {
            "name": "stage_process",
            "parents": ["stage_data"],
            "parameter_override": {"General/dataset_url": "${stage_data.artifacts.dataset.url}"},
            "base_task_id": base.id,
        },
        {
            "name": "stage_train",
            "parents": ["stage_process"],
            "parameter_override": {"General/dataset_task_id": "${stage_process.id}"},
            "base_task_id": base.id,
        },
    ]
    run = PipelineRun.objects.create(
        controller=controller, steps=steps, status=PipelineStatus.RUNNING
    )
    data_task = services.clone_task(base, user=admin, name="stage_data", parent=controller)
    _finished(data_task, lines=["downloaded"])
    process_task = services.clone_task(
        base,
        user=admin,
        name="stage_process",
        parent=controller,
        hyperparameters={"General": {"dataset_url": "http://127.0.0.1/files/abc/iris.pkl"}},
    )
    services.enqueue_task(process_task, "default")
    PipelineNode.objects.create(
        run=run, name="stage_data", position=0, task=data_task, status=NodeStatus.COMPLETED
    )
    PipelineNode.objects.create(
        run=run,
        name="stage_process",
        position=1,
        task=process_task,
        status=NodeStatus.QUEUED,
        resolved_overrides={"General/dataset_url": "http://127.0.0.1/files/abc/iris.pkl"},
        updated=timezone.now(),
    )
    return {
        "task": base.id,
        "controller": controller.id,
        "run": run.id,
        "data_task": data_task.id,
        "process_task": process_task.id,
        "project": base.project_id,
    }


def wide_run(count: int) -> dict:
    """A run of `count` steps shaped as a fan (one root, `count - 2` parallel steps, one
    join), its rows written as the engine would: a few ended, one running, the rest not
    reached. It has no server worker to drive it: only its page is read."""
    admin = get_user_model().objects.get(username="admin")
    controller = services.create_task(
        user=admin,
        project_name="examples",
        name=f"wide pipeline {count}",
        task_type=TaskType.CONTROLLER,
        start_running=True,
    )
    names = ["root", *(f"fan_{i:03d}_with_a_longish_name" for i in range(count - 2)), "join"]
    steps = [{"name": "root", "parents": []}]
    steps += [{"name": name, "parents": ["root"]} for name in names[1:-1]]
    steps.append({"name": "join", "parents": names[1:-1]})
    run = PipelineRun.objects.create(
        controller=controller, steps=steps, status=PipelineStatus.RUNNING
    )
    statuses = [NodeStatus.COMPLETED] * 20 + [NodeStatus.FAILED] + [NodeStatus.RUNNING]
    for position, name in enumerate(names[: len(statuses)]):
        PipelineNode.objects.create(
            run=run, name=name, position=position, status=statuses[position]
        )
    return {"run": run.id}


def main() -> None:
    print("SEED " + json.dumps(seed()))
