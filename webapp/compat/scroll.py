"""ClearML's scroll ids for reading results back, kept in the id itself.

clearml-server keeps a reader's place (the iterations a page ended at, the sample it
showed) in Redis under a random id. Ours is that place, as small JSON the client hands
back: nothing is kept on the server, any process answers the next page, and an id a client
made up can only move a reader inside what the caller may see anyway (every page checks
the task again). A malformed one is ClearML's 400 "invalid scroll id".
"""

import base64
import json

from .envelope import ApiError

# Far more than a place in a few hundred tasks' results needs; a bigger id is not ours.
MAX_SCROLL_CHARS = 20_000


def invalid(scroll_id) -> ApiError:
    return ApiError(400, f"Invalid scroll id: {str(scroll_id)[:100]}", 1104)


def encode(kind: str, state: dict) -> str:
    text = json.dumps({"kind": kind, **state}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(kind: str, scroll_id) -> dict:
    """The state a scroll id of `kind` holds; 400 for anything else."""
    if not isinstance(scroll_id, str) or len(scroll_id) > MAX_SCROLL_CHARS:
        raise invalid(scroll_id)
    try:
        text = base64.urlsafe_b64decode(scroll_id + "=" * (-len(scroll_id) % 4)).decode()
        state = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise invalid(scroll_id) from error
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise invalid(scroll_id)
    return state


def optional_int(state: dict, name: str, scroll_id) -> int | None:
    value = state.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**63:
        raise invalid(scroll_id)
    return value


def text(state: dict, name: str, scroll_id) -> str:
    value = state.get(name)
    if not isinstance(value, str) or len(value) > 1000:
        raise invalid(scroll_id)
    return value
