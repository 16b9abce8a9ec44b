"""Engine cost per step on wide and deep DAGs: time spent inside the engine, per step.

Runs in its own process against a fresh SQLite database. Worker behaviour is simulated by
the same claim/finish verbs the REST API calls (their time is not counted).
"""

import json
import os
import sys
import tempfile
import time


def setup_django(data_dir: str) -> None:
    os.environ["PIPELINES_DATA_DIR"] = data_dir
    os.environ["DATABASE_URL"] = f"sqlite:///{data_dir}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ["CELERY_BROKER_URL"] = "memory://"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def measure(steps_count: int, shape: str) -> dict:
    from django.contrib.auth import get_user_model

    from webapp.core import engine, execution, services

    user, _ = get_user_model().objects.get_or_create(username=f"bench-{shape}-{steps_count}")
    base = services.create_task(
        user=user, project_name=user.username, name="step", script={"code": ""}
    )
    controller = services.create_task(
        user=user,
        project_name=user.username,
        name="pipe",
        task_type="controller",
        start_running=True,
    )
    steps = []
    for i in range(steps_count):
        parents = [] if i == 0 else ([f"s{i - 1}"] if shape == "deep" else ["s0"])
        steps.append({"name": f"s{i}", "base_task_id": base.id, "parents": parents})
    engine_seconds = 0.0
    started = time.perf_counter()
    run = engine.start_run(user=user, controller=controller, steps=steps)
    engine_seconds += time.perf_counter() - started

    def timed_advance(hint=None):
        nonlocal engine_seconds
        t0 = time.perf_counter()
        engine.advance(run.id, changed_task_id=hint)
        engine_seconds += time.perf_counter() - t0

    timed_advance()
    while True:
        queued = list(run.nodes.filter(status="queued").select_related("task"))
        if not queued:
            break
        for node in queued:
            task = node.task
            execution.claim_task(task.id, task.attempt, "bench")
            timed_advance(task.id)
            execution.finish_task(task, task.attempt, "completed")
            timed_advance(task.id)
    run.refresh_from_db()
    assert run.status == "completed", run.status
    return {
        "steps": steps_count,
        "shape": shape,
        "engine_seconds": round(engine_seconds, 4),
        "ms_per_step": round(engine_seconds / steps_count * 1000, 3),
    }


def main() -> None:
    sizes = [int(x) for x in (sys.argv[1:] or ["100", "1000"])]
    with tempfile.TemporaryDirectory(prefix="pipelines-bench-") as data_dir:
        setup_django(data_dir)
        results = [measure(n, shape) for n in sizes for shape in ("wide", "deep")]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
