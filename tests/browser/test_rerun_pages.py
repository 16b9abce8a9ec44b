"""The "Rerun from a step" page and the run diff in Chromium against a real server: reached
from the run page's links, a step picked, its parameter edited, the plan shown by Dry-run,
the run started by Start (a double click starts one), then compared with the run before."""

import json
import re

import pytest

from tests.browser.conftest import screenshot


@pytest.fixture(scope="module")
def ended_run(dashboard_server):
    out = dashboard_server.manage(
        "shell", "-c", "from tests.browser.rerun_seed import main; main()"
    )
    seeded = json.loads(re.search(r"RERUN_SEED (.*)", out).group(1))
    assert seeded["status"] == "completed", seeded
    return seeded["run"]


def test_rerun_from_a_step_with_an_edit_then_the_diff(page, dashboard_server, ended_run):
    base = dashboard_server.url
    page.goto(f"{base}/pipelines/runs/{ended_run}/")
    page.click("#rerun-from-link")
    page.wait_for_url(re.compile(r".*/rerun-from/$"))
    page.select_option("#step-select", "stage_process")
    page.click("#pick-step button[type=submit]")
    page.wait_for_selector("#rerun-form")
    steps = page.locator(".rerun-step").evaluate_all("els => els.map(e => e.dataset.step)")
    assert steps == ["stage_process", "stage_train"]
    field = page.locator('input[name="edit|stage_process|General/test_size"]')
    assert field.input_value() == "0.25"
    field.fill("0.3")
    page.click("#dry-run")
    page.wait_for_selector("#rerun-plan")
    outcomes = page.locator("#rerun-plan tr[data-step]").evaluate_all(
        "rows => rows.map(r => [r.dataset.step, r.dataset.outcome])"
    )
    assert outcomes == [["stage_data", "reused"], ["stage_process", "ran"], ["stage_train", "ran"]]
    assert "changed from 0.25 to 0.3" in page.inner_text("#rerun-plan")
    assert page.locator('input[name="edit|stage_process|General/test_size"]').input_value() == "0.3"
    screenshot(page, "rerun-from-step-plan")

    page.dblclick("#start-rerun")
    page.wait_for_url(re.compile(r".*/pipelines/runs/\w+/$"))
    new_run = re.search(r"/runs/(\w+)/$", page.url).group(1)
    assert new_run != ended_run
    assert page.locator("#rerun-of-link").get_attribute("href").endswith(f"/{ended_run}/")
    runs = page.request.get(f"{base}/api/v1/pipelines/?page_size=100").json()["results"]
    assert [r["id"] for r in runs if r["rerun_of"] == ended_run] == [new_run]
    # this server has no server worker: advance the new run as it would, to launch its step
    advanced = dashboard_server.api().post(f"{base}/api/v1/pipelines/{new_run}/advance/")
    nodes = {n["name"]: n for n in advanced.json()["nodes"]}
    assert nodes["stage_data"]["status"] == "cached" and nodes["stage_process"]["task"]

    page.click("#compare-previous-link")
    page.wait_for_selector("#diff-runs")
    assert page.locator('.diff-step[data-step="stage_data"]').get_attribute("data-same") == "1"
    assert page.locator('.diff-step[data-step="stage_process"]').get_attribute("data-same") == "0"
    changed = page.locator('.diff-step[data-step="stage_process"] tr.differs[data-param]')
    assert changed.evaluate_all("rows => rows.map(r => r.dataset.param)") == ["General/test_size"]
    row = page.locator('.diff-step[data-step="stage_process"] tr[data-param="General/test_size"]')
    assert re.sub(r"\s+", " ", row.inner_text()).endswith("0.25 0.3")
    script = page.inner_text('.diff-step[data-step="stage_process"] .script-diff')
    assert "-split()" in script and "+split(stratify=True)" in script
    screenshot(page, "run-diff")
