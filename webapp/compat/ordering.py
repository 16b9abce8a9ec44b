"""Ordering by a parameter's value, and scrolling, for `tasks.get_all`.

clearml-server orders `hyperparams.<section>.<name>[.value]` and `configuration.<name>`
with numeric collation ("2" before "11"); their values are strings inside our JSON columns,
which no database orders portably, so such a query is ordered here after filtering. A scroll
(`scroll_id`) is a signed position: each call answers the next `size` rows after it, and
`refresh_scroll` answers everything from the start up to it again.
"""

import re

from django.core import signing

from .envelope import bad_request
from .query import MAX_PAGE_SIZE, as_list, unescape_field

PARAMETER_FIELDS = ("hyperparams", "configuration")
_DIGITS = re.compile(r"(\d+)")
_SCROLL_SALT = "webapp.compat.scroll"


def by_parameters(order_by) -> bool:
    return any(
        str(item).lstrip("-").split(".")[0] in PARAMETER_FIELDS for item in as_list(order_by)
    )


def _value_at(doc: dict, path: str) -> str | None:
    parts = [unescape_field(part) for part in path.split(".")]
    value = doc
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, dict):
        # A parameter orders by its value; a whole section by its parameters' values.
        if "value" in value and not isinstance(value["value"], dict):
            value = value["value"]
        else:
            value = "\x00".join(str((v or {}).get("value", "")) for v in value.values())
    return None if value is None else str(value)


def natural_key(text: str) -> tuple:
    """Digits compare as numbers, the rest ignoring case (clearml-server's collation)."""
    return tuple(
        (0, int(chunk), "") if chunk.isdigit() else (1, 0, chunk.casefold())
        for chunk in _DIGITS.split(text)
        if chunk
    )


def sort_docs(docs: list[dict], order_by) -> list[dict]:
    """`docs` ordered by every field of `order_by` (the first one leading), empty values
    last either way."""
    for item in reversed([str(i) for i in as_list(order_by)]):
        descending, path = item.startswith("-"), item.lstrip("-")
        keyed, missing = [], []
        for doc in docs:
            value = _value_at(doc, path)
            if value is None:
                missing.append(doc)
            else:
                keyed.append((natural_key(value), doc))
        keyed.sort(key=lambda pair: pair[0], reverse=descending)
        docs = [doc for _, doc in keyed] + missing
    return docs


def scroll_window(body: dict) -> slice | None:
    """The rows a scrolling call answers (None: the call does not scroll)."""
    if "scroll_id" not in body:
        return None
    try:
        size = int(body.get("size") or body.get("page_size") or 0)
    except (TypeError, ValueError):
        size = 0
    if size < 1:
        raise bad_request("scrolling needs an integer size of at least 1", subcode=12)
    size = min(size, MAX_PAGE_SIZE)
    position = 0
    if body.get("scroll_id"):
        try:
            position = int(signing.loads(str(body["scroll_id"]), salt=_SCROLL_SALT))
        except (signing.BadSignature, TypeError, ValueError) as error:
            raise bad_request("invalid scroll_id", subcode=12) from error
    if body.get("refresh_scroll") in (True, "true", "True", 1, "1"):
        size, position = max(position, size), 0
    return slice(position, position + size)


def scroll_id(window: slice, answered: int) -> str:
    return signing.dumps(window.start + answered, salt=_SCROLL_SALT)
