"""ClearML's API before 2.3 had one `tags` list, system tags (`archived`, `development`...)
among the others. A client asking for such a version sends them together and reads them
together: its `tags` are split into tags and system tags by name, as clearml-server splits
them, and the documents it reads have both in `tags`."""

# Per entity, the names clearml-server reads as system tags in an old client's `tags`.
SYSTEM_TAG_NAMES = {
    "model": frozenset({"active", "archived"}),
    "project": frozenset({"archived", "public", "default"}),
    "task": frozenset({"active", "archived", "development"}),
    "queue": frozenset({"default"}),
}
# And the prefixes of such names (annotation tools' system tags on tasks).
SYSTEM_TAG_PREFIXES = {"task": ("annotat", "-annotat")}
SERVICES = {"tasks": "task", "models": "model", "projects": "project", "queues": "queue"}
DOCUMENT_KEYS = ("task", "tasks", "model", "models", "project", "projects", "queue", "queues")


def is_legacy(version: str) -> bool:
    try:
        major, minor = (int(part) for part in str(version).split("."))
    except ValueError:
        return False
    return (major, minor) < (2, 3)


def _is_system(entity: str, tag: str) -> bool:
    names = SYSTEM_TAG_NAMES[entity]
    if tag in names or (tag.startswith("-") and tag[1:] in names):
        return True
    return tag.lower().startswith(SYSTEM_TAG_PREFIXES.get(entity, ()))


def upgrade_request(call) -> None:
    """An old client's `tags` as tags and system tags (unless it sent system tags too)."""
    entity = SERVICES.get(call.name.partition(".")[0])
    tags = call.body.get("tags")
    if entity is None or not is_legacy(call.version) or not isinstance(tags, list):
        return
    if call.body.get("system_tags"):
        return
    strings = [tag for tag in tags if isinstance(tag, str)]
    call.body["system_tags"] = [tag for tag in strings if _is_system(entity, tag)]
    call.body["tags"] = [tag for tag in tags if tag not in call.body["system_tags"]]


def downgrade_response(call, data):
    """The documents an old client reads, with their system tags in `tags` as well."""
    if not is_legacy(call.version) or not isinstance(data, dict):
        return data
    for key in DOCUMENT_KEYS:
        value = data.get(key)
        for doc in value if isinstance(value, list) else [value]:
            if isinstance(doc, dict) and doc.get("system_tags"):
                doc["tags"] = sorted({*(doc.get("tags") or []), *doc["system_tags"]})
    return data
