"""The dispatch table: `service.action` -> handler, and the per-call context handlers get."""

from collections.abc import Callable
from dataclasses import dataclass, field

from .envelope import bad_request

HANDLERS: dict[str, Callable] = {}
# Endpoints that answer without a token (they hand tokens out).
PUBLIC: set[str] = set()


def endpoint(*names: str, public: bool = False):
    """Register a handler under one or more `service.action` names."""

    def register(function):
        for name in names:
            HANDLERS[name] = function
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
