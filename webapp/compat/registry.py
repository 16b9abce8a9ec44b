"""The dispatch table: `service.action` -> handler, and the per-call context handlers get."""

from collections.abc import Callable
from dataclasses import dataclass, field

from webapp.core import policy

from .envelope import bad_request

HANDLERS: dict[str, Callable] = {}
# `service.action` -> the verb of webapp.core.policy it performs: who may call it.
VERBS: dict[str, str] = {}
# Endpoints that answer without a token (they hand tokens out).
PUBLIC: set[str] = set()


def endpoint(*names: str, verb: str, public: bool = False):
    """Register a handler under one or more `service.action` names, as the policy verb
    `verb`; an unknown verb fails at import, so no endpoint exists outside the table."""
    policy.verb(verb)

    def register(function):
        for name in names:
            if name in HANDLERS:
                raise LookupError(f"ClearML endpoint {name} is registered twice")
            HANDLERS[name] = function
            VERBS[name] = verb
            if public:
                PUBLIC.add(name)
        return function

    return register


@dataclass
class Call:
    """One API call: its parsed body, the caller and the request it came in."""

    name: str
    body: dict
    request: object
    version: str = ""
    user: object = None
    key: object = None
    worker: str = ""
    lines: list = field(default_factory=list)
    # The verb this endpoint performs and the caller's object rule for it (policy.py).
    verb: str = ""
    rule: str = ""

    def get(self, name: str, default=None):
        value = self.body.get(name, default)
        return default if value is None else value

    def require(self, name: str):
        value = self.body.get(name)
        if value in (None, "", [], {}):
            raise bad_request(f"missing required field {name!r}", subcode=0)
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.body.get(name, default)
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
