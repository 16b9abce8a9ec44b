"""Two ended 1,000-step runs of one pipeline in a bench server's database, made by the
engine with workers simulated by the claim and finish verbs (bench_rerun.py runs this in a
process of its own, its broker a memory one, so no step message is left for a worker).

The DAG is a binary tree: step i follows step (i - 1) // 2 and reads its parent's task id,
so a rerun from a step near the root runs most of the run again."""

import json
import os
import sys


def tree(size: int, base_id: str) -> list:
    return [
        {
            "name": f"s{i}",
            "base_task_id": base_id,
            "parents": [f"s{(i - 1) // 2}"] if i else [],
            "parameter_override": {
                "General/test_size": 0.25,
                **({"General/dataset_url": f"${{s{(i - 1) // 2}.id}}"} if i else {}),
            },
        }
        for i in range(size)
    ]


def finish_all(run) -> None:
    from webapp.core import engine, execution
    from webapp.core.models import PipelineNode

    while True:
        nodes = list(PipelineNode.objects.filter(run=run, status="queued").select_related("task"))
        if not nodes:
            return
        for node in nodes:
            task = node.task
            execution.claim_task(task.id, task.attempt, "bench")
            engine.advance(run.id, changed_task_id=task.id, task_status="in_progress")
            execution.finish_task(task, task.attempt, "completed")
            engine.advance(run.id, changed_task_id=task.id, task_status="completed")


def main(base_id: str, queue: str, size: int) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from webapp.core import engine, services
    from webapp.core.models import PipelineRun, Task

    user = get_user_model().objects.get(username="admin")
    controller = services.create_task(
        user=user,
        project_name="bench-rerun",
        name="tree pipeline",
        task_type="controller",
        start_running=True,
    )
    base = Task.objects.get(pk=base_id)
    run = engine.start_run(
        user=user, controller=controller, steps=tree(size, base.pk), default_queue=queue
    )
    engine.advance(run.id)
    finish_all(run)
    edits = {"s1": {"General/test_size": 0.3}}
    second = engine.rerun_from(run.id, user=user, step="s1", parameter_override=edits)
    engine.advance(second.id)
    finish_all(second)
    statuses = [r.status for r in PipelineRun.objects.filter(pk__in=[run.pk, second.pk])]
    print("SEEDED " + json.dumps({"a": run.pk, "b": second.pk, "statuses": statuses}))


if __name__ == "__main__":
    sys.path.insert(0, os.getcwd())
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
