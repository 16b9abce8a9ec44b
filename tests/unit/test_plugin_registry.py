"""The dashboard plugin registry: validation at start-up and failures kept in their box."""

import logging
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from tests.support import REPO
from webapp.core import services
from webapp.dashboard import registry
from webapp.dashboard.registry import MenuItem, Registry, TaskTab
from webapp.dashboard.rendering import render_tab, tab_badge

BUILTIN_SLUGS = [
    "execution",
    "configuration",
    "artifacts",
    "models",
    "info",
    "console",
    "pipeline",
    "scalars",
    "plots",
    "debug-samples",
]
FAILING = "tests.plugins.failing_plugin"
EXAMPLE = "pipelines_hello"


def _tab(**fields) -> TaskTab:
    return TaskTab(**{"slug": "t", "label": "T", "template": "x.html", **fields})


def _installed(*extra):
    return override_settings(
        INSTALLED_APPS=[*settings.INSTALLED_APPS, *extra],
        DASHBOARD_PLUGINS=[*settings.DASHBOARD_PLUGINS, *extra],
    )


# ---------------------------------------------------------------- validation


def test_builtin_tabs_are_plugins_registered_in_order():
    tabs = registry.active().sorted_tabs()
    assert [tab.slug for tab in tabs] == BUILTIN_SLUGS
    assert all(tab.plugin.startswith("webapp.plugins.") for tab in tabs)
    menu = [item.slug for item in registry.active().sorted_menu()]
    assert menu[:7] == [
        *("projects", "pipelines", "models", "schedules", "triggers"),
        *("queues", "workers"),
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"slug": "Bad Slug"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"slug": 7}, "slug"),
        ({"label": ""}, "label"),
        ({"label": None}, "label"),
        ({"order": "1"}, "order"),
        ({"order": True}, "order"),
        ({"visible": "yes"}, "visible"),
        ({"render": lambda request, task: ""}, "exactly one"),
        ({"template": None}, "exactly one"),
        ({"template": 3}, "template"),
        ({"get_context": {}}, "get_context"),
        ({"badge": 1}, "badge"),
        ({"plotly": "yes"}, "plotly"),
        ({"slug": "clone"}, "reserved"),
        ({"slug": "status"}, "reserved"),
    ],
)
def test_a_malformed_tab_is_refused_naming_the_plugin(fields, message):
    with pytest.raises(ImproperlyConfigured, match=message) as error:
        Registry().register_tab(_tab(**fields), plugin="acme.plugin")
    assert "acme.plugin" in str(error.value)


@pytest.mark.parametrize("thing", ["execution", {"slug": "x"}, MenuItem("m", "M", url="/")])
def test_something_that_is_not_a_tab_is_refused(thing):
    with pytest.raises(ImproperlyConfigured, match="must be a TaskTab"):
        Registry().register_tab(thing, plugin="acme")


def test_a_duplicate_slug_is_refused_naming_who_had_it():
    store = Registry()
    store.register_tab(_tab(slug="shared"), plugin="first.plugin")
    with pytest.raises(ImproperlyConfigured, match="already registered by first.plugin"):
        store.register_tab(_tab(slug="shared", label="Again"), plugin="second.plugin")


@pytest.mark.parametrize(
    "item",
    [
        MenuItem("m", "M"),
        MenuItem("m", "M", url="/a/", url_name="dashboard:projects"),
        MenuItem("M!", "M", url="/a/"),
    ],
)
def test_a_malformed_menu_item_is_refused(item):
    with pytest.raises(ImproperlyConfigured):
        Registry().register_menu_item(item, plugin="acme")


def test_duplicate_menu_slugs_are_refused():
    store = Registry()
    store.register_menu_item(MenuItem("docs", "Docs", url="/a/"), plugin="a")
    with pytest.raises(ImproperlyConfigured, match="already registered by a"):
        store.register_menu_item(MenuItem("docs", "Docs", url="/b/"), plugin="b")
    with pytest.raises(ImproperlyConfigured, match="must be a MenuItem"):
        store.register_menu_item(_tab(), plugin="b")


def test_load_refuses_plugins_that_are_not_installed_or_not_dashboard_plugins():
    with pytest.raises(ImproperlyConfigured, match="not in INSTALLED_APPS"):
        registry.load(["acme.not_installed"])
    with pytest.raises(ImproperlyConfigured, match="must subclass"):
        registry.load(["webapp.core"])
    with pytest.raises(ImproperlyConfigured, match="twice"):
        registry.load(["webapp.plugins.info", "webapp.plugins.info"])


def test_load_keeps_the_listed_order_and_records_each_plugin():
    loaded = registry.load(["webapp.plugins.info", "webapp.plugins.console"])
    assert loaded.plugins == ["webapp.plugins.info", "webapp.plugins.console"]
    assert [tab.slug for tab in loaded.sorted_tabs()] == ["info", "console"]


def _boot(extra_plugins: str, data_dir) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPELINES_")}
    env.update(
        {
            "PIPELINES_EXTRA_PLUGINS": extra_plugins,
            "PIPELINES_DATA_DIR": str(data_dir),
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
        }
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_plugin_reusing_a_builtin_slug_stops_the_server_from_booting(tmp_path):
    # given a plugin that registers the slug "execution" a second time
    result = _boot("tests.plugins.duplicate_plugin", tmp_path)
    # then start-up fails with the reason, before any request
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "'execution' is already registered by webapp.plugins.execution" in result.stderr


def test_plugins_named_in_the_environment_are_installed_at_boot(tmp_path):
    assert _boot(FAILING, tmp_path).returncode == 0


# ---------------------------------------------------------------- failures stay in their box


@pytest.fixture
def task(db, admin_user):
    return services.create_task(user=admin_user, project_name="p", name="subject")


def _explode(*args):
    raise RuntimeError("kaboom")


@pytest.mark.parametrize(
    "tab",
    [
        TaskTab(slug="r", label="R", render=_explode),
        TaskTab(slug="c", label="C", template="plugins/info/tab.html", get_context=_explode),
        TaskTab(slug="n", label="N", template="plugins/info/tab.html", get_context=lambda r, t: 1),
        TaskTab(slug="m", label="M", template="plugins/nothing/here.html"),
    ],
)
def test_a_raising_tab_renders_an_error_box_and_is_logged(tab, task, rf, admin_user, caplog):
    request = rf.get("/")
    request.user = admin_user
    tab = Registry().register_tab(tab, plugin="acme.broken")
    with caplog.at_level(logging.ERROR):
        html = render_tab(request, task, tab)
    assert 'class="plugin-error"' in html
    assert "acme.broken" in html
    assert "kaboom" not in html  # the message may hold server details; only DEBUG shows it
    assert any("acme.broken" in record.getMessage() for record in caplog.records)


def test_a_raising_badge_shows_a_mark_and_a_raising_visible_keeps_the_tab(task, caplog):
    store = Registry()
    tab = store.register_tab(_tab(slug="b", badge=_explode, visible=_explode), plugin="acme.broken")
    with caplog.at_level(logging.ERROR), registry.override(store):
        assert tab_badge(tab, task) == "!"
        assert registry.tabs_for(task) == [tab]
    assert len([r for r in caplog.records if "acme.broken" in r.getMessage()]) == 2


def test_the_task_page_survives_a_failing_plugin(admin_client, task):
    with _installed(FAILING):
        assert "boom" in registry.active().tabs
        page = admin_client.get(f"/tasks/{task.id}/")
        broken = admin_client.get(f"/tasks/{task.id}/boom/")
        broken_template = admin_client.get(f"/tasks/{task.id}/boom-template/")
    assert page.status_code == 200
    assert b'data-tab="boom"' in page.content
    assert b'data-menu="boom"' not in page.content  # its menu item's visible() raised
    for response in (broken, broken_template):
        assert response.status_code == 200
        assert b'class="plugin-error"' in response.content
        assert b'data-tab="execution"' in response.content
    assert "boom" not in registry.active().tabs  # back to the configured plugins


def test_the_third_party_example_plugin_installs_and_shows_its_tab(
    admin_client, admin_user, task, monkeypatch
):
    monkeypatch.syspath_prepend(str(REPO / "examples" / "dashboard_plugin"))
    clone = services.clone_task(task, user=admin_user, name="clone")
    with _installed(EXAMPLE):
        page = admin_client.get(f"/tasks/{clone.id}/")
        tab = admin_client.get(f"/tasks/{clone.id}/lineage/")
    assert b'data-tab="lineage"' in page.content
    assert b'data-menu="api-docs"' in page.content
    assert tab.status_code == 200
    assert b'id="lineage"' in tab.content
    assert f"/tasks/{task.id}/".encode() in tab.content  # the parent it was cloned from
    assert "lineage" not in registry.active().tabs
