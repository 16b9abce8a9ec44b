"""The pipeline run page in headless Chromium, for a run executed by real workers: steps as
labelled boxes with durations, the step panel opened by a click, the timeline, progress that
shows a failure, the live update drawn by the first poll; and a 200-step run whose boxes
never overlap.

Every wait is Playwright's bounded auto-wait (TIMEOUT_MS) or a bounded count of polls.
"""

import json
import re
from pathlib import Path

import pytest

from tests.support import start_cluster, wait_until

from .conftest import SCREENSHOTS, login, screenshot

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is missing: pip install -r requirements-dev.txt"
)
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

BURNER = Path(__file__).parents[1] / "e2e" / "scripts" / "burn_cpu.py"
COMPLETED_COLOR = "#43a047"
FAILED_COLOR = "#e53935"


@pytest.fixture(scope="module")
def run_cluster(tmp_path_factory, browser):
    running = start_cluster(tmp_path_factory.mktemp("run-page-cluster"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def burner(run_cluster) -> str:
    return run_cluster.register(BURNER)


def _step(name, base, parents=(), **values) -> dict:
    return {
        "name": name,
        "base_task_id": base,
        "parents": list(parents),
        "parameter_override": {f"General/{k}": v for k, v in values.items()},
    }


def _start(cluster, steps, queue) -> dict:
    controller = cluster.post(
        "tasks/", {"project_name": "run-page", "name": "burn pipeline", "type": "controller"}
    )
    return cluster.post(
        "pipelines/", {"controller": controller["id"], "steps": steps, "default_queue": queue}
    )


def _nodes(cluster, run_id) -> dict:
    run = cluster.get(f"pipelines/{run_id}/")
    return {node["name"]: node for node in run["nodes"]}, run


def _figure(page, element_id="pipeline-dag"):
    return page.evaluate(
        """(id) => { const gd = document.getElementById(id);
            return {data: gd.data, layout: {shapes: gd.layout.shapes}}; }""",
        element_id,
    )


def _boxes(page) -> list[dict]:
    """Each step's box as drawn: its name, colour, and corners in axis units and on screen."""
    return page.evaluate(
        """() => {
            const gd = document.getElementById('pipeline-dag');
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
            const box = gd.getBoundingClientRect();
            const px = (x) => box.left + xa._offset + xa.l2p(x);
            const py = (y) => box.top + ya._offset + ya.l2p(y);
            const found = [];
            for (const trace of gd.data) {
                if (!String(trace.name).startsWith('boxes ')) continue;
                for (let i = 0; i < trace.x.length; i += 6) {
                    const xs = trace.x.slice(i, i + 5), ys = trace.y.slice(i, i + 5);
                    const x0 = Math.min(...xs), x1 = Math.max(...xs);
                    const y0 = Math.min(...ys), y1 = Math.max(...ys);
                    found.push({name: trace.customdata[i], color: trace.fillcolor, x0, x1, y0, y1,
                        px: [px(x0), py(y1), px(x1), py(y0)]});
                }
            }
            return found;
        }"""
    )


def _box_colors(page) -> dict:
    return {box["name"]: box["color"] for box in _boxes(page)}


def _node_point(page, name):
    """Where on screen the step's box is (the centre of its hover-and-click marker)."""
    return page.evaluate(
        """(name) => {
            const gd = document.getElementById('pipeline-dag');
            for (const trace of gd._fullData) {
                if (trace.mode !== 'markers') continue;
                const i = (trace.text || []).indexOf(name);
                if (i < 0) continue;
                const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
                const box = gd.getBoundingClientRect();
                return {x: box.left + xa._offset + xa.l2p(trace.x[i]),
                        y: box.top + ya._offset + ya.l2p(trace.y[i])};
            }
            return null;
        }""",
        name,
    )


def test_a_real_run_page_draws_boxes_opens_a_step_panel_and_shows_the_failure(
    run_cluster, burner, browser, tmp_path
):
    cluster = run_cluster
    queue = cluster.queue("runpage")
    cluster.start_worker(queue)
    go = tmp_path / "go"
    steps = [
        _step("prepare", burner, seconds=0.3, wait_file=str(go)),
        _step("train", burner, ["prepare"], seconds=0.5),
        _step("broken", burner, ["prepare"], seconds=0.1, exit_code=3),
        _step("report", burner, ["train", "broken"], seconds=0.1),
    ]
    run = _start(cluster, steps, queue)
    wait_until(lambda: _nodes(cluster, run["id"])[0]["prepare"]["status"] == "running", 60)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, cluster.server.url, "admin", cluster.server.password)
    # Every poll of the live feed is held here; the test lets exactly one through.
    held = []

    def hold(route):
        held.append(route)

    feed = re.compile(r".*/pipelines/runs/[0-9a-f]+/state/$")
    page.route(feed, hold)
    page.goto(f"{cluster.server.url}/pipelines/runs/{run['id']}/")
    expect(page.locator("#pipeline-dag .main-svg").first).to_be_visible()
    page.evaluate("() => { window.__sameDocument = true; }")
    assert _box_colors(page)["prepare"] == "#1e88e5"  # running, as the page was rendered

    # when the run moves on, to its end, before the page's first poll answers
    go.touch()
    wait_until(lambda: cluster.get(f"pipelines/{run['id']}/")["status"] != "running", 90)
    for _ in range(200):  # the page's first poll (every 3 s), by count of short waits
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the page never polled its live feed"
    held.pop(0).continue_()
    # then that first answer is drawn: boxes, progress and status, without a reload
    expect(page.locator("#run-status")).to_have_text("Failed")
    assert _box_colors(page)["prepare"] == COMPLETED_COLOR
    assert _box_colors(page)["broken"] == FAILED_COLOR
    assert page.evaluate("() => window.__sameDocument === true")
    page.unroute(feed)
    for route in held:
        route.abort()

    # A failed run's progress shows the failure apart, never a full green bar
    progress = page.locator("#run-progress")
    expect(progress).to_contain_text("4/4 steps ended")
    expect(progress.locator("[data-count=failed]")).to_contain_text("1 failed")
    expect(progress.locator("[data-count=skipped]")).to_contain_text("1 skipped")
    expect(progress.locator("[data-count=completed]")).to_contain_text("2 completed")
    segments = page.locator("#run-progress-bar .bar")
    assert "failed" in segments.evaluate_all("(bars) => bars.map((b) => b.dataset.status)")
    # the run's end and duration, and what its steps used, summed
    expect(page.locator("#run-ended")).to_contain_text("ended")
    expect(page.locator("#run-duration")).to_contain_text(re.compile(r"took \d"))
    expect(page.locator("#run-resources")).to_contain_text(re.compile(r"cpu \d"))

    # Boxes carry the step's name, status and duration (and what it used)
    page.reload()
    expect(page.locator("#pipeline-dag .main-svg").first).to_be_visible()
    figure = _figure(page)
    (labels,) = [t for t in figure["data"] if t["mode"] == "text"]
    text = dict(zip(labels["customdata"], labels["text"], strict=True))
    assert re.search(r"<b>train</b><br>completed · \d+(\.\d)?s<br>cpu \d", text["train"]), text
    assert "failed" in text["broken"] and "skipped" in text["report"]
    drawn = page.locator("#pipeline-dag .textpoint")
    expect(drawn.filter(has_text="train")).to_have_count(1)
    screenshot(page, "run-page-failed", narrow=True)

    # A click on a box opens its panel beside the DAG, in the same page
    page.evaluate("() => { window.__sameDocument = true; }")
    point = _node_point(page, "train")
    page.mouse.click(point["x"], point["y"])
    panel = page.locator("#step-panel")
    expect(panel.locator("h2")).to_have_text("train")
    expect(panel).to_contain_text("ran in this run")
    expect(panel.locator("[data-field=resources]")).to_contain_text(re.compile(r"CPU\s*\d"))
    expect(panel.locator("[data-field=overrides]")).to_contain_text("General/seconds")
    expect(panel.locator("[data-field=console]")).to_contain_text("BURNED")
    # and why it ran: the engine's decision when it launched the step
    expect(panel.locator("[data-field=cache-reason]")).to_contain_text("caching off for this step")
    expect(page.locator("#pipeline-nodes tr.selected-step")).to_have_attribute("data-step", "train")
    assert page.evaluate("() => window.__sameDocument === true")
    screenshot(page, "run-page-panel", narrow=False)
    # the failed step's panel says why it failed
    page.click("button[data-open-step=broken]")
    expect(panel.locator("h2")).to_have_text("broken")
    expect(panel).to_contain_text("exit code 3")
    panel.locator("[data-close-panel]").click()
    expect(panel.locator("[data-panel-empty]")).to_be_visible()

    # At 800 px (half a laptop's screen) the page is one column and nothing is cut off:
    # no sideways scrolling, the graph and an open step's panel inside the window
    page.set_viewport_size({"width": 800, "height": 900})
    page.click("button[data-open-step=train]")
    expect(panel.locator("h2")).to_have_text("train")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 800
    for part in ("#pipeline-dag", "#step-panel", "#run-progress", "#pipeline-nodes"):
        box = page.locator(part).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 801, (part, box)
    # each step is one line or a few in the table, never a column squeezed to a letter
    heights = page.locator("#pipeline-nodes tbody tr").evaluate_all(
        "(rows) => rows.map((r) => r.getBoundingClientRect().height)"
    )
    assert heights and max(heights) < 120, heights
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "run-page-panel-800.png"), full_page=True)
    panel.locator("[data-close-panel]").click()
    page.set_viewport_size({"width": 1280, "height": 900})

    # The timeline has a bar for each step that ran, in the run's order (drawn when it
    # comes into view)
    page.locator("#pipeline-timeline").scroll_into_view_if_needed()
    expect(page.locator("#pipeline-timeline .main-svg").first).to_be_visible()
    timeline = _figure(page, "pipeline-timeline")
    bars = {name: trace["name"] for trace in timeline["data"] for name in trace["y"]}
    assert bars == {"prepare": "completed", "train": "completed", "broken": "failed"}
    expect(page.locator("#pipeline-timeline .bars .point")).to_have_count(3)

    # The runs list shows the failure, the end time and the duration
    page.goto(f"{cluster.server.url}/pipelines/")
    row = page.locator("tr", has=page.locator(f"a[href='/pipelines/runs/{run['id']}/']"))
    expect(row.locator("[data-count=failed]")).to_contain_text("1 failed")
    expect(row.locator("[data-field=duration]")).to_contain_text(re.compile(r"\d"))
    expect(row.locator("[data-field=ended]")).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d"))
    screenshot(page, "run-list-failed", narrow=False)

    # The controller's Results > Plots: the pipeline plot and its table fit their cards
    controller = run["controller"]
    page.goto(f"{cluster.server.url}/tasks/{controller}/plots/")
    plots = page.locator(".chart .plot[data-figure]")
    expect(plots).to_have_count(2)
    for i in range(2):
        card = plots.nth(i).locator("xpath=ancestor::section[1]")
        card_box = card.bounding_box()
        for svg in plots.nth(i).locator("svg.main-svg").all():
            box = svg.bounding_box()
            assert box["x"] >= card_box["x"] - 1
            assert box["x"] + box["width"] <= card_box["x"] + card_box["width"] + 1
    screenshot(page, "controller-plots", narrow=False)
    expect(page.locator(".chart .table text", has_text=re.compile("^step$"))).to_be_visible()
    # each header cell's text ends inside its column
    ends = page.evaluate(
        """() => [...document.querySelectorAll('.chart .table')].flatMap((table) => {
            const card = table.closest('section').getBoundingClientRect();
            return [...table.querySelectorAll('text')].map((t) => {
                const r = t.getBoundingClientRect();
                return [r.left >= card.left - 1, r.right <= card.right + 1, t.textContent];
            });
        })"""
    )
    assert ends and all(a and b for a, b, _ in ends), [e for e in ends if not (e[0] and e[1])]
    flow = page.locator(".chart .plot", has=page.locator(".scatterlayer .point"))
    point_box = flow.locator(".scatterlayer .point").first.bounding_box()
    centre = (point_box["x"] + point_box["width"] / 2, point_box["y"] + point_box["height"] / 2)
    page.mouse.move(*centre)
    hover = flow.locator(".hoverlayer .hovertext").first
    expect(hover).to_be_visible()
    card = flow.locator("xpath=ancestor::section[1]").bounding_box()
    hover_box = hover.bounding_box()
    assert hover_box["x"] >= card["x"] - 1
    assert hover_box["x"] + hover_box["width"] <= card["x"] + card["width"] + 1
    screenshot(page, "controller-plots", narrow=False)
    context.close()


def test_a_two_hundred_step_run_page_draws_boxes_that_never_overlap(run_cluster, browser):
    cluster = run_cluster
    out = cluster.server.manage(
        "shell",
        "-c",
        "import json; from tests.browser.seed import wide_run; "
        "print('WIDE ' + json.dumps(wide_run(200)))",
    )
    run_id = json.loads(re.search(r"WIDE (.*)", out).group(1))["run"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(page, cluster.server.url, "admin", cluster.server.password)
    page.goto(f"{cluster.server.url}/pipelines/runs/{run_id}/")
    expect(page.locator("#pipeline-dag .main-svg").first).to_be_visible()
    shapes = _boxes(page)
    assert len(shapes) == 200
    shapes.sort(key=lambda s: (s["x0"], s["y0"]))
    for i, a in enumerate(shapes):
        for b in shapes[i + 1 :]:
            if b["x0"] >= a["x1"]:
                break
            assert b["y0"] >= a["y1"] or b["y1"] <= a["y0"], (a["name"], b["name"])
    # and on screen: each box is wide enough for its label, with room around it
    rects = sorted(box["px"] for box in shapes)
    widths = sorted(r[2] - r[0] for r in rects)
    assert widths[0] >= 100, widths[:5]
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            if b[0] >= a[2] + 4:
                break
            assert b[1] >= a[3] + 4 or b[3] <= a[1] - 4, (a, b)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".run-workbench").screenshot(path=str(SCREENSHOTS / "run-page-200-steps.png"))
    context.close()
