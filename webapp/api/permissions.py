"""The REST door's half of the policy table (webapp/core/policy.py).

Every view names the policy verb of each of its actions in `verbs` (an action, or for a
plain APIView an HTTP method, maps to a verb, or to a (read verb, write verb) pair for an
action that answers GET and changes things on other methods). `Policy`, the default
permission of every view, refuses a kind of caller the verb does not allow, and checks the
verb's object rule on the object a view looks up. A view or action naming no verb is
refused here and reported by the `api.E001` system check.
"""

from rest_framework import permissions

from webapp.core import access, policy
from webapp.core.models import Project, Task

# DRF's OPTIONS answer describes the endpoint and changes nothing.
METADATA = "metadata"


def verb_of(view, request) -> str | None:
    """The policy verb this request performs on `view`, or None if the view names none."""
    action = getattr(view, "action", None) or request.method.lower()
    if action == METADATA or request.method == "OPTIONS":
        return "identity.read"
    entry = getattr(view, "verbs", {}).get(action)
    if isinstance(entry, tuple):
        read, write = entry
        return read if request.method in permissions.SAFE_METHODS else write
    return entry


def task_of(obj) -> Task | None:
    """The task an object's rule is judged on: an artifact's task, a pipeline run's
    controller, or the task itself."""
    if isinstance(obj, Task):
        return obj
    for attribute in ("task", "controller"):
        related = getattr(obj, attribute, None)
        if isinstance(related, Task):
            return related
    return None


class Policy(permissions.BasePermission):
    """The table's kind check for every request, its object rule for every object a view
    looks up (get_object, or check_object_permissions on what a create acts for)."""

    message = "this key may not do this"

    def has_permission(self, request, view):
        name = verb_of(view, request)
        if name is None:
            self.message = "this endpoint names no verb of the policy table"
            return False
        try:
            request.policy_rule = policy.rule_for(name, request.user, request.auth)
        except policy.Forbidden as error:
            self.message = error.message
            return False
        request.policy_verb = name
        return True

    def has_object_permission(self, request, view, obj):
        rule = getattr(request, "policy_rule", None)
        if rule in (policy.ANY, policy.VISIBLE, policy.FENCED):
            # Views look objects up through access.visible_*: a hidden one was a 404.
            return True
        task = task_of(obj)
        if task is not None:
            allowed = access.permits(rule, request.user, request.auth, task)
        elif isinstance(obj, Project):
            allowed = access.permits_project(rule, request.user, request.auth, obj)
        else:
            allowed = rule is not None
        if not allowed:
            self.message = f"this key may not {policy.verb(request.policy_verb).summary} here"
        return allowed
