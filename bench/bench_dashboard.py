"""Scalar charts in the dashboard: first render of 10 series x 100,000 points in Chromium,
and what a live refresh of a running task costs the server at two sizes of task.

First render is timed in the page (`performance.now()` when the charts are on screen,
from the navigation's start), in a fresh browser context (nothing cached: Plotly.js is
fetched and compiled too) and again in the same context (Plotly.js cached, as for anyone
who opened a chart before). A refresh is `GET scalars/since/?seq=N` after 100 new points,
through Django's test client inside the server's environment, counting its SQL statements
and the SQLite virtual-machine steps they took (a progress handler called every step).
"""

import json
import os
import statistics
import tempfile
from pathlib import Path

from tests.support import start_server

from .common import line, machine, summarize, write_result

CHROMIUM = Path(os.environ.get("PIPELINES_CHROMIUM", "/usr/bin/chromium"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]

SEED = """
import json, math
from django.contrib.auth import get_user_model
from webapp.core import events, services
admin = get_user_model().objects.get(username="admin")
ids = {}
for name, points in (("small", %(small)d), ("large", %(large)d)):
    task = services.create_task(user=admin, project_name="bench", name=name, start_running=True)
    for start in range(0, points, 4000):
        events.ingest_events(task, [
            {"type": "scalar", "title": "loss", "series": f"series {j}", "iteration": i,
             "value": math.sin(i / 2000 + j) + j + (3.0 if i %% 9973 == 0 else 0.0)}
            for j in range(10) for i in range(start, min(points, start + 4000))
        ])
    ids[name] = task.id
print("SEED", json.dumps(ids))
"""

REFRESH = """
import json, time
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from webapp.core import events
from django.db.models import Max
from webapp.core.models import Scalar, ScalarSeries, Task

client = Client(HTTP_HOST="127.0.0.1")
client.force_login(get_user_model().objects.get(username="admin"))
out = {}
for name, task_id in json.loads(%(ids)r).items():
    task = Task.objects.get(pk=task_id)
    rows = []
    for round_ in range(%(rounds)d):
        seq = client.get(f"/api/v1/tasks/{task_id}/scalars/charts/").json()["seq"]
        last = ScalarSeries.objects.filter(task=task).aggregate(m=Max("last_iteration"))["m"]
        events.ingest_events(task, [
            {"type": "scalar", "title": "loss", "series": f"series {j}", "iteration": last + 1 + i,
             "value": 1.0} for j in range(10) for i in range(10)])
        connection.ensure_connection()
        steps = [0]
        def count():
            steps[0] += 1
            return 0
        connection.connection.set_progress_handler(count, 1)
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            payload = client.get(f"/api/v1/tasks/{task_id}/scalars/since/?seq={seq}").json()
        elapsed = time.perf_counter() - started
        connection.connection.set_progress_handler(None, 1)
        rows.append({
            "statements": len(queries),
            "vm_steps": steps[0],
            "points": sum(len(p["x"]) for p in payload["points"]),
            "ms": elapsed * 1000,
        })
    out[name] = {"points": Scalar.objects.filter(task=task).count(), "refreshes": rows}
print("REFRESH", json.dumps(out))
"""


def _render_times(server, task_id: str, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    cold, warm, server_ms = [], [], []
    url = f"{server.url}/tasks/{task_id}/scalars/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            for _ in range(repeats + 1):  # the first round warms the server, not counted
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(f"{server.url}/login/")
                page.fill("input[name=username]", "admin")
                page.fill("input[name=password]", server.password)
                page.click("button[type=submit]")
                page.wait_for_url("**/projects/")
                times = []
                for _ in range(2):
                    page.goto(url)
                    page.wait_for_selector("[data-scalars][data-drawn]", state="attached")
                    drawn = page.evaluate(
                        """() => {
                            const root = document.querySelector('[data-scalars]');
                            const data = performance.getEntriesByType('resource')
                                .find(e => e.name.includes('/scalars/charts/'));
                            const points = [...document.querySelectorAll('.scalar-chart .plot')]
                                .flatMap(p => p.data).reduce((n, t) => n + t.x.length, 0);
                            return {drawn: Number(root.dataset.drawnAt), points: points,
                                    data: data.responseEnd - data.requestStart};
                        }"""
                    )
                    times.append(drawn)
                context.close()
                cold.append(times[0]["drawn"])
                warm.append(times[1]["drawn"])
                server_ms.append(times[1]["data"])
                drawn_points = times[1]["points"]
        finally:
            browser.close()
    return {
        "cold_ms": summarize(cold[1:]),
        "warm_ms": summarize(warm[1:]),
        "charts_request_ms": summarize(server_ms[1:]),
        "drawn_points": drawn_points,
    }


def run(small: int = 1_000, large: int = 100_000, repeats: int = 5, rounds: int = 5) -> dict:
    if not CHROMIUM.exists():
        raise ModuleNotFoundError(f"{CHROMIUM} is missing (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as folder:
        server = start_server(Path(folder) / "server")
        try:
            out = server.manage("shell", "-c", SEED % {"small": small, "large": large})
            ids = json.loads(out.split("SEED ", 1)[1].splitlines()[0])
            render = _render_times(server, ids["large"], repeats)
            # The same page for a task of 1/100 the points: what a fresh browser pays
            # whatever the data (fetching and compiling Plotly.js).
            baseline = _render_times(server, ids["small"], repeats)
            out = server.manage("shell", "-c", REFRESH % {"ids": json.dumps(ids), "rounds": rounds})
            refresh = json.loads(out.split("REFRESH ", 1)[1].splitlines()[0])
        finally:
            server.stop()
            server.drop_database()
    sizes = {}
    for name, data in refresh.items():
        rows = data["refreshes"]
        sizes[name] = {
            "stored_points": data["points"],
            "statements": statistics.median(r["statements"] for r in rows),
            "vm_steps": statistics.median(r["vm_steps"] for r in rows),
            "new_points": statistics.median(r["points"] for r in rows),
            "ms": statistics.median(r["ms"] for r in rows),
        }
    growth = sizes["large"]["vm_steps"] / sizes["small"]["vm_steps"]
    result = {
        "machine": machine(),
        "render": render,
        "render_small_task": baseline,
        "refresh": sizes,
        "vm_step_growth": growth,
    }
    print(f"scalar chart, 10 series x {large:,} points (SQLite, Chromium)")
    print(line("first render, fresh browser (p50)", render["cold_ms"]["median"], "ms", "< 1000"))
    print(line("first render, Plotly.js cached (p50)", render["warm_ms"]["median"], "ms", "< 1000"))
    print(line("  of which the charts request (p50)", render["charts_request_ms"]["median"], "ms"))
    print(line("  points drawn", render["drawn_points"], "pts"))
    print(
        line(
            f"the same page at {small:,} points per series, fresh browser",
            baseline["cold_ms"]["median"],
            "ms",
        )
    )
    print(line("  Plotly.js cached", baseline["warm_ms"]["median"], "ms"))
    for name in ("small", "large"):
        size = sizes[name]
        print(
            line(
                f"live refresh at {size['stored_points']:,} points: statements",
                size["statements"],
                "",
            )
        )
        print(line("  SQLite VM steps", size["vm_steps"], "steps"))
        print(line("  new points sent", size["new_points"], "pts"))
        print(line("  time in the server", size["ms"], "ms"))
    print(line("VM steps, large / small (100x the points)", growth, "x", "~1 (new points only)"))
    write_result("dashboard", result)
    return result
