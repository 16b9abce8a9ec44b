"""Headless Chromium (Debian's build, driven by Playwright) against a real server process.

The browser comes from `apt-get install chromium`; Playwright's own browser download is
never used. Without /usr/bin/chromium or the playwright package the tests skip, saying why.
"""

import json
import os
import re
from pathlib import Path

import pytest

from tests.support import REPO, start_server

CHROMIUM = Path(os.environ.get("PIPELINES_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 400, "height": 860}
EXAMPLE_PLUGIN_DIR = REPO / "examples" / "dashboard_plugin"
EXTRA_PLUGINS = "pipelines_hello,tests.plugins.failing_plugin"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's browser with `apt-get install chromium`"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is missing: pip install -r requirements-dev.txt"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def dashboard_server(tmp_path_factory, browser):
    """A server with the example plugin and a deliberately failing plugin installed."""
    server = start_server(
        tmp_path_factory.mktemp("dashboard-server"),
        PIPELINES_EXTRA_PLUGINS=EXTRA_PLUGINS,
        PYTHONPATH=os.pathsep.join([str(REPO), str(EXAMPLE_PLUGIN_DIR)]),
    )
    out = server.manage("shell", "-c", "from tests.browser.seed import main; main()")
    server.extra.update(json.loads(re.search(r"SEED (.*)", out).group(1)))
    yield server
    server.stop()
    server.drop_database()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport=WIDE)
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context, dashboard_server):
    """A page logged in as the admin user through the login form."""
    page = context.new_page()
    login(page, dashboard_server.url, "admin", dashboard_server.password)
    return page


def login(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/projects/$"))


def screenshot(page, name: str, narrow: bool = True) -> None:
    """Save the page at 1280 px and (optionally) at 400 px wide into test-artifacts/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    page.set_viewport_size(WIDE)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-1280.png"), full_page=True)
    if narrow:
        page.set_viewport_size(NARROW)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-400.png"), full_page=True)
    page.set_viewport_size(original)
