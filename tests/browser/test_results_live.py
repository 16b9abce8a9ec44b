"""Results you can trust and watch, in headless Chromium against real server processes:
live charts of a step running on a real worker, scalar chart controls, comparing tasks,
the console's tools, and the small things of the task page.

Every wait is Playwright's bounded auto-wait (TIMEOUT_MS); nothing sleeps for a fixed time.
"""

import io
import math
import re
from pathlib import Path

import pytest

from tests.support import start_cluster, wait_until

from .conftest import SCREENSHOTS, TIMEOUT_MS, WIDE, login, screenshot

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is missing: pip install -r requirements-dev.txt"
)
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SCRIPTS = Path(__file__).parent / "scripts"
MEDIUM = {"width": 800, "height": 900}
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a5f6a5b50000000049454e44ae426082"
)


def _task(server, project: str, name: str, **fields) -> dict:
    response = server.api().post(
        f"{server.url}/api/v1/tasks/", json={"project_name": project, "name": name, **fields}
    )
    assert response.status_code == 201, response.text
    return response.json()


def _events(server, task_id: str, events: list) -> None:
    response = server.api().post(
        f"{server.url}/api/v1/tasks/{task_id}/events/", json={"events": events}
    )
    assert response.status_code == 200, response.text


def _scalars(title, series, points):
    return [
        {"type": "scalar", "title": title, "series": series, "iteration": i, "value": v}
        for i, v in points
    ]


def _sample(server, task_id: str, title: str, iteration: int) -> None:
    response = server.api().post(
        f"{server.url}/api/v1/tasks/{task_id}/samples/",
        data={"title": title, "series": "s", "iteration": str(iteration)},
        files={"file": ("a.png", io.BytesIO(PNG_1PX), "image/png")},
    )
    assert response.status_code == 201, response.text


def _trace_lengths(page, selector=".scalar-chart .plot") -> list[int]:
    return page.evaluate(
        """(selector) => [...document.querySelectorAll(selector)].flatMap(
            plot => (plot.data || []).map(trace => trace.x.length))""",
        selector,
    )


def _no_reload_marker(page) -> None:
    page.evaluate("() => { window.__sameDocument = true; }")


def _same_document(page) -> bool:
    return page.evaluate("() => window.__sameDocument === true")


# ---------------------------------------------------------------- a running step, live


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, browser):
    running = start_cluster(tmp_path_factory.mktemp("live-cluster"))
    yield running
    running.stop()


def test_a_step_running_on_a_real_worker_grows_its_charts_plots_samples_and_console_live(
    browser, cluster, tmp_path
):
    queue = cluster.queue("live")
    cluster.start_worker(queue)
    base = cluster.register(SCRIPTS / "live_step.py")
    task_id = cluster.launch(base, queue, {"handshake_dir": tmp_path, "rounds": 2, "points": 40})
    context = browser.new_context(viewport=WIDE)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        first = context.new_page()
        login(first, cluster.server.url, "admin", cluster.server.password)
        cluster.wait_for_status(task_id, "in_progress")
        # the step reports its first round, then waits for go-0
        wait_until((tmp_path / "reported-0").exists, timeout=60, message="the step's first round")
        url = f"{cluster.server.url}/tasks/{task_id}"
        pages = {}
        for tab in ("scalars", "plots", "debug-samples", "console"):
            page = first if tab == "scalars" else context.new_page()
            page.goto(f"{url}/{tab}/")
            pages[tab] = page
        scalars, plots, samples, console = (
            pages[t] for t in ("scalars", "plots", "debug-samples", "console")
        )
        scalars.wait_for_function(
            "() => document.querySelector('[data-scalars][data-drawn]')", timeout=TIMEOUT_MS
        )
        assert sorted(_trace_lengths(scalars)) == [40, 40]
        expect(plots.locator("#plots section.chart")).to_have_count(1)
        expect(plots.locator("#plots [data-caption]")).to_have_text("")
        expect(samples.locator("#samples figure.sample")).to_have_count(1)
        expect(console.locator("#console")).to_contain_text("round 0 done")
        for page in pages.values():
            _no_reload_marker(page)
        screenshot(scalars, "live-scalars-round-0", narrow=False)

        (tmp_path / "go-0").touch()  # round 1: 40 more points, a new plot and image
        scalars.wait_for_function(
            """() => [...document.querySelectorAll('.scalar-chart .plot')]
                .flatMap(p => p.data || []).every(t => t.x.length === 80)""",
            timeout=TIMEOUT_MS,
        )
        expect(plots.locator("#plots [data-caption]")).to_have_text("iteration 1")
        expect(samples.locator("#samples figure.sample")).to_have_count(2)
        expect(samples.locator("#samples figure.sample").first).to_contain_text("iteration 1")
        expect(console.locator("#console")).to_contain_text("round 1 done")
        for name, page in pages.items():
            assert _same_document(page), f"the {name} tab was reloaded"
        assert sorted(_trace_lengths(scalars)) == [80, 80]
        assert plots.evaluate("() => document.querySelector('#plots .plot').data[0].y.length") == 2
        screenshot(scalars, "live-scalars-round-1", narrow=False)
        screenshot(plots, "live-plots-round-1", narrow=False)
        screenshot(samples, "live-samples-round-1", narrow=False)
        screenshot(console, "live-console-round-1", narrow=False)

        (tmp_path / "go-1").touch()
        cluster.wait_for_status(task_id, "completed")
        expect(console.locator("#task-status")).to_have_text("Completed")
    finally:
        context.close()


# ---------------------------------------------------------------- scalar chart controls


def test_scalar_charts_smooth_switch_axes_use_log_scale_hide_series_and_show_single_values(
    page, dashboard_server
):
    server = dashboard_server
    task = _task(server, "charts", "controls")
    noisy = [(i, 1.0 + (0.5 if i % 2 else -0.5)) for i in range(200)]
    _events(
        server,
        task["id"],
        _scalars("loss", "train", noisy)
        + _scalars("loss", "validation", [(i, 2.0) for i in range(200)])
        + _scalars("lr", "lr", [(i, 10.0 ** -(i / 50)) for i in range(200)])
        + _scalars("Summary", "accuracy", [(-(2**31), 0.93)])
        + _scalars("Summary", "f1", [(-(2**31), 0.81)]),
    )
    page.goto(f"{server.url}/tasks/{task['id']}/scalars/")
    page.wait_for_function("() => document.querySelector('[data-scalars][data-drawn]')")
    charts = page.locator(".scalar-chart")
    expect(charts).to_have_count(2)  # one per title; single values are not a chart
    assert [c.get_attribute("data-title") for c in charts.all()] == ["loss", "lr"]
    summary = page.locator("#single-values")
    expect(summary.locator("tr[data-single=accuracy]")).to_contain_text("0.93")
    expect(summary.locator("tr[data-single=f1]")).to_contain_text("0.81")

    def loss_trace(name):
        return page.evaluate(
            """(name) => document.querySelector('.scalar-chart[data-title=loss] .plot')
                .data.filter(t => t.name === name && t.showlegend !== false)[0]""",
            name,
        )

    raw = loss_trace("train")["y"]
    assert max(raw) - min(raw) == 1.0
    page.locator("[data-smoothing]").fill("0.9")
    expect(page.locator("[data-smoothing-value]")).to_have_text("0.90")
    smoothed = loss_trace("train")["y"]
    assert max(smoothed[100:]) - min(smoothed[100:]) < 0.2  # the zigzag is smoothed away
    assert math.isclose(smoothed[0], raw[0])  # debiased: the first point is the first value
    faint = page.evaluate(
        """() => document.querySelector('.scalar-chart[data-title=loss] .plot')
            .data.filter(t => t.showlegend === false).length"""
    )
    assert faint == 2  # the raw lines stay behind the smoothed ones
    screenshot(page, "scalars-smoothed", narrow=False)
    page.locator("[data-smoothing]").fill("0")

    page.select_option("[data-xaxis]", "wall")
    layout = page.evaluate(
        "() => document.querySelector('.scalar-chart[data-title=loss] .plot').layout.xaxis"
    )
    assert layout["type"] == "date"
    assert loss_trace("train")["x"][0] > 1.5e12  # epoch milliseconds
    page.select_option("[data-xaxis]", "relative")
    relative = loss_trace("train")["x"]
    assert 0 <= relative[0] < 600 and relative == sorted(relative)
    page.select_option("[data-xaxis]", "iteration")
    assert loss_trace("train")["x"][:3] == [0, 1, 2]

    page.check("[data-log]")
    assert (
        page.evaluate(
            "() => document.querySelector('.scalar-chart[data-title=lr] .plot').layout.yaxis.type"
        )
        == "log"
    )
    screenshot(page, "scalars-log", narrow=False)
    page.uncheck("[data-log]")

    # a series hidden from the picker is hidden in every chart; the legend hides one chart's
    page.click(".series-picker summary")
    page.uncheck(".series-picker input[data-series=validation]")
    assert loss_trace("validation")["visible"] == "legendonly"
    assert loss_trace("train")["visible"] is True
    page.check(".series-picker input[data-series=validation]")
    assert loss_trace("validation")["visible"] is True
    page.click(".series-picker summary")
    legend = page.locator(".scalar-chart[data-title=loss] .legend .traces", has_text="train")
    legend.locator(".legendtoggle").click()
    page.wait_for_function(
        """() => document.querySelector('.scalar-chart[data-title=loss] .plot')
            .data.find(t => t.name === 'train').visible === 'legendonly'"""
    )
    page.fill("[data-filter]", "lr")
    expect(page.locator(".scalar-chart[data-title=loss]")).to_be_hidden()
    expect(page.locator(".scalar-chart[data-title=lr]")).to_be_visible()
    screenshot(page, "scalars-filtered", narrow=False)


# ---------------------------------------------------------------- comparing tasks


def test_tasks_ticked_in_a_table_compare_parameters_scalars_plots_and_samples(
    page, dashboard_server
):
    server = dashboard_server
    ids = []
    for index, lr in enumerate(("0.1", "0.01")):
        task = _task(
            server,
            "comparing",
            f"run {index}",
            hyperparameters={"General": {"lr": lr, "epochs": "10"}},
        )
        ids.append(task["id"])
        _events(
            server,
            task["id"],
            _scalars("loss", "train", [(i, (index + 1) / (i + 1)) for i in range(30)])
            + [
                {
                    "type": "plot",
                    "title": "confusion",
                    "series": "test",
                    "iteration": 0,
                    "figure": {"data": [{"type": "heatmap", "z": [[index, 1], [1, index]]}]},
                }
            ],
        )
        _sample(server, task["id"], "inputs", 0)
    project = server.api().get(f"{server.url}/api/v1/tasks/{ids[0]}/").json()["project"]
    page.goto(f"{server.url}/projects/{project}/")
    expect(page.locator("#compare-bar")).to_be_hidden()
    page.check(f"input[data-select-task='{ids[0]}']")
    expect(page.locator("#compare-go")).to_be_disabled()
    page.check(f"input[data-select-task='{ids[1]}']")
    expect(page.locator("#compare-count")).to_have_text("2 tasks selected")
    screenshot(page, "compare-select", narrow=False)
    page.click("#compare-go")
    page.wait_for_url(re.compile(r".*/compare/\?ids=.*"))

    table = page.locator("#compare-parameters")
    expect(table.locator("tr[data-param='General/lr']")).to_have_class(re.compile("differs"))
    expect(table.locator("tr[data-param='General/epochs']")).not_to_have_class(
        re.compile("differs")
    )
    expect(table.locator("tr[data-param='General/lr'] td").nth(1)).to_have_text("0.1")
    expect(table.locator("tr[data-param='General/lr'] td").nth(2)).to_have_text("0.01")
    screenshot(page, "compare-parameters")
    page.check("#only-differences")
    expect(table.locator("tr[data-param='General/epochs']")).to_be_hidden()
    expect(table.locator("tr[data-param='General/lr']")).to_be_visible()

    page.click("a[data-view=scalars]")
    page.wait_for_function("() => document.querySelector('[data-scalars][data-drawn]')")
    names = page.evaluate(
        "() => document.querySelector('.scalar-chart[data-title=loss] .plot').data.map(t => t.name)"
    )
    assert names == ["train · run 0", "train · run 1"]  # overlaid in one chart
    screenshot(page, "compare-scalars", narrow=False)

    page.click("a[data-view=plots]")
    group = page.locator(".compare-group[data-title=confusion]")
    expect(group.locator(".compare-cell .js-plotly-plot")).to_have_count(2)  # side by side
    screenshot(page, "compare-plots", narrow=False)

    page.click("a[data-view=samples]")
    images = page.locator(".compare-group[data-title=inputs] img")
    expect(images).to_have_count(2)
    for image in images.all():
        assert image.evaluate("img => img.complete && img.naturalWidth === 1")
    screenshot(page, "compare-samples", narrow=False)

    # hidden tasks are left out like missing ones, and nonsense is a 400
    stranger = "0" * 32
    response = page.goto(f"{server.url}/compare/?ids={ids[0]},{stranger}")
    assert response.status == 200
    expect(page.locator("#compared-tasks thead th[data-task-id]")).to_have_count(1)
    assert page.goto(f"{server.url}/compare/?ids=nope").status == 400
    assert page.goto(f"{server.url}/compare/?ids={stranger}").status == 404


# ---------------------------------------------------------------- the console's tools


def test_the_console_searches_all_lines_downloads_them_and_loads_earlier_ones(
    page, dashboard_server
):
    server = dashboard_server
    task = _task(server, "console", "long log", start_running=True)
    lines = [{"text": f"step {i}"} for i in range(3_000)]
    lines[10] = {"text": "Warning: disk almost full", "stream": "stderr"}
    response = server.api().post(
        f"{server.url}/api/v1/tasks/{task['id']}/console/", json={"lines": lines}
    )
    assert response.status_code == 200, response.text
    page.goto(f"{server.url}/tasks/{task['id']}/console/")
    box = page.locator("#console")
    expect(box).to_contain_text("step 2999")
    expect(box.locator(".line")).to_have_count(2_000)
    expect(box).not_to_contain_text("disk almost full")

    page.fill("#console-search input[name=q]", "DISK almost")
    page.click("#console-search button")
    matches = page.locator("#console-matches")
    expect(matches).to_contain_text("1 matching line")
    expect(matches.locator("mark")).to_have_text("disk almost")
    expect(matches).to_contain_text("#11")

    page.click("#console-earlier")
    expect(box.locator(".line")).to_have_count(3_000)
    expect(box.locator(".line").first).to_have_text("step 0\n")
    expect(page.locator("#console-earlier")).to_be_hidden()
    screenshot(page, "console-tools", narrow=False)

    with page.expect_download() as download:
        page.click("#console-download")
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0] == "step 0" and len(text.splitlines()) == 3_000
    assert download.value.suggested_filename.endswith("-console.txt")


# ---------------------------------------------------------------- the small things


def test_the_small_things_of_the_task_page(page, dashboard_server):
    server = dashboard_server
    url = server.url
    task = _task(server, "small", "annotated", start_running=True)
    response = server.api().post(f"{url}/api/v1/tasks/{task['id']}/completed/", json={})
    assert response.status_code == 200, response.text

    # run times of seconds, and "ago" in the singular
    page.goto(f"{url}/tasks/{task['id']}/info/")
    expect(page.locator("dd", has_text=re.compile(r"^\d+ s$"))).to_have_count(1)
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", re.compile(r"favicon"))
    assert page.evaluate("() => window.pipelinesDashboard.ago(new Date(Date.now() - 61e3))") == (
        "1 minute ago"
    )

    # tags and a description, edited from the page; the button keeps the tab
    page.click("#task-actions button:has-text('Tags & description')")
    page.fill("#dlg-details input[name=tags]", "baseline, , best ,baseline")
    page.fill("#dlg-details textarea[name=comment]", "The run we compare against.")
    page.click("#dlg-details button[type=submit]")
    expect(page).to_have_url(re.compile(r".*/info/$"))
    expect(page.locator("#task-tags .user-tag")).to_have_text(["baseline", "best"])
    expect(page.locator(".tab-body")).to_contain_text("The run we compare against.")
    saved = server.api().get(f"{url}/api/v1/tasks/{task['id']}/").json()
    assert saved["tags"] == ["baseline", "best"]

    # publish, from the Info tab, back on the Info tab
    page.click("#task-actions button:has-text('Publish')")
    page.click("#dlg-publish button[type=submit]")
    expect(page).to_have_url(re.compile(r".*/info/$"))
    expect(page.locator("#task-status")).to_have_text("Published")
    expect(page.locator("#task-actions button:has-text('Publish')")).to_have_count(0)
    screenshot(page, "task-published")

    # a clone opens on the tab its button was pressed on
    page.click("a[data-tab=configuration]")
    page.click("#task-actions button:has-text('Clone')")
    page.click("#dlg-clone button[type=submit]")
    expect(page).to_have_url(re.compile(r".*/tasks/[0-9a-f]{32}/configuration/$"))

    # the buttons refuse a form without the CSRF token
    for action in ("publish", "details"):
        response = page.request.post(f"{url}/tasks/{task['id']}/{action}/", form={"tags": "x"})
        assert response.status == 403, action
    assert server.api().get(f"{url}/api/v1/tasks/{task['id']}/").json()["tags"] == [
        "baseline",
        "best",
    ]

    # JSON 404s under /api/, the HTML page elsewhere
    response = page.request.get(f"{url}/api/v1/no-such-thing/")
    assert response.status == 404 and response.json()["error"] == "not_found"
    response = page.request.get(f"{url}/no-such-page/")
    assert response.status == 404 and "text/html" in response.headers["content-type"]

    # the admin's plurals
    page.goto(f"{url}/admin/")
    expect(page.locator("#content-main")).to_contain_text("Queue entries")
    expect(page.locator("#content-main")).not_to_contain_text("entrys")


def test_swagger_ui_comes_from_our_static_files_and_loads_nothing_from_outside(
    page, dashboard_server
):
    outside = []

    def only_ours(route):
        if route.request.url.startswith(dashboard_server.url):
            return route.continue_()
        outside.append(route.request.url)
        return route.abort()

    page.route("**/*", only_ours)
    page.goto(f"{dashboard_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("pipelines API")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    assert outside == []
    screenshot(page, "api-docs", narrow=False)
    assert page.request.get(f"{dashboard_server.url}/favicon.ico").status == 200


def test_pages_fit_800_pixels(page, dashboard_server):
    url, ids = dashboard_server.url, dashboard_server.extra
    page.set_viewport_size(MEDIUM)
    for name, path in {
        "project-tasks": f"/projects/{ids['project']}/",
        "task-scalars": f"/tasks/{ids['task']}/scalars/",
        "task-console": f"/tasks/{ids['task']}/console/",
        "task-configuration": f"/tasks/{ids['task']}/configuration/",
        "pipeline-run": f"/pipelines/runs/{ids['run']}/",
        "queues": "/queues/",
        "compare": f"/compare/?ids={ids['task']},{ids['data_task']}",
    }.items():
        assert page.goto(url + path).status == 200, path
        if name == "task-scalars":
            page.wait_for_function("() => document.querySelector('[data-scalars][data-drawn]')")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= MEDIUM["width"] + 1, (path, width)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-800.png"), full_page=True)
    page.set_viewport_size(WIDE)
