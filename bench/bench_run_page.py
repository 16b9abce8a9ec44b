"""The pipeline run page of a 1,000-step run, first render in Chromium.

The run (a root, ten chains of 99 steps, a join and eight steps after it; for the baseline,
ten chains of one step) is written in
the server's environment as the engine would have left it: every step's task created,
started and completed through the verbs, with measured resources. Timed in the page:
`performance.now()` (from the navigation's start) once the DAG is drawn, in a fresh browser
context (Plotly.js fetched and compiled) and again with it cached; then the timeline below
it, from being scrolled into view to drawn.
"""

import json
import os
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
TARGET_MS = 2000

SEED = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from webapp.core import services
from webapp.core.choices import NodeStatus, PipelineStatus, TaskType
from webapp.core.models import PipelineNode, PipelineRun, Task

admin = get_user_model().objects.get(username="admin")
steps = [{"name": "root", "parents": []}]
length = max(1, (%(count)d - 2) // 10)
for chain in range(10):
    for i in range(length):
        parent = f"c{chain}_{i - 1}" if i else "root"
        steps.append({"name": f"c{chain}_{i}", "parents": [parent],
                      "parameter_override": {"General/i": str(i)}})
steps.append({"name": "join", "parents": [f"c{chain}_{length - 1}" for chain in range(10)]})
steps += [{"name": f"after_{i}", "parents": ["join"]} for i in range(%(count)d - len(steps))]
controller = services.create_task(user=admin, project_name="bench", name="wide run",
                                  task_type=TaskType.CONTROLLER, start_running=True)
start = timezone.now() - timedelta(hours=1)
run = PipelineRun.objects.create(controller=controller, steps=steps,
                                 status=PipelineStatus.RUNNING)
PipelineRun.objects.filter(pk=run.pk).update(created=start)
for position, step in enumerate(steps):
    task = services.create_task(user=admin, project_name="bench", name=step["name"],
                                parent=controller)
    services.mark_started(task)
    services.mark_completed(task)
    Task.objects.filter(pk=task.pk).update(
        started=start + timedelta(seconds=position * 3),
        completed=start + timedelta(seconds=position * 3 + 2),
        resource_cpu_seconds=1.5, resource_peak_rss_bytes=80 * 2**20,
        resource_wall_seconds=2.0)
    status = NodeStatus.RUNNING if position >= len(steps) - 5 else NodeStatus.COMPLETED
    PipelineNode.objects.create(run=run, name=step["name"], position=position, task=task,
                                status=status)
print("SEED", json.dumps({"run": run.id, "steps": len(steps)}))
"""

DRAWN = """(ids) => ids.every(
    (id) => document.getElementById(id) && document.getElementById(id).dataset.drawn === '1')"""


def _render_times(server, run_id: str, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    url = f"{server.url}/pipelines/runs/{run_id}/"
    cold, warm, boxes, server_ms, timeline_ms = [], [], 0, [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            for _ in range(repeats):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(f"{server.url}/login/")
                page.fill("input[name=username]", "admin")
                page.fill("input[name=password]", server.password)
                page.click("button[type=submit]")
                page.wait_for_url("**/projects/")
                for times in (cold, warm):  # fresh, then with Plotly.js in the cache
                    page.goto(url)
                    page.wait_for_function(DRAWN, arg=["pipeline-dag"], timeout=60_000)
                    times.append(page.evaluate("() => performance.now()"))
                    server_ms.append(
                        page.evaluate(
                            "() => performance.getEntriesByType('navigation')[0].responseEnd"
                        )
                    )
                    # The timeline below it is drawn as it scrolls into view.
                    scrolled = page.evaluate(
                        """() => { document.getElementById('pipeline-timeline').scrollIntoView();
                                   return performance.now(); }"""
                    )
                    page.wait_for_function(DRAWN, arg=["pipeline-timeline"], timeout=60_000)
                    timeline_ms.append(page.evaluate("() => performance.now()") - scrolled)
                boxes = page.evaluate(
                    """() => document.getElementById('pipeline-dag').data
                        .filter((t) => String(t.name).startsWith('boxes '))
                        .reduce((n, t) => n + t.x.length / 6, 0)"""
                )
                context.close()
        finally:
            browser.close()
    return {
        "cold_ms": summarize(cold),
        "warm_ms": summarize(warm),
        "page_received_ms": summarize(server_ms),
        "timeline_after_scroll_ms": summarize(timeline_ms),
        "boxes": boxes,
    }


def run(count: int = 1_000, repeats: int = 5) -> dict:
    if not CHROMIUM.exists():
        raise ModuleNotFoundError(f"{CHROMIUM} is missing (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="bench-run-page-") as folder:
        server = start_server(Path(folder) / "server")
        try:
            out = server.manage("shell", "-c", SEED % {"count": count})
            seeded = json.loads(out.split("SEED ", 1)[1].splitlines()[0])
            render = _render_times(server, seeded["run"], repeats)
            # The same page for a run of 12 steps: what any run page costs a fresh browser
            # whatever the run (fetching and compiling Plotly.js, the page's frame).
            out = server.manage("shell", "-c", SEED % {"count": 12})
            small = json.loads(out.split("SEED ", 1)[1].splitlines()[0])
            baseline = _render_times(server, small["run"], repeats)
        finally:
            server.stop()
            server.drop_database()
    result = {
        "machine": machine(),
        "steps": seeded["steps"],
        "render": render,
        "render_small_run": baseline,
    }
    print(f"run page of a {seeded['steps']:,}-step run (Chromium)")
    print(line("first render, fresh browser (p50)", render["cold_ms"]["median"], "ms", "< 2000"))
    print(line("first render, fresh browser (max)", render["cold_ms"]["max"], "ms"))
    print(line("first render, Plotly.js cached (p50)", render["warm_ms"]["median"], "ms"))
    received = render["page_received_ms"]["median"]
    print(line("  of which the page's HTML received (p50)", received, "ms"))
    print(line("  boxes drawn", render["boxes"], ""))
    scrolled = render["timeline_after_scroll_ms"]["median"]
    print(line("timeline drawn once scrolled into view (p50)", scrolled, "ms"))
    print(
        line(
            f"the same page for a {small['steps']}-step run, fresh browser (p50)",
            baseline["cold_ms"]["median"],
            "ms",
        )
    )
    print(line("  Plotly.js cached (p50)", baseline["warm_ms"]["median"], "ms"))
    write_result("run_page", result)
    return result
