"""Rendering plugin tabs with each plugin's failure kept inside its own box."""

import logging

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from .registry import TaskTab, call_safely

logger = logging.getLogger(__name__)


def render_tab(request, task, tab: TaskTab) -> SafeString:
    """The tab's HTML, or an error box naming the plugin if any of its code raises.

    Rendering the template happens inside the guard too: a template error in a plugin
    (a missing filter, a bad attribute in a tag) must not turn the page into a 500.
    """
    try:
        if tab.render is not None:
            return mark_safe(tab.render(request, task))  # noqa: S308 - plugin returns HTML
        context = tab.get_context(request, task) if tab.get_context else {}
        if not isinstance(context, dict):
            raise TypeError(f"get_context returned {type(context).__name__}, not dict")
        context = {**context, "task": task, "tab": tab}
        return mark_safe(render_to_string(tab.template, context, request=request))  # noqa: S308
    except Exception as error:
        logger.exception(
            "dashboard plugin %s failed rendering tab %s of task %s", tab.plugin, tab.slug, task.pk
        )
        return error_box(tab.plugin, f"tab “{tab.label}”", error)


def error_box(plugin: str, what: str, error: Exception) -> SafeString:
    # The message may hold paths or data from the server; only DEBUG shows it.
    detail = (
        f"{type(error).__name__}: {str(error)[:300]}" if settings.DEBUG else type(error).__name__
    )
    return format_html(
        '<div class="plugin-error" role="alert" data-plugin="{}">'
        "<strong>The plugin {} failed to show {}.</strong>"
        '<p><code>{}</code></p><p class="muted">The error was logged on the server; the rest of '
        "the page works.</p></div>",
        plugin,
        plugin,
        what,
        detail,
    )


def tab_badge(tab: TaskTab, task):
    if tab.badge is None:
        return None
    return call_safely(
        tab.badge, task, default="!", what=f"tab {tab.slug} badge()", plugin=tab.plugin
    )
