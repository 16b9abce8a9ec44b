"""An ended seed-shaped run for the rerun and diff pages, run inside `manage.py shell` of
the browser tests' server: its steps' tasks are finished by the same claim and finish
verbs a worker's REST calls reach; then stage_process's base script changes."""

import json

from django.contrib.auth import get_user_model

from tests.factories import run_as_worker
from webapp.core import engine, services
from webapp.core.models import Artifact

PROJECT = "rerun demo"


def seed() -> dict:
    admin = get_user_model().objects.get(username="admin")

    def base(name, params, code):
        return services.create_task(
            user=admin,
            project_name=PROJECT,
            name=name,
            script={"entry_point": f"{name}.py", "code": code},
            hyperparameters={"General": params},
        )

    base("step1", {}, "print('download')\n")
    process = base(
        "step2", {"dataset_url": "", "test_size": 0.2, "random_state": 42}, "load()\nsplit()\n"
    )
    base("step3", {"dataset_task_id": "", "epochs": 3}, "fit()\nprint('trained')\n")

    def step(name, task, parents=(), overrides=None):
        return {
            "name": name,
            "base_task_project": PROJECT,
            "base_task_name": task,
            "parents": list(parents),
            "parameter_override": overrides or {},
        }

    steps = [
        step("stage_data", "step1"),
        step(
            "stage_process",
            "step2",
            ["stage_data"],
            {
                "General/dataset_url": "${stage_data.artifacts.dataset.url}",
                "General/test_size": 0.25,
            },
        ),
        step(
            "stage_train",
            "step3",
            ["stage_process"],
            {"General/dataset_task_id": "${stage_process.id}"},
        ),
    ]
    controller = services.create_task(
        user=admin,
        project_name=PROJECT,
        name="rerun pipeline",
        task_type="controller",
        start_running=True,
    )
    run = engine.start_run(user=admin, controller=controller, steps=steps)
    engine.advance(run.id)
    for name in ("stage_data", "stage_process", "stage_train"):
        node = run.nodes.select_related("task").get(name=name)
        run_as_worker(node.task, "completed", ["dataset"] if name == "stage_data" else None)
        Artifact.objects.filter(task=node.task).update(size=4096)
        engine.advance(run.id, changed_task_id=node.task_id)
    services.edit_task(
        process, {"script": {"entry_point": "step2.py", "code": "load()\nsplit(stratify=True)\n"}}
    )
    run.refresh_from_db()
    return {"run": run.id, "status": run.status}


def main() -> None:
    print("RERUN_SEED " + json.dumps(seed()))
