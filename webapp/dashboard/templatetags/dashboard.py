"""Template helpers of the dashboard shell: menu, status pills, query-string links."""

import json
import logging

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from webapp.core.choices import NodeStatus, PipelineStatus, TaskStatus

from .. import registry

logger = logging.getLogger(__name__)
register = template.Library()

_LABELS = {
    **dict(TaskStatus.choices),
    **dict(NodeStatus.choices),
    **{k: v for k, v in PipelineStatus.choices if k not in dict(TaskStatus.choices)},
}


@register.simple_tag
def status_pill(status, label=None):
    text = label or _LABELS.get(status, status)
    return format_html(
        '<span class="pill pill-{}" data-status="{}">{}</span>', status, status, text
    )


@register.inclusion_tag("dashboard/_menu.html", takes_context=True)
def dashboard_menu(context):
    request = context["request"]
    entries = []
    for item in registry.menu_for(request):
        url = item.url
        if item.url_name:
            try:
                url = reverse(item.url_name)
            except NoReverseMatch:
                logger.exception("menu item %s of %s: no URL", item.slug, item.plugin)
                continue
        active = request.path.startswith(url) and (url != "/" or request.path == "/")
        entries.append({"item": item, "url": url, "active": active})
    # The longest matching prefix is the page we are on (/tasks/ is under /projects/).
    best = max((e for e in entries if e["active"]), key=lambda e: len(e["url"]), default=None)
    for entry in entries:
        entry["active"] = entry is best
    section = context.get("nav_section")
    if section:
        for entry in entries:
            entry["active"] = entry["item"].slug == section
    return {"entries": entries}


@register.simple_tag(takes_context=True)
def query(context, **changes):
    """The current query string with some parameters changed (None or '' removes them)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    if "page" not in changes:
        params.pop("page", None)
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.filter
def pretty_json(value):
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def short_id(value):
    return str(value or "")[:8]


@register.simple_tag
def plotly_url():
    """Plotly.js from the installed plotly package, under a URL that names its version."""
    import plotly

    return reverse("dashboard:plotly", kwargs={"version": plotly.__version__})


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def _spoken(seconds: float) -> str:
    """A length of time in its largest unit, rounded down: "1 minute", "3 hours"."""
    seconds = int(max(0, seconds))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            return _plural(seconds // size, unit)
    return _plural(seconds, "second")


@register.filter
def ago(value, now=None):
    """ "just now", "42 seconds ago", "1 minute ago" (Django's timesince says "0 minutes")."""
    if not value:
        return ""
    from django.utils import timezone

    seconds = ((now or timezone.now()) - value).total_seconds()
    return "just now" if seconds < 5 else f"{_spoken(seconds)} ago"


@register.filter
def duration(start, end=None):
    """How long from `start` to `end` (or now): "42 s", "3 min 5 s", "2 h 03 min", "3 d 4 h"."""
    if not start:
        return ""
    from django.utils import timezone

    seconds = int(max(0, ((end or timezone.now()) - start).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def seconds(value):
    """A length in seconds as a step's box shows it: "1.2s", "3m 04s", "2h 05m"."""
    from webapp.core.pipeline_figure import format_seconds

    return "" if value is None else format_seconds(value)


@register.filter
def bytes_size(value):
    """A size in bytes: "512 B", "45.0 MB"."""
    from webapp.core.pipeline_figure import format_bytes

    return "" if value is None else format_bytes(value)
