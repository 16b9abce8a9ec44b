"""Query options shared by the `*.get_all` endpoints: regex names, tag filters, projections,
ordering and pages, as ClearML's server applies them."""

import re
from datetime import UTC, datetime

from django.db.models import F, Q
from django.db.models.functions import Coalesce, Greatest

from .envelope import bad_request

MAX_PAGE_SIZE = 10_000


def as_list(value) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [item for item in value if item not in (None, "")]
    return [value]


def checked_regex(pattern: str) -> str:
    """The SDK sends names as regexes (`^` + re.escape(name) + `$`), matched ignoring case."""
    try:
        re.compile(pattern)
    except re.error as error:
        raise bad_request(f"invalid regular expression {pattern!r}: {error}") from error
    return pattern


def name_filter(queryset, field: str, pattern):
    if pattern in (None, ""):
        return queryset
    if isinstance(pattern, list):
        return queryset.filter(**{f"{field}__in": [str(p) for p in pattern]})
    return queryset.filter(**{f"{field}__iregex": checked_regex(str(pattern))})


def split_tags(wanted) -> tuple[list, list]:
    """ClearML tag filters: plain tags are required (any of them), `-tag` excludes a tag."""
    include, exclude = [], []
    negate = False
    for tag in as_list(wanted):
        tag = str(tag)
        if tag == "__$not":
            negate = True  # the web UI's operator: the next tag is excluded
            continue
        if tag.startswith("-"):
            exclude.append(tag[1:])
        elif tag.startswith("__$"):
            continue  # the other operators (__$all, __$and...) are not used by clients
        elif negate:
            exclude.append(tag)
        else:
            include.append(tag)
        negate = False
    return include, exclude


_TAG_OPERATORS = {"__$all": "and", "__$and": "and", "__$any": "or", "__$or": "or"}


def tags_match(tags, wanted) -> bool:
    """clearml-server's list-field filter: plain tags are wanted (any of them); `-tag` and
    `__$not tag` exclude one; `__$all`/`__$and` and `__$any`/`__$or` switch the context the
    next tags are read in (all of them present, or any) and the first one also joins the
    conditions so; `__$nop` goes back to the default; None also lets an untagged row in."""
    terms = wanted if isinstance(wanted, list | tuple) else [wanted]
    buckets: dict[str, set] = {"in": set(), "all": set(), "nin": set()}
    context, joined, legacy, negate, allow_empty = "or", None, True, False, False
    for term in terms:
        if term is None:
            allow_empty, negate = True, False
            continue
        term = str(term)
        if term == "__$nop":
            context, legacy = "or", True
            continue
        if term == "__$not":
            negate = True
            continue
        if term.startswith("__$"):
            if term not in _TAG_OPERATORS:
                raise bad_request(f"unsupported tag filter operator {term!r}", subcode=12)
            context, legacy = _TAG_OPERATORS[term], False
            joined = joined or context
            continue
        joined = joined or "and"
        include = not negate
        if negate:
            negate = False
        elif legacy and term.startswith("-") and len(term) > 1:
            term, include = term[1:], False
        buckets[("all" if context == "and" else "in") if include else "nin"].add(term)
    present = set(tags or [])
    results = []
    if buckets["in"]:
        results.append(bool(present & buckets["in"]))
    if buckets["all"]:
        results.append(buckets["all"] <= present)
    if buckets["nin"]:
        results.append(not present & buckets["nin"])
    matched = not results or (all(results) if joined != "or" else any(results))
    return matched or (allow_empty and not present)


def page_slice(body: dict) -> slice:
    page_size = body.get("page_size")
    if page_size in (None, ""):
        page_size = body.get("size")
    try:
        size = int(page_size) if page_size not in (None, "") else None
        page = int(body.get("page") or 0)
    except (TypeError, ValueError) as error:
        raise bad_request("page and page_size must be integers") from error
    if size is None:
        return slice(0, MAX_PAGE_SIZE)
    size = max(1, min(size, MAX_PAGE_SIZE))
    page = max(page, 0)
    return slice(page * size, (page + 1) * size)


def order_fields(order_by, allowed: dict[str, str], default: list[str]) -> list:
    """ClearML's order_by (`-created`, `name`) as ORM orderings, empty values last either
    way (as clearml-server sorts them); unknown fields are ignored."""
    fields = []
    for item in as_list(order_by):
        item = str(item)
        descending = item.startswith("-")
        name = allowed.get(item.lstrip("-"))
        if name:
            column = F(name)
            fields.append(
                column.desc(nulls_last=True) if descending else column.asc(nulls_last=True)
            )
    return fields or default


# What clients escape in a parameter's section or name inside a dotted path (`sec%2Etion`).
_ESCAPES = (("%2E", "."), ("%24", "$"), ("%_%_", "__"))


def unescape_field(part: str) -> str:
    pieces = part.split("%%")
    for escaped, plain in _ESCAPES:
        pieces = [piece.replace(escaped, plain) for piece in pieces]
    return "%".join(pieces)


def project(doc: dict, only_fields) -> dict:
    """Keep only the dotted `only_fields` of a document (and always its id)."""
    fields = as_list(only_fields)
    if not fields:
        return doc
    result: dict = {"id": doc.get("id")}
    for dotted in fields:
        parts = [unescape_field(part) for part in str(dotted).split(".")]
        source, target = doc, result
        for index, part in enumerate(parts):
            if not isinstance(source, dict) or part not in source:
                break
            if index == len(parts) - 1:
                target[part] = source[part]
            else:
                source = source[part]
                existing = target.get(part)
                target = target.setdefault(part, {}) if isinstance(existing, dict | None) else {}
    return result


def dotted_values(doc: dict, dotted: str) -> list:
    value = doc
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return []
        value = value.get(part)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def matches_all_any(doc: dict, body: dict) -> bool:
    """`_all_` / `_any_`: {fields: [...], pattern: regex} over dotted fields (step caching)."""
    for key, combine in (("_all_", all), ("_any_", any)):
        spec = body.get(key)
        if not isinstance(spec, dict) or not spec.get("pattern"):
            continue
        pattern = re.compile(checked_regex(str(spec["pattern"])), re.IGNORECASE)
        fields = as_list(spec.get("fields"))
        results = [
            any(pattern.search(str(value)) for value in dotted_values(doc, field))
            for field in fields
        ]
        if not results or not combine(results):
            return False
    return True


DATE_COLUMNS = {
    "created": "created",
    "started": "started",
    "completed": "completed",
    # ClearML's last_update: a ping moves it too (documents.last_update_of); the status
    # change and the last change are the task's own last_update.
    "last_update": "clearml_last_update",
    "last_change": "last_update",
    "status_changed": "last_update",
}
_COMPARISONS = ((">=", "gte"), ("<=", "lte"), (">", "gt"), ("<", "lt"))


def _moment(text: str):
    try:
        moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise bad_request(f"invalid date {text!r}: use ISO 8601") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def date_conditions(value) -> dict:
    """ClearML's date filters as lookups: `">=2024-01-01T00:00"` (or a list of such), or
    the range form `[from, to]` where either end may be None."""
    values = value if isinstance(value, list) else [value]
    plain = [v for v in values if v is None or str(v)[:1] not in ("<", ">")]
    if isinstance(value, list) and len(value) == 2 and len(plain) == 2:
        ends = zip(("gte", "lte"), value, strict=True)
        return {lookup: _moment(end) for lookup, end in ends if end not in (None, "")}
    lookups = {}
    for item in values:
        text = str(item or "")
        for prefix, lookup in _COMPARISONS:
            if text.startswith(prefix):
                lookups[lookup] = _moment(text[len(prefix) :])
                break
        else:
            if text:
                raise bad_request(f"invalid date condition {text!r}: start it with >=, <=, > or <")
    return lookups


def date_filter(queryset, body: dict):
    """The date fields' conditions, and `_any_`/`_all_` with a `datetime` over them."""
    asked = {f for f in DATE_COLUMNS if body.get(f) not in (None, "", [])}
    for key in ("_any_", "_all_"):
        if isinstance(body.get(key), dict):
            asked.update(str(f) for f in as_list(body[key].get("fields")))
    if "last_update" in asked:
        queryset = queryset.annotate(
            clearml_last_update=Greatest(
                F("last_update"), Coalesce(F("clearml__last_ping"), F("last_update"))
            )
        )
    for field, column in DATE_COLUMNS.items():
        if body.get(field) not in (None, "", []):
            lookups = date_conditions(body[field])
            queryset = queryset.filter(**{f"{column}__{k}": v for k, v in lookups.items()})
    for key in ("_any_", "_all_"):
        spec = body.get(key)
        if not isinstance(spec, dict) or spec.get("datetime") in (None, ""):
            continue
        lookups = date_conditions(spec["datetime"])
        columns = {DATE_COLUMNS[f] for f in as_list(spec.get("fields")) if f in DATE_COLUMNS}
        conditions = [
            Q(**{f"{column}__{k}": v for k, v in lookups.items()}) for column in sorted(columns)
        ]
        if conditions:
            combined = conditions[0]
            for condition in conditions[1:]:
                combined = combined | condition if key == "_any_" else combined & condition
            queryset = queryset.filter(combined)
    return queryset


LIST_FILTER_FIELDS = ("tags", "system_tags")


def checked_list_filters(filters) -> dict:
    """clearml-server's `filters`: {field: {any|all: {include|exclude: [tag or None]}}}, where
    None stands for "no tags at all"; anything else is its validation error (400/12)."""
    if filters in (None, {}):
        return {}
    if not isinstance(filters, dict):
        raise bad_request("filters must be an object", subcode=12)
    for field, conditions in filters.items():
        if field not in LIST_FILTER_FIELDS or not isinstance(conditions, dict):
            raise bad_request(f"filters on {field!r} are not supported", subcode=12)
        for combine, parts in conditions.items():
            if combine not in ("any", "all") or not isinstance(parts, dict):
                raise bad_request(f"filters.{field}: use 'any' or 'all'", subcode=12)
            if set(parts) - {"include", "exclude"}:
                raise bad_request(f"filters.{field}.{combine}: use include/exclude", subcode=12)
    return filters


def matches_list_filters(doc: dict, filters: dict) -> bool:
    for field, conditions in filters.items():
        values = set(doc.get(field) or [])
        for combine, parts in conditions.items():
            results = []
            for op in ("include", "exclude"):
                wanted = parts.get(op) or []
                for tag in wanted if isinstance(wanted, list) else [wanted]:
                    present = not values if tag is None else str(tag) in values
                    results.append(present if op == "include" else not present)
            if results and not (any(results) if combine == "any" else all(results)):
                return False
    return True
