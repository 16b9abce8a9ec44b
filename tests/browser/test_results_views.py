"""A task's results as a ClearML user looks at them: every Logger kind reported by a real
SDK process, matplotlib figures (converted, or pictures at full card width), single values,
media and models, in Chromium against a real server."""

import re

import pytest

from tests.support import REPO, run_script

from .conftest import screenshot

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is missing: pip install -r requirements-dev.txt"
)
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
SCRIPTS = REPO / "tests" / "e2e" / "scripts"
FIGURES = """
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pipelines import Task
from tests.browser import mpl_gallery

task = Task.init(project_name="e2e", task_name="figures")
mpl_gallery.iris_types()
plt.show()
plt.close("all")
mpl_gallery.surface_3d()
plt.title("surface")
plt.show()
print("TASK_ID", task.id, file=sys.stderr, flush=True)
"""


def _run(server, script, tmp_path=None) -> str:
    if isinstance(script, str):
        path = tmp_path / "figures.py"
        path.write_text(script)
        script = path
    result = run_script(script, server.sdk_env(MPLBACKEND="Agg"), timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return re.search(r"TASK_ID ([0-9a-f]{32})", result.stderr).group(1)


@pytest.fixture(scope="module")
def reported(dashboard_server, tmp_path_factory):
    return {
        "every": _run(dashboard_server, SCRIPTS / "report_every_kind.py"),
        "figures": _run(dashboard_server, FIGURES, tmp_path_factory.mktemp("figures")),
    }


def test_matplotlib_figures_show_converted_or_as_a_picture_the_cards_full_width(
    page, dashboard_server, reported
):
    page.goto(f"{dashboard_server.url}/tasks/{reported['figures']}/plots/")
    iris = page.locator(".chart[data-title='Iris Types'] .js-plotly-plot")
    expect(iris).to_be_visible()
    # the seed's scatter: points in their class colours, not black
    fills = page.evaluate(
        """() => [...document.querySelectorAll(
            ".chart[data-title='Iris Types'] .scatterlayer path.point"
        )].map(p => p.style.fill)"""
    )
    assert len(fills) >= 100 and len(set(fills)) == 3, set(fills)
    picture = page.locator(".chart[data-title='surface'] img.plot-image")
    expect(picture).to_be_visible()
    sizes = picture.evaluate(
        """img => {
            const card = img.closest('.chart');
            const style = getComputedStyle(card);
            const inner = card.clientWidth - parseFloat(style.paddingLeft)
                - parseFloat(style.paddingRight);
            return {shown: img.getBoundingClientRect().width, card: inner,
                    natural: img.naturalWidth};
        }"""
    )
    assert abs(sizes["shown"] - sizes["card"]) <= 1 and sizes["natural"] == 640, sizes
    screenshot(page, "results-matplotlib")


def test_every_logger_kind_shows_on_the_results_tabs(page, dashboard_server, reported):
    url, task = dashboard_server.url, reported["every"]
    page.goto(f"{url}/tasks/{task}/plots/")
    expect(page.locator(".chart .js-plotly-plot")).to_have_count(13)
    for title in ("hist", "scatter3d", "confusion", "surface", "lines", "table", "shown"):
        expect(page.locator(f".chart[data-title='{title}'] .js-plotly-plot").first).to_be_visible()
    screenshot(page, "results-every-kind-plots")

    page.goto(f"{url}/tasks/{task}/scalars/")
    rows = page.locator("#single-values tr[data-single]")
    expect(rows).to_have_count(2)
    expect(page.locator("#single-values tr[data-single=accuracy]")).to_contain_text("0.93")
    expect(page.locator(".chart[data-title=loss] .js-plotly-plot")).to_be_visible()
    # no "Summary" scalar chart at iteration -2,147,483,648
    expect(page.locator(".chart[data-title=Summary]")).to_have_count(0)
    screenshot(page, "results-single-values")

    page.goto(f"{url}/tasks/{task}/debug-samples/")
    expect(page.locator(".sample img").first).to_be_visible()
    expect(page.locator(".sample audio")).to_have_count(1)
    expect(page.locator(".sample iframe[sandbox=allow-scripts]")).to_have_count(1)
    expect(page.locator(".sample video")).to_have_attribute("src", "http://127.0.0.1:9/clip.mp4")
    html = page.frame_locator(".sample iframe").locator("h1")
    expect(html).to_have_text("hello")
    screenshot(page, "results-media")

    page.goto(f"{url}/tasks/{task}/models/")
    expect(page.locator("#output-models tr[data-model]")).to_have_count(2)
    expect(page.locator("#output-models tr[data-model=model]")).to_contain_text("ScikitLearn")
    expect(page.locator("#input-models tr[data-model='warm start']")).to_contain_text("explicit")
    screenshot(page, "task-models")

    page.goto(f"{url}/models/")
    expect(page.locator("#models tbody tr")).to_have_count(2)
    download = page.locator("#models tr", has_text="explicit").locator("a:has-text('Download')")
    response = page.request.get(download.get_attribute("href"))
    assert response.status == 200 and response.body() == b"\x00\x01" * 1000
    screenshot(page, "models")
