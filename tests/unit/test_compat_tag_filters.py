"""clearml-server's list-field filters as the ClearML door applies them to tags: plain tags
(any of them), `-tag` and `__$not`, the `__$all`/`__$any` contexts, and None for no tags."""

import pytest

from webapp.compat.envelope import ApiError
from webapp.compat.query import tags_match

ROWS = {"both": ["t1", "t2"], "one": ["t1"], "none": []}


def matching(wanted) -> set[str]:
    return {name for name, tags in ROWS.items() if tags_match(tags, wanted)}


def test_plain_tags_are_any_of_them_and_a_dash_excludes():
    assert matching(["t2", "t1"]) == {"both", "one"}
    assert matching(["-t2"]) == {"one", "none"}
    assert matching(["t1", "-t2"]) == {"one"}
    assert matching(["-t1", "-t2"]) == {"none"}


def test_operators_switch_between_all_and_any():
    assert matching(["__$all", "t1", "t2"]) == {"both"}
    assert matching(["__$any", "__$not", "t1", "t2"]) == {"both", "none"}
    assert matching(["__$all", "t1", "__$not", "t2"]) == {"one"}
    assert matching(["__$not", "t1"]) == {"none"}
    # Once an operator is used, a leading dash is part of a tag's name.
    assert matching(["__$any", "-t1"]) == set()


def test_none_lets_untagged_rows_in_and_unknown_operators_are_refused():
    assert matching(["t2", None]) == {"both", "none"}
    assert matching([None]) == set(ROWS)
    with pytest.raises(ApiError):
        tags_match([], ["__$xor", "t1"])
