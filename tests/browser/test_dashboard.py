"""The dashboard in headless Chromium against a real server process.

Every wait is Playwright's bounded auto-wait (TIMEOUT_MS); nothing sleeps for a fixed time.
"""

import re

import pytest

from .conftest import NARROW, TIMEOUT_MS, WIDE, login, screenshot

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is missing: pip install -r requirements-dev.txt"
)
expect = sync_api.expect
expect.set_options(timeout=TIMEOUT_MS)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

TASK_URL = re.compile(r".*/tasks/([0-9a-f]{32})/$")
CHART_PAGES = {"task-scalars", "task-plots", "controller-pipeline-tab", "pipeline-run"}


def _api_task(server, task_id: str) -> dict:
    response = server.api().get(f"{server.url}/api/v1/tasks/{task_id}/")
    assert response.status_code == 200, response.text
    return response.json()


def _new_task(server, project: str, name: str, **fields) -> dict:
    response = server.api().post(
        f"{server.url}/api/v1/tasks/", json={"project_name": project, "name": name, **fields}
    )
    assert response.status_code == 201, response.text
    return response.json()


def _resize_charts(page) -> None:
    page.evaluate(
        """() => window.Plotly ? Promise.all(
            [...document.querySelectorAll('.js-plotly-plot')].map(p => Plotly.Plots.resize(p))
        ) : null"""
    )


def test_login_refuses_a_wrong_password_shows_projects_and_logs_out(context, dashboard_server):
    page = context.new_page()
    page.goto(f"{dashboard_server.url}/tasks/{dashboard_server.extra['task']}/")
    expect(page).to_have_url(re.compile(r".*/login/\?next=.*"))
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    expect(page.locator(".login-card .error")).to_be_visible()
    screenshot(page, "login")

    login(page, dashboard_server.url, "admin", dashboard_server.password)
    row = page.locator("#projects tbody tr", has_text="examples")
    expect(row).to_be_visible()
    expect(row.locator("td").nth(1)).not_to_have_text("0")
    screenshot(page, "projects")

    page.click(".user button:has-text('Log out')")
    expect(page).to_have_url(re.compile(r".*/login/$"))
    page.goto(f"{dashboard_server.url}/projects/")
    expect(page).to_have_url(re.compile(r".*/login/\?next=/projects/$"))


def test_every_page_renders_and_is_photographed_wide_and_narrow(page, dashboard_server):
    url, ids = dashboard_server.url, dashboard_server.extra
    pages = {
        "project-tasks": f"/projects/{ids['project']}/",
        "task-execution": f"/tasks/{ids['task']}/",
        "task-configuration": f"/tasks/{ids['task']}/configuration/",
        "task-artifacts": f"/tasks/{ids['task']}/artifacts/",
        "task-info": f"/tasks/{ids['task']}/info/",
        "task-console": f"/tasks/{ids['task']}/console/",
        "task-scalars": f"/tasks/{ids['task']}/scalars/",
        "task-plots": f"/tasks/{ids['task']}/plots/",
        "task-debug-samples": f"/tasks/{ids['task']}/debug-samples/",
        "controller-pipeline-tab": f"/tasks/{ids['controller']}/pipeline/",
        "pipelines": "/pipelines/",
        "pipeline-run": f"/pipelines/runs/{ids['run']}/",
        "queues": "/queues/",
        "workers": "/workers/",
        "keys": "/keys/",
    }
    for name, path in pages.items():
        response = page.goto(url + path)
        assert response.status == 200, (path, response.status)
        expect(page.locator("main.content h1").first).to_be_visible()
        if name in CHART_PAGES:
            expect(page.locator(".js-plotly-plot").first).to_be_visible()
            _resize_charts(page)
        if name == "task-console":
            expect(page.locator("#console")).to_contain_text("epoch 4")
        screenshot(page, name)

    # At 400 px the navigation is a strip and nothing is wider than the screen.
    page.set_viewport_size(NARROW)
    page.goto(f"{url}/projects/{ids['project']}/")
    expect(page.locator(".sidenav a[data-menu=projects]")).to_be_visible()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= NARROW["width"] + 1, width
    page.set_viewport_size(WIDE)


def test_task_table_filters_sorts_searches_and_shows_types(page, dashboard_server):
    url, ids = dashboard_server.url, dashboard_server.extra
    page.goto(f"{url}/projects/{ids['project']}/")
    rows = page.locator("#tasks tbody tr[data-task-id]")
    expect(rows).to_have_count(4)
    page.select_option("select[name=status]", "completed")  # submits on change
    expect(page).to_have_url(re.compile(r".*status=completed.*"))
    expect(rows).to_have_count(2)
    expect(page.locator("#tasks [data-cell=status]").first).to_have_text("Completed")
    page.fill("input[name=q]", "stage")
    page.press("input[name=q]", "Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("stage_data")
    page.goto(f"{url}/projects/{ids['project']}/?sort=name")
    names = page.locator("#tasks tbody tr td:nth-child(3) a").all_inner_texts()
    assert names == sorted(names)
    page.click("#tasks th a:has-text('Name')")
    names = page.locator("#tasks tbody tr td:nth-child(3) a").all_inner_texts()
    assert names == sorted(names, reverse=True)


def test_clone_edit_a_parameter_enqueue_and_abort(page, dashboard_server):
    url, server = dashboard_server.url, dashboard_server
    page.goto(f"{url}/tasks/{server.extra['task']}/")
    # Clone, into another project under a new name
    page.click("#task-actions button:has-text('Clone')")
    dialog = page.locator("#dlg-clone")
    dialog.locator("input[name=name]").fill("train model v2")
    dialog.locator("input[name=project]").fill("experiments")
    dialog.locator("button[type=submit]").click()
    page.wait_for_url(TASK_URL)
    clone_id = TASK_URL.match(page.url).group(1)
    assert clone_id != server.extra["task"]
    expect(page.locator("#task-status")).to_have_text("Draft")
    expect(page.locator("main h1")).to_have_text("train model v2")
    expect(page.locator("#task-actions button:has-text('Abort')")).to_be_disabled()

    # Edit a parameter of the draft
    page.click("a[data-tab=configuration]")
    page.fill("input[aria-label='General/lr']", "0.5")
    page.fill("input[aria-label='new parameter name']", "momentum")
    page.fill("input[aria-label='new parameter value']", "0.9")
    page.fill("input[aria-label='new parameter type']", "float")
    page.click("#hyperparameters-form button[type=submit]")
    expect(page.locator(".message-success")).to_contain_text("Parameters saved")
    expect(page.locator("input[aria-label='General/lr']")).to_have_value("0.5")
    screenshot(page, "task-configuration-draft")
    saved = _api_task(server, clone_id)
    assert saved["hyperparameters"]["General"]["lr"]["value"] == "0.5"
    assert saved["hyperparameters"]["General"]["momentum"] == {
        "value": "0.9",
        "type": "float",
        "description": "",
    }
    assert saved["project_name"] == "experiments"
    assert saved["parent"] == server.extra["task"]

    # Enqueue on a chosen queue: it stays queued, as no worker runs here
    page.click("#task-actions button:has-text('Enqueue')")
    page.locator("#dlg-enqueue select[name=queue]").select_option("default")
    page.locator("#dlg-enqueue button[type=submit]").click()
    expect(page.locator("#task-status")).to_have_text("Queued")
    expect(page.locator("#task-actions button:has-text('Enqueue')")).to_be_disabled()
    assert _api_task(server, clone_id)["status"] == "queued"
    page.goto(f"{url}/queues/")
    expect(page.locator(f"[data-queue=default] tr[data-task-id='{clone_id}']")).to_be_visible()

    # Abort, after confirming
    page.goto(f"{url}/tasks/{clone_id}/")
    page.click("#task-actions button:has-text('Abort')")
    expect(page.locator("#dlg-abort")).to_be_visible()
    page.locator("#dlg-abort button[type=submit]").click()
    expect(page.locator("#task-status")).to_have_text("Stopped")
    expect(page.locator("#task-actions button:has-text('Abort')")).to_be_disabled()
    expect(page.locator("#task-actions button:has-text('Reset')")).to_be_enabled()
    assert _api_task(server, clone_id)["status"] == "stopped"
    screenshot(page, "task-stopped", narrow=False)


def test_reset_archive_restore_and_delete(page, dashboard_server):
    url, server = dashboard_server.url, dashboard_server
    task = _new_task(server, "housekeeping", "to delete", start_running=True)
    server.api().post(f"{url}/api/v1/tasks/{task['id']}/abort/", json={"reason": "test"})
    page.goto(f"{url}/tasks/{task['id']}/")
    page.click("#task-actions button:has-text('Reset')")
    page.locator("#dlg-reset button[type=submit]").click()
    expect(page.locator("#task-status")).to_have_text("Draft")

    page.click("#task-actions button:has-text('Archive')")
    page.locator("#dlg-archive button[type=submit]").click()
    expect(page.locator(".task-title .tag")).to_have_text("archived")
    page.click("#task-actions button:has-text('Restore')")
    expect(page.locator(".task-title .tag")).to_have_count(0)

    page.click("#task-actions button:has-text('Delete')")
    page.locator("#dlg-delete button[type=submit]").click()
    expect(page.locator(".message-success")).to_contain_text("Deleted")
    expect(page.locator("main h1")).to_have_text("housekeeping")
    assert server.api().get(f"{url}/api/v1/tasks/{task['id']}/").status_code == 404


def test_a_failing_plugin_shows_its_own_error_box_and_the_example_plugin_its_tab(
    page, dashboard_server
):
    url, ids = dashboard_server.url, dashboard_server.extra
    page.goto(f"{url}/tasks/{ids['data_task']}/")
    # the failing badge became "!", and the failing menu item is simply left out
    expect(page.locator("a[data-tab=boom] .badge")).to_have_text("!")
    expect(page.locator(".sidenav a[data-menu=boom]")).to_have_count(0)
    expect(page.locator(".sidenav a[data-menu=api-docs]")).to_be_visible()

    for slug in ("boom", "boom-template"):
        response = page.goto(f"{url}/tasks/{ids['data_task']}/{slug}/")
        assert response.status == 200
        box = page.locator(".tab-body .plugin-error")
        expect(box).to_contain_text("tests.plugins.failing_plugin")
        expect(page.locator("#task-actions button:has-text('Clone')")).to_be_enabled()
        expect(page.locator("a[data-tab=execution]")).to_be_visible()
    screenshot(page, "plugin-error", narrow=False)

    # the third-party example plugin, installed from examples/dashboard_plugin
    page.click("a[data-tab=lineage]")
    expect(page.locator("#lineage")).to_contain_text("pipeline demo")
    screenshot(page, "plugin-lineage", narrow=False)


def test_pipeline_run_page_draws_the_dag_with_hover_and_a_step_panel(page, dashboard_server):
    url, ids = dashboard_server.url, dashboard_server.extra
    page.goto(f"{url}/pipelines/")
    run_row = page.locator(f"a[href='/pipelines/runs/{ids['run']}/']")
    expect(run_row).to_be_visible()
    expect(page.locator(".pipeline-group")).to_contain_text("1/3")
    run_row.click()

    dag = page.locator("#pipeline-dag")
    expect(dag.locator(".scatterlayer .point").first).to_be_visible()
    dag.scroll_into_view_if_needed()
    position = page.evaluate(
        """(name) => {
            const gd = document.getElementById('pipeline-dag');
            for (const trace of gd._fullData) {
                const i = (trace.text || []).indexOf(name);
                if (i < 0 || !String(trace.mode).includes('markers')) continue;
                const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
                const box = gd.getBoundingClientRect();
                return {x: box.left + xa._offset + xa.l2p(trace.x[i]),
                        y: box.top + ya._offset + ya.l2p(trace.y[i])};
            }
            return null;
        }""",
        "stage_process",
    )
    assert position, "no marker for stage_process"
    page.mouse.move(position["x"], position["y"])
    hover = page.locator("#pipeline-dag .hoverlayer .hovertext")
    expect(hover).to_contain_text("stage_process")
    expect(hover).to_contain_text("General/dataset_url")
    expect(hover).to_contain_text("http://127.0.0.1/files/abc/iris.pkl")
    screenshot(page, "pipeline-run-hover", narrow=False)

    # a click opens the step's panel beside the DAG; its task is one link away
    page.mouse.click(position["x"], position["y"])
    panel = page.locator("#step-panel")
    expect(panel.locator("h2")).to_have_text("stage_process")
    expect(panel.locator("[data-field=overrides]")).to_contain_text("iris.pkl")
    panel.locator(f"a[href='/tasks/{ids['process_task']}/']").click()
    page.wait_for_url(f"**/tasks/{ids['process_task']}/")
    expect(page.locator("main h1")).to_have_text("stage_process")

    # Abort the run from its page: the engine stops it and its queued step
    page.goto(f"{url}/pipelines/runs/{ids['run']}/")
    page.click(".actions button:has-text('Abort')")
    page.locator("#dlg-run-abort button[type=submit]").click()
    expect(page.locator("#run-status")).to_have_text("Stopped")
    expect(page.locator(".actions button:has-text('Abort')")).to_be_disabled()
    assert _api_task(dashboard_server, ids["process_task"])["status"] == "stopped"

    # Run it again: a new run of the same steps starts (this server has no engine worker,
    # so its first step waits for one)
    page.click(".actions button:has-text('Run again')")
    page.wait_for_url(re.compile(r".*/pipelines/runs/(?!" + ids["run"] + r")[0-9a-f]{32}/$"))
    expect(page.locator("#run-status")).to_have_text("Running")
    expect(page.locator(".messages, .message").first).to_contain_text("Started a new run")
    steps = page.locator("table").last
    expect(steps).to_contain_text("stage_data")
    expect(steps).to_contain_text(re.compile("Pending|Queued"))
    screenshot(page, "pipeline-run-again", narrow=False)


def test_a_post_without_the_csrf_token_is_refused(page, dashboard_server):
    url, task_id = dashboard_server.url, dashboard_server.extra["task"]
    page.goto(f"{url}/tasks/{task_id}/")
    # the session cookie goes along; only the token is missing
    response = page.request.post(f"{url}/tasks/{task_id}/archive/", form={"next": "/"})
    assert response.status == 403
    assert "security token" in response.text()
    response = page.request.post(f"{url}/keys/", form={"name": "forged"})
    assert response.status == 403
    assert _api_task(dashboard_server, task_id)["archived"] is False


def test_api_key_is_shown_once_works_and_can_be_revoked(page, dashboard_server):
    url = dashboard_server.url
    page.goto(f"{url}/keys/")
    page.fill("input[name=name]", "laptop")
    page.click("button:has-text('Create key')")
    secret = page.locator("#new-key-secret").inner_text().strip()
    assert re.fullmatch(r"pk_[0-9a-f]{12}_\S+", secret)
    screenshot(page, "keys-new", narrow=False)
    assert dashboard_server.api(secret).get(f"{url}/api/v1/me/").status_code == 200

    page.reload()
    expect(page.locator("#new-key")).to_have_count(0)
    prefix = secret.split("_")[1]
    page.click(f"tr[data-prefix='{prefix}'] button:has-text('Revoke')")
    page.click("#confirm-dialog button[value=ok]")
    expect(page.locator(f"tr[data-prefix='{prefix}'] .pill")).to_have_text("revoked")
    assert dashboard_server.api(secret).get(f"{url}/api/v1/me/").status_code == 401


def test_console_tails_new_lines_and_the_status_pill_follows(page, dashboard_server):
    url, server = dashboard_server.url, dashboard_server
    task = _new_task(server, "live", "tail me", start_running=True)
    page.goto(f"{url}/tasks/{task['id']}/console/")
    expect(page.locator("#console")).to_contain_text("No output yet")
    server.api().post(
        f"{url}/api/v1/tasks/{task['id']}/console/",
        json={"lines": [{"text": "hello from the step"}, {"text": "oops", "stream": "stderr"}]},
    )
    expect(page.locator("#console")).to_contain_text("hello from the step")
    expect(page.locator("#console .line-stderr")).to_have_text("oops\n")
    server.api().post(f"{url}/api/v1/tasks/{task['id']}/completed/", json={})
    expect(page.locator("#task-status")).to_have_text("Completed")


def test_queue_page_reorders_and_removes_pending_tasks(page, dashboard_server):
    url, server = dashboard_server.url, dashboard_server
    names = ["first", "second", "third"]
    ids = {}
    for name in names:
        task = _new_task(server, "queueing", name)
        response = server.api().post(
            f"{url}/api/v1/tasks/{task['id']}/enqueue/", json={"queue": "reorder"}
        )
        assert response.status_code == 200, response.text
        ids[name] = task["id"]
    page.goto(f"{url}/queues/")
    queue = page.locator("[data-queue=reorder]")

    def order():
        return [
            row.get_attribute("data-task-id") for row in queue.locator("tr[data-task-id]").all()
        ]

    assert order() == [ids["first"], ids["second"], ids["third"]]
    queue.locator(f"tr[data-task-id='{ids['first']}'] button[aria-label='Move down']").click()
    expect(queue.locator("tr[data-task-id]").first).to_have_attribute("data-task-id", ids["second"])
    assert order() == [ids["second"], ids["first"], ids["third"]]
    queue.locator(f"tr[data-task-id='{ids['third']}'] button[aria-label='Move up']").click()
    expect(queue.locator("tr[data-task-id]").nth(1)).to_have_attribute("data-task-id", ids["third"])
    queue.locator(f"tr[data-task-id='{ids['second']}'] button:has-text('Remove')").click()
    page.click("#confirm-dialog button[value=ok]")
    expect(queue.locator("tr[data-task-id]")).to_have_count(2)
    assert order() == [ids["third"], ids["first"]]
    assert _api_task(server, ids["second"])["status"] == "created"


def test_other_users_see_none_of_it(browser, dashboard_server):
    url, ids = dashboard_server.url, dashboard_server.extra
    dashboard_server.manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        "get_user_model().objects.create_user('viewer', password='viewer-password')",
    )
    context = browser.new_context(viewport=WIDE)
    try:
        page = context.new_page()
        login(page, url, "viewer", "viewer-password")
        expect(page.locator("#projects")).not_to_contain_text("examples")
        for path in (
            f"/tasks/{ids['task']}/",
            f"/projects/{ids['project']}/",
            f"/pipelines/runs/{ids['run']}/",
            f"/tasks/{ids['task']}/console-lines/",
        ):
            assert page.goto(url + path).status == 404, path
        response = page.request.get(f"{url}/tasks/status/?ids={ids['task']}")
        assert response.json() == {"tasks": {}}
    finally:
        context.close()
