"""Engine cost per step on wide and deep DAGs: time spent inside the engine, per step.

Runs in its own process against a fresh SQLite database. Worker behaviour is simulated by
the same claim/finish verbs the REST API calls; their time is not counted. What is counted
is every call into the engine (start_run, and advance() after each claim and each finish, as
the status-change hook calls it: with the task's new status), commit and broker publishes
included.

The plot refresh the engine asks for runs as its own throttled job on the server worker;
here it runs whenever it falls due, and its time is reported apart from the engine's.

Besides wall time (noisy on a shared machine) each row has the CPU time of the engine calls
and the number of SQL statements they issued; `growth` compares each size with the smallest.
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


class _Meter:
    """Wall time, CPU time and SQL statements spent inside measured calls."""

    def __init__(self):
        self.wall = self.cpu = 0.0
        self.queries = 0
        self.calls = 0

    def __call__(self, fn, *args, **kwargs):
        from django.db import connection

        def count(execute, sql, params, many, context):
            self.queries += 1
            return execute(sql, params, many, context)

        wall, cpu = time.perf_counter(), time.process_time()
        with connection.execute_wrapper(count):
            result = fn(*args, **kwargs)
        self.cpu += time.process_time() - cpu
        self.wall += time.perf_counter() - wall
        self.calls += 1
        return result


def measure(steps_count: int, shape: str) -> dict:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from webapp.core import engine, execution, services
    from webapp.core.engine import _jobs
    from webapp.core.models import Task

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

    # The refresh job the engine asks for (eta = when it is due), run here when due: the
    # bench reaches into the engine's job sender to see it.
    due: list = []
    schedule = _jobs.refresh_plot_at

    def record(run_id, when):
        due.append(when)
        schedule(run_id, when)

    _jobs.refresh_plot_at = record
    engine_meter, plot_meter = _Meter(), _Meter()
    try:
        run = engine_meter(engine.start_run, user=user, controller=controller, steps=steps)

        def advance(hint=None, status=None):
            # As the status-change hook calls it: the task and the status it moved to.
            engine_meter(engine.advance, run.id, changed_task_id=hint, task_status=status)
            if due and min(due) <= timezone.now():
                due.clear()
                plot_meter(engine.refresh_plot, run.id)

        advance()
        queued = Task.objects.filter(parent_id=controller.id, status="queued").order_by()
        while True:
            tasks = list(queued.all())
            if not tasks:
                break
            for task in tasks:
                execution.claim_task(task.id, task.attempt, "bench")
                advance(task.id, "in_progress")
                execution.finish_task(task, task.attempt, "completed")
                advance(task.id, "completed")
    finally:
        _jobs.refresh_plot_at = schedule
    run.refresh_from_db()
    assert run.status == "completed", run.status
    assert run.nodes.filter(status="completed").count() == steps_count
    return {
        "steps": steps_count,
        "shape": shape,
        "engine_seconds": round(engine_meter.wall, 4),
        "ms_per_step": round(engine_meter.wall / steps_count * 1000, 3),
        "cpu_ms_per_step": round(engine_meter.cpu / steps_count * 1000, 3),
        "queries_per_step": round(engine_meter.queries / steps_count, 2),
        "engine_calls": engine_meter.calls,
        "plot_refreshes": plot_meter.calls,
        "plot_refresh_ms": round(plot_meter.wall / max(plot_meter.calls, 1) * 1000, 1),
        "plot_share": round(plot_meter.wall / max(engine_meter.wall + plot_meter.wall, 1e-9), 3),
    }


def add_growth(results: list) -> list:
    """Per-step cost of each size relative to the smallest size of the same shape."""
    smallest = {}
    for row in sorted(results, key=lambda r: r["steps"]):
        first = smallest.setdefault(row["shape"], row)
        row["growth"] = round(row["ms_per_step"] / first["ms_per_step"], 2)
        row["cpu_growth"] = round(row["cpu_ms_per_step"] / first["cpu_ms_per_step"], 2)
        row["queries_growth"] = round(row["queries_per_step"] / first["queries_per_step"], 2)
    return results


def main() -> None:
    sizes = [int(x) for x in (sys.argv[1:] or ["100", "1000", "5000"])]
    with tempfile.TemporaryDirectory(prefix="pipelines-bench-") as data_dir:
        setup_django(data_dir)
        measure(20, "deep")  # warm-up: imports, the broker's producer, Django's caches
        results = [measure(n, shape) for n in sizes for shape in ("wide", "deep")]
    print(json.dumps(add_growth(results)))


if __name__ == "__main__":
    main()
