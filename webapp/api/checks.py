"""api.E001: every routed REST action names a verb of the policy table (webapp/core/policy.py).

Policy refuses an action that names none at request time; this check says so at start-up
(`manage.py check`, and the test suite), before anyone calls it.
"""

from django.core.checks import Error, register
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from webapp.core import policy

# The verbs of plain APIViews are keyed by HTTP method; these two answer for any view.
IMPLICIT_METHODS = {"options", "head"}


def routed_views(patterns=None, prefix=""):
    """(route, view class, {method: action or method}) for every DRF view in the URLconf."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from routed_views(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "cls", None)
            if view_class is None or not issubclass(view_class, APIView):
                continue
            actions = getattr(pattern.callback, "actions", None)
            if actions is None:
                actions = {
                    method: method
                    for method in view_class.http_method_names
                    if method not in IMPLICIT_METHODS and hasattr(view_class, method)
                }
            yield prefix + str(pattern.pattern), view_class, actions


def unnamed_verbs() -> list[str]:
    """'route method -> action' for each routed action whose view names no known verb."""
    from .permissions import Policy

    missing = []
    for route, view_class, actions in routed_views():
        if not any(issubclass(p, Policy) for p in view_class.permission_classes):
            continue  # not behind the policy (the schema views: any logged-in caller)
        verbs = getattr(view_class, "verbs", {})
        for method, action in actions.items():
            entry = verbs.get(action)
            names = entry if isinstance(entry, tuple) else (entry,)
            if entry is None or any(name not in policy.VERBS for name in names):
                missing.append(f"{route} {method.upper()} -> {view_class.__name__}.{action}")
    return missing


@register()
def every_action_names_a_verb(app_configs, **kwargs):
    return [
        Error(
            f"REST action {entry} names no verb of webapp.core.policy.VERBS",
            hint="Add it to the view's `verbs`, with the verb whose rules apply.",
            id="api.E001",
        )
        for entry in unnamed_verbs()
    ]
