"""The dashboard's plugin registry: task-page tabs and left-menu items.

Plugins are the apps named in ``settings.DASHBOARD_PLUGINS``. Each is a ``DashboardPlugin``
app config whose ``tabs`` module holds ``tabs = [TaskTab(...)]`` and optionally
``menu_items = [MenuItem(...)]``. ``load()`` validates all of them at start-up (from
``DashboardConfig.ready()``), so a wrong type or a duplicate slug stops the server from
booting instead of breaking a page later. Built-in tabs are plugins of the same shape.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib import import_module
from typing import Any

from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import module_has_submodule

logger = logging.getLogger(__name__)

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
# Core page slugs a tab may not shadow in /tasks/<id>/<slug>/ URLs.
RESERVED_TAB_SLUGS = frozenset(
    {"status", "console-lines", "clone", "enqueue", "dequeue", "abort", "reset", "archive",
     "restore", "delete", "hyperparameters", "samples", "publish", "details",
     "console-download", "console-search"}
)  # fmt: skip


def _always(_obj) -> bool:
    return True


class DashboardPlugin(AppConfig):
    """Base app config of a dashboard plugin (netbox's PluginConfig, much reduced).

    Subclasses set ``name`` (and usually ``label`` and ``verbose_name``); the plugin's
    ``tabs`` submodule declares what it adds. ``ready()`` must not touch the database.
    """

    #: The submodule holding ``tabs`` and ``menu_items`` lists.
    resources_module = "tabs"
    # Django picks an app's config automatically only when apps.py holds exactly one
    # AppConfig subclass marked default; importing this base there must not count.
    default = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.default = cls.__dict__.get("default", True)


@dataclass(frozen=True)
class TaskTab:
    """A tab on the task page.

    Give either ``template`` (rendered with ``task``, ``tab`` and whatever
    ``get_context(request, task)`` returns) or ``render(request, task) -> str`` returning
    HTML. ``visible(task)`` hides the tab for tasks it does not apply to; ``badge(task)``
    is a short count or word shown beside the label. ``group`` places the tab under a
    heading in the strip (ClearML's "Results"). ``plotly`` loads Plotly.js and the chart
    helper on the page when this tab is shown.
    """

    slug: str
    label: str
    order: int = 100
    template: str | None = None
    get_context: Callable[[Any, Any], dict] | None = None
    render: Callable[[Any, Any], str] | None = None
    visible: Callable[[Any], bool] = _always
    badge: Callable[[Any], Any] | None = None
    group: str = ""
    plotly: bool = False
    plugin: str = field(default="", compare=False)

    @property
    def title(self) -> str:
        return f"{self.group} › {self.label}" if self.group else self.label


@dataclass(frozen=True)
class MenuItem:
    """An entry of the left navigation: a URL name (reversed without arguments) or a URL."""

    slug: str
    label: str
    url_name: str = ""
    url: str = ""
    order: int = 100
    icon: str = ""
    visible: Callable[[Any], bool] = _always  # called with the request
    plugin: str = field(default="", compare=False)


@dataclass
class Registry:
    """What the loaded plugins registered, in display order."""

    tabs: dict[str, TaskTab] = field(default_factory=dict)
    menu_items: dict[str, MenuItem] = field(default_factory=dict)
    plugins: list[str] = field(default_factory=list)

    def register_tab(self, tab: TaskTab, plugin: str = "") -> TaskTab:
        owner = plugin or tab.plugin or "?"
        _check_type(tab, TaskTab, owner, "tab")
        _check_common(tab, owner, "tab")
        if tab.slug in RESERVED_TAB_SLUGS:
            raise ImproperlyConfigured(f"plugin {owner}: tab slug {tab.slug!r} is reserved")
        if (tab.template is None) == (tab.render is None):
            raise ImproperlyConfigured(
                f"plugin {owner}: tab {tab.slug!r} needs exactly one of template= or render="
            )
        if tab.template is not None and not (isinstance(tab.template, str) and tab.template):
            raise ImproperlyConfigured(f"plugin {owner}: tab {tab.slug!r} template must be a str")
        for name in ("get_context", "render", "badge"):
            value = getattr(tab, name)
            if value is not None and not callable(value):
                raise ImproperlyConfigured(f"plugin {owner}: tab {tab.slug!r} {name} not callable")
        if not isinstance(tab.group, str) or not isinstance(tab.plotly, bool):
            raise ImproperlyConfigured(f"plugin {owner}: tab {tab.slug!r} group/plotly types")
        if tab.slug in self.tabs:
            raise ImproperlyConfigured(
                f"plugin {owner}: tab slug {tab.slug!r} is already registered by "
                f"{self.tabs[tab.slug].plugin}"
            )
        tab = replace(tab, plugin=owner)
        self.tabs[tab.slug] = tab
        return tab

    def register_menu_item(self, item: MenuItem, plugin: str = "") -> MenuItem:
        owner = plugin or item.plugin or "?"
        _check_type(item, MenuItem, owner, "menu item")
        _check_common(item, owner, "menu item")
        if bool(item.url_name) == bool(item.url):
            raise ImproperlyConfigured(
                f"plugin {owner}: menu item {item.slug!r} needs exactly one of url_name= or url="
            )
        if item.slug in self.menu_items:
            raise ImproperlyConfigured(
                f"plugin {owner}: menu item slug {item.slug!r} is already registered by "
                f"{self.menu_items[item.slug].plugin}"
            )
        item = replace(item, plugin=owner)
        self.menu_items[item.slug] = item
        return item

    def sorted_tabs(self) -> list[TaskTab]:
        return sorted(self.tabs.values(), key=lambda t: (t.order, t.slug))

    def sorted_menu(self) -> list[MenuItem]:
        return sorted(self.menu_items.values(), key=lambda m: (m.order, m.slug))


def _check_type(obj, expected: type, owner: str, what: str) -> None:
    if not isinstance(obj, expected):
        raise ImproperlyConfigured(
            f"plugin {owner}: a {what} must be a {expected.__name__}, got {type(obj).__name__}"
        )


def _check_common(obj, owner: str, what: str) -> None:
    if not isinstance(obj.slug, str) or not SLUG.match(obj.slug):
        raise ImproperlyConfigured(
            f"plugin {owner}: {what} slug {obj.slug!r} must be lowercase letters, digits, - or _"
        )
    if not isinstance(obj.label, str) or not obj.label.strip():
        raise ImproperlyConfigured(f"plugin {owner}: {what} {obj.slug!r} needs a label")
    if not isinstance(obj.order, int) or isinstance(obj.order, bool):
        raise ImproperlyConfigured(f"plugin {owner}: {what} {obj.slug!r} order must be an int")
    if not callable(obj.visible):
        raise ImproperlyConfigured(f"plugin {owner}: {what} {obj.slug!r} visible not callable")


# ---------------------------------------------------------------- loading


def _plugin_config(name: str) -> DashboardPlugin:
    config = next((c for c in apps.get_app_configs() if c.name == name), None)
    if config is None:
        raise ImproperlyConfigured(
            f"dashboard plugin {name!r} is in DASHBOARD_PLUGINS but not in INSTALLED_APPS"
        )
    if not isinstance(config, DashboardPlugin):
        raise ImproperlyConfigured(
            f"dashboard plugin {name!r}: its app config must subclass "
            "webapp.dashboard.registry.DashboardPlugin"
        )
    return config


def _declared(module, attribute: str, owner: str) -> list:
    value = getattr(module, attribute, [])
    if not isinstance(value, list | tuple):
        raise ImproperlyConfigured(f"plugin {owner}: {attribute} must be a list")
    return list(value)


def load(plugin_names: Iterable[str], core_menu: Iterable[MenuItem] = ()) -> Registry:
    """Build and validate a registry from plugin app names, in their listed order."""
    registry = Registry()
    for item in core_menu:
        registry.register_menu_item(item, plugin="webapp.dashboard")
    names = list(plugin_names)
    if len(set(names)) != len(names):
        raise ImproperlyConfigured("DASHBOARD_PLUGINS lists a plugin twice")
    for name in names:
        if not isinstance(name, str):
            raise ImproperlyConfigured(f"DASHBOARD_PLUGINS entries must be strings: {name!r}")
        config = _plugin_config(name)
        if module_has_submodule(config.module, config.resources_module):
            module = import_module(f"{config.name}.{config.resources_module}")
            for tab in _declared(module, "tabs", name):
                registry.register_tab(tab, plugin=name)
            for item in _declared(module, "menu_items", name):
                registry.register_menu_item(item, plugin=name)
        registry.plugins.append(name)
    return registry


_active = Registry()


def active() -> Registry:
    return _active


def install(registry: Registry) -> None:
    global _active
    _active = registry


@contextmanager
def override(registry: Registry):
    """Swap in a registry for the duration of a test (wagtail's register_temporarily)."""
    previous = active()
    install(registry)
    try:
        yield registry
    finally:
        install(previous)


# ---------------------------------------------------------------- safe calls for pages


def call_safely(func: Callable, *args, default: Any, what: str, plugin: str):
    """Run plugin code for a page; log and return ``default`` when it raises."""
    try:
        return func(*args)
    except Exception:
        logger.exception("dashboard plugin %s failed in %s", plugin, what)
        return default


def tabs_for(task) -> list[TaskTab]:
    return [
        tab
        for tab in active().sorted_tabs()
        if call_safely(
            tab.visible, task, default=True, what=f"tab {tab.slug} visible()", plugin=tab.plugin
        )
    ]


def menu_for(request) -> list[MenuItem]:
    return [
        item
        for item in active().sorted_menu()
        if call_safely(
            item.visible,
            request,
            default=False,
            what=f"menu item {item.slug} visible()",
            plugin=item.plugin,
        )
    ]
