"""Name patterns of triggers: regular expressions that cannot take exponential time.

A trigger's pattern is matched against task names inside the transaction of every event it
may fire on, so a pattern like `(a+)+$` (catastrophic backtracking on a 255-character name)
would stall task status changes. Patterns are parsed and refused when they nest a
repetition inside another, repeat an alternation or a group holding one, use
backreferences, or hold more than two unbounded repetitions: what is left runs in at most
quadratic time on a name.
"""

import re

try:
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse

from webapp.core.errors import InvalidInput

MAX_REPEATS = 2
_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT, sre_parse.POSSESSIVE_REPEAT}


def checked(pattern: str) -> str:
    if len(pattern) > 255:
        raise InvalidInput("name_pattern: at most 255 characters", field="name_pattern")
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as error:
        raise InvalidInput(f"name_pattern: {error}", field="name_pattern") from error
    problem = _problem(parsed, inside_repeat=False, count=[0])
    if problem:
        raise InvalidInput(
            f"name_pattern: {problem} (it could take exponential time on a name)",
            field="name_pattern",
        )
    return pattern


def _problem(items, inside_repeat: bool, count: list) -> str:
    for op, value in items:
        if op in _REPEATS:
            low, high, body = value
            if inside_repeat:
                return "a repetition inside a repetition"
            if high == sre_parse.MAXREPEAT or high > 255:
                count[0] += 1
                if count[0] > MAX_REPEATS:
                    return f"more than {MAX_REPEATS} unbounded repetitions"
            if any(o in (sre_parse.BRANCH, sre_parse.SUBPATTERN) for o, _ in body):
                if _has_branch(body):
                    return "a repeated alternation"
            found = _problem(body, True, count)
            if found:
                return found
        elif op in (sre_parse.GROUPREF, sre_parse.GROUPREF_EXISTS):
            return "a backreference"
        elif op == sre_parse.SUBPATTERN:
            found = _problem(value[-1], inside_repeat, count)
            if found:
                return found
        elif op == sre_parse.BRANCH:
            for branch in value[1]:
                found = _problem(branch, inside_repeat, count)
                if found:
                    return found
        elif op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
            found = _problem(value[1], inside_repeat, count)
            if found:
                return found
    return ""


def _has_branch(items) -> bool:
    for op, value in items:
        if op == sre_parse.BRANCH:
            return True
        if op == sre_parse.SUBPATTERN and _has_branch(value[-1]):
            return True
    return False
