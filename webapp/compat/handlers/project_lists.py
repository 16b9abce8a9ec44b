"""projects.get_all(_ex) and organization.get_entities_count: the caller's projects listed
as clearml-server lists them. Our projects nest by name (`a/b` is under `a`), so the tree
is read from the names of the projects the caller sees.

get_all_ex adds what the web UI's project pages show: each project's task statistics over
it and its subprojects (`include_stats`), what it holds itself (`check_own_contents`), its
dataset's size (`include_dataset_stats`), and the projects holding a kind of child
(`children_type`: datasets, pipelines or reports) or work of some users (`active_users`).
"""

import re
from dataclasses import replace
from datetime import timedelta

from django.utils import timezone

from webapp.core import access

from ..convert import CLEARML_SYSTEM_TAG
from ..documents import iso, project_doc
from ..envelope import bad_request
from ..query import (
    as_list,
    checked_regex,
    matches_list_filters,
    order_fields,
    page_slice,
    project,
    tags_match,
)
from ..registry import endpoint
from .models import get_all as model_list
from .models import visible_models
from .tasks import get_all as task_list

ORDER = {"name": "name", "created": "created", "last_update": "created", "id": "id"}
HIDDEN, ARCHIVED = "hidden", "archived"
# clearml-server's task statuses, each counted (0 when none) in a project's statistics.
STATUSES = (
    "created",
    "queued",
    "in_progress",
    "stopped",
    "published",
    "publishing",
    "closed",
    "failed",
    "completed",
    "unknown",
)
CHILDREN_TYPES = ("dataset", "pipeline", "report")
# The folders the SDK keeps datasets' and pipelines' projects in are not one themselves.
CONTAINER_NAMES = {"dataset": ".datasets", "pipeline": ".pipelines"}
STATES = ("active", "archived")


class Tree:
    """The projects one caller sees, as clearml-server's tree of parents and children."""

    def __init__(self, rows):
        self.rows = list(rows)
        self.by_id = {row.pk: row for row in self.rows}
        self.by_name = {row.name: row for row in self.rows}
        self._docs: dict[str, dict] = {}

    def doc(self, pid: str) -> dict:
        if pid not in self._docs:
            self._docs[pid] = project_doc(self.by_id[pid])
        return self._docs[pid]

    def parent_id(self, pid: str) -> str | None:
        head = self.by_id[pid].name.rpartition("/")[0]
        parent = self.by_name.get(head) if head else None
        return parent.pk if parent is not None else None

    def ancestors(self, pid: str) -> list[str]:
        found, current = [], self.parent_id(pid)
        while current is not None and current not in found:
            found.append(current)
            current = self.parent_id(current)
        return found

    def descendants(self, pid: str) -> list[str]:
        prefix = f"{self.by_id[pid].name}/"
        return [row.pk for row in self.rows if row.name.startswith(prefix)]

    def with_descendants(self, ids) -> set[str]:
        ids = {i for i in ids if i in self.by_id}
        return ids.union(*(self.descendants(i) for i in ids))

    def hidden(self, pid: str) -> bool:
        return HIDDEN in self.doc(pid)["system_tags"]

    def row(self, pid: str) -> dict:
        """A project as the rows statistics filter: its tags, system tags and user."""
        doc = self.doc(pid)
        return {"tags": doc["tags"], "system_tags": doc["system_tags"], "user": doc["user"]}


def tree_of(call, order_by=None) -> Tree:
    projects = access.visible_projects(call.user, call.key).select_related("clearml")
    return Tree(projects.order_by(*order_fields(order_by, ORDER, ["name"])))


# ----------------------------------------------------------------- rows and filters


def _task_rows(call, project_ids) -> list[dict]:
    tasks = access.visible_tasks(call.user, call.key).filter(project_id__in=list(project_ids))
    fields = ("project_id", "status", "archived", "started", "completed", "last_update")
    rows = []
    for values in tasks.values(*fields, "tags", "system_tags", "type", "created_by_id", "runtime"):
        system_tags = [t for t in values["system_tags"] or [] if t != CLEARML_SYSTEM_TAG]
        rows.append(
            {
                **{field: values[field] for field in fields},
                "project": values["project_id"],
                "tags": list(values["tags"] or []),
                "system_tags": system_tags + [ARCHIVED] * values["archived"],
                "type": values["type"],
                "user": str(values["created_by_id"] or ""),
                "runtime": values["runtime"] or {},
            }
        )
    return rows


def _model_rows(call, project_ids) -> list[dict]:
    models = visible_models(call).filter(project_id__in=list(project_ids))
    return [
        {
            "project": values["project_id"],
            "tags": list(values["tags"] or []),
            "system_tags": list(values["system_tags"] or []),
            "archived": ARCHIVED in (values["system_tags"] or []),
            "user": str(values["created_by_id"] or ""),
        }
        for values in models.values("project_id", "tags", "system_tags", "created_by_id")
    ]


def checked_filter(value, field: str) -> dict:
    """A statistics filter: {field: [tag, ...] or {any|all: {include|exclude: [...]}}}."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"{field} must be an object", subcode=12)
    for name, condition in value.items():
        if not condition or not isinstance(condition, list | dict):
            raise bad_request(f"{field}.{name}: a non-empty list or object is expected", subcode=12)
        if isinstance(condition, list) and not all(isinstance(v, str) for v in condition):
            raise bad_request(f"{field}.{name}: only strings are allowed", subcode=12)
    return value


def matches(row: dict, filter_: dict, users=()) -> bool:
    if users and row.get("user") not in users:
        return False
    for name, condition in filter_.items():
        value = row.get(name)
        values = list(value) if isinstance(value, list) else ([value] if value else [])
        if isinstance(condition, dict):
            if not matches_list_filters({name: values}, {name: condition}):
                return False
        elif not tags_match(values, condition):
            return False
    return True


def _in_state(row: dict, state: str | None, filter_: dict) -> bool:
    """clearml-server counts only the wanted state's rows, unless the filter itself says
    whether archived rows are wanted."""
    system_tags = filter_.get("system_tags") or []
    if state is None or not isinstance(system_tags, list):
        return True
    if {ARCHIVED, f"-{ARCHIVED}"} & set(system_tags):
        return True
    return row["archived"] == (state == "archived")


# ----------------------------------------------------------------- children selection


def _child_tags_match(tags, body: dict) -> bool:
    if body.get("children_tags_filter"):
        return matches_list_filters({"tags": tags}, {"tags": body["children_tags_filter"]})
    if body.get("children_tags"):
        return tags_match(tags, body["children_tags"])
    return True


def select_by_children(call, tree: Tree, body: dict, requested: list[str]):
    """(the projects to list, every project on the way to a wanted child): the projects that
    hold a child of `children_type` (with `children_tags`), or work of `active_users`, and
    all their parents; of `requested` only, when ids were asked for."""
    users = {str(u) for u in as_list(body.get("active_users"))}
    kind = body.get("children_type")
    scope = tree.with_descendants(requested) if requested else set(tree.by_id)
    found: set[str] = set()
    if kind in CONTAINER_NAMES:
        for pid in tree.by_id:
            doc = tree.doc(pid)
            if (
                kind in doc["system_tags"]
                and doc["basename"] != CONTAINER_NAMES[kind]
                and _child_tags_match(doc["tags"], body)
                and (not users or doc["user"] in users)
                and (not requested or tree.parent_id(pid) in scope)
            ):
                found.add(pid)
    elif kind == "report":
        for row in _task_rows(call, scope):
            if "reports" in row["system_tags"] and _child_tags_match(row["tags"], body):
                if not users or row["user"] in users:
                    found.add(row["project"])
    else:
        found = {pid for pid in scope if tree.doc(pid)["user"] in users}
        for row in _task_rows(call, scope) + _model_rows(call, scope):
            if row["user"] in users:
                found.add(row["project"])
    if not found:
        return [], set()
    selected = found.union(*(tree.ancestors(pid) for pid in found))
    listed = [pid for pid in requested if pid in selected] if requested else sorted(selected)
    return listed, selected


# ----------------------------------------------------------------- the list


def _raw_list(value) -> list:
    return value if isinstance(value, list) else [value]


def listed_projects(call, body: dict, tree: Tree) -> tuple[list[str], set | None]:
    """The ids of the projects `body` asks for, in order, and the selection children made."""
    requested = [str(i) for i in as_list(body.get("id"))]
    ids, selected = requested, None
    if body.get("children_type") not in (None, "", *CHILDREN_TYPES):
        raise bad_request(f"children_type must be one of {', '.join(CHILDREN_TYPES)}", subcode=12)
    if body.get("active_users") or body.get("children_type"):
        ids, selected = select_by_children(call, tree, body, requested)
        if not ids:
            return [], selected
    wanted = set(ids)
    name = re.compile(checked_regex(str(body["name"])), re.IGNORECASE) if body.get("name") else None
    basename = (
        re.compile(rf"(^|/){checked_regex(str(body['basename']))}$", re.IGNORECASE)
        if body.get("basename")
        else None
    )
    shallow = bool(body.get("shallow_search"))
    parents = None
    if "parent" in body and body["parent"] not in (None, []):
        parents = {None if p is None else str(p) for p in _raw_list(body["parent"])}
    elif shallow:
        parents = {None}
    search_hidden = bool(body.get("search_hidden"))
    answer = []
    for row in tree.rows:
        pid, doc = row.pk, tree.doc(row.pk)
        if wanted and pid not in wanted:
            continue
        if name is not None and not name.search(row.name):
            continue
        if basename is not None and not basename.search(row.name):
            continue
        if parents is not None:
            # Shallow: right under a parent; deep: anywhere below one (None: the root).
            if shallow and tree.parent_id(pid) not in parents:
                continue
            if not shallow and None not in parents and not parents & set(tree.ancestors(pid)):
                continue
        if not search_hidden and not requested and tree.hidden(pid):
            continue
        if body.get("system_tags") and not tags_match(doc["system_tags"], body["system_tags"]):
            continue
        if body.get("tags") and not tags_match(doc["tags"], body["tags"]):
            continue
        answer.append(pid)
    return answer, selected


@endpoint("projects.get_all", "projects.get_all_ex", verb="project.read")
def get_all(call):
    body = call.body
    extended = call.name == "projects.get_all_ex"
    tree = tree_of(call, body.get("order_by"))
    ids, selected = listed_projects(call, body if extended else _plain(body), tree)
    ids = ids[page_slice(body)]
    docs = []
    for pid in ids:
        doc = dict(tree.doc(pid))
        parent = tree.parent_id(pid)
        doc["parent"] = (
            {"id": parent, "name": tree.by_id[parent].name} if extended and parent else parent
        )
        if extended and body.get("search_hidden") and tree.hidden(pid):
            doc["hidden"] = True
        docs.append(doc)
    if extended and docs:
        _add_contents(call, body, tree, docs, selected)
    return {"projects": [project(doc, body.get("only_fields")) for doc in docs]}


def _plain(body: dict) -> dict:
    """projects.get_all reads no children selection (that is get_all_ex's)."""
    return {k: v for k, v in body.items() if k not in ("active_users", "children_type")}


# ----------------------------------------------------------------- contents and statistics


def stats_filter(body: dict) -> tuple[dict, bool]:
    """(the filter over what statistics count, whether hidden subprojects count too), as
    clearml-server derives them from `children_type` when no filter is given."""
    given = checked_filter(body.get("include_stats_filter"), "include_stats_filter")
    kind = body.get("children_type")
    if given or not kind:
        return given, bool(body.get("search_hidden"))
    if body.get("children_tags_filter"):
        tags = {"tags": body["children_tags_filter"]}
    elif body.get("children_tags"):
        tags = {"tags": as_list(body["children_tags"])}
    else:
        tags = {}
    if kind == "pipeline":
        return {**tags, "system_tags": ["pipeline"], "type": ["controller"]}, True
    if kind == "report":
        return {**tags, "system_tags": ["reports"], "type": ["report"]}, True
    return tags, bool(body.get("search_hidden"))


def _state(body: dict) -> str | None:
    state = body.get("stats_for_state", "active") if "stats_for_state" in body else "active"
    if state not in (None, *STATES):
        raise bad_request("stats_for_state must be active or archived", subcode=12)
    return state


def _add_contents(call, body: dict, tree: Tree, docs: list[dict], selected) -> None:
    filter_, stats_hidden = stats_filter(body)
    state = _state(body)
    users = {str(u) for u in as_list(body.get("active_users"))}
    datasets = body.get("children_type") == "dataset"
    ids = [doc["id"] for doc in docs]
    with_children = body.get("stats_with_children", True) is not False

    def children(pid: str, search_hidden: bool) -> list[str]:
        if not with_children:
            return []
        return [
            child
            for child in tree.descendants(pid)
            if (search_hidden or not tree.hidden(child)) and (selected is None or child in selected)
        ]

    system_tags = filter_.get("system_tags")
    system_tags = system_tags if isinstance(system_tags, list) else []
    dataset_filter = {**filter_, "system_tags": [*system_tags, "dataset"]}
    if body.get("check_own_contents"):
        if datasets:
            for doc in docs:
                doc["own_datasets"] = sum(
                    tree.parent_id(pid) == doc["id"]
                    and matches(tree.row(pid), dataset_filter, users)
                    for pid in tree.by_id
                )
        else:
            tasks, models = _task_rows(call, ids), _model_rows(call, ids)
            for doc in docs:
                doc["own_tasks"], doc["own_models"] = (
                    sum(
                        row["project"] == doc["id"]
                        and matches(row, filter_, users)
                        and _in_state(row, state, filter_)
                        for row in rows
                    )
                    for rows in (tasks, models)
                )
    if body.get("include_stats"):
        if datasets:
            for doc in docs:
                subprojects = children(doc["id"], True)
                under = {doc["id"], *subprojects}
                found = [
                    pid
                    for pid in tree.by_id
                    if tree.parent_id(pid) in under
                    and matches(tree.row(pid), dataset_filter, users)
                ]
                tags = sorted({tag for pid in found for tag in tree.doc(pid)["tags"]})
                doc["stats"] = {"datasets": {"count": len(found), "tags": tags}}
                doc["sub_projects"] = _named(tree, subprojects)
        else:
            subprojects = {doc["id"]: children(doc["id"], stats_hidden) for doc in docs}
            every = set(ids).union(*subprojects.values())
            rows = [row for row in _task_rows(call, every) if matches(row, filter_, users)]
            for doc in docs:
                under = {doc["id"], *subprojects[doc["id"]]}
                mine = [row for row in rows if row["project"] in under]
                doc["stats"] = {
                    section: task_stats([r for r in mine if r["archived"] == (section == ARCHIVED)])
                    for section in STATES
                    if state is None or state == section
                }
                doc["sub_projects"] = _named(tree, subprojects[doc["id"]])
    if body.get("include_dataset_stats"):
        for doc in docs:
            doc["dataset_stats"] = dataset_stats(call, doc["id"])


def _named(tree: Tree, ids) -> list[dict]:
    return sorted(
        ({"id": pid, "name": tree.by_id[pid].name} for pid in ids), key=lambda p: p["name"]
    )


def task_stats(rows: list[dict]) -> dict:
    """One state's statistics of tasks: how many in each status, their run time (whole
    seconds each), how many ended within a day, and when the last of them started."""
    counts = dict.fromkeys(STATUSES, 0)
    runtime, recent, last_started = 0, 0, None
    day_ago = timezone.now() - timedelta(hours=24)
    for row in rows:
        counts[row["status"] if row["status"] in counts else "unknown"] += 1
        started, completed = row["started"], row["completed"]
        if started and completed and completed > started:
            runtime += int((completed - started).total_seconds())
        if (
            completed
            and completed > day_ago
            and row["status"] not in ("queued", "in_progress", "failed")
        ):
            recent += 1
        if started and (last_started is None or started > last_started):
            last_started = started
    return {
        "status_count": counts,
        "total_tasks": sum(counts.values()),
        "total_runtime": runtime,
        "completed_tasks_24h": recent,
        "last_task_run": iso(last_started),
    }


def dataset_stats(call, project_id: str) -> dict | None:
    """A dataset project's size as its last changed active task with a runtime says it."""
    rows = [row for row in _task_rows(call, [project_id]) if not row["archived"] and row["runtime"]]
    if not rows:
        return None
    runtime = max(rows, key=lambda row: row["last_update"])["runtime"]
    return {
        "file_count": runtime.get("ds_file_count", 0),
        "total_size": runtime.get("ds_total_size", 0),
    }


# ----------------------------------------------------------------- counts


def _query(call, field: str) -> dict | None:
    value = call.body.get(field)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request(f"{field} must be an object", subcode=12)
    return dict(value)


@endpoint("organization.get_entities_count", verb="project.read")
def entities_count(call):
    """How many projects, tasks, models, pipelines, datasets and reports each query finds,
    each query being the body of that kind's get_all."""
    users = {str(u) for u in as_list(call.body.get("active_users"))}
    search_hidden = call.flag("search_hidden")
    answer = {}
    tree = None
    for field in ("projects", "pipelines", "datasets"):
        query = _query(call, field)
        if query is None:
            continue
        tree = tree or tree_of(call)
        if users:
            query = {**query, "active_users": list(users)}
        # Pipelines and datasets live in hidden projects; plain projects count only shown.
        query["search_hidden"] = field != "projects" or search_hidden
        answer[field] = len(listed_projects(call, query, tree)[0])
    for field in ("tasks", "reports"):
        query = _query(call, field)
        if query is None:
            continue
        if field == "reports":
            query.update(type=["report"], include_subprojects=True)
        query["only_fields"] = ["id", "user", "system_tags"]
        docs = task_list(replace(call, name="tasks.get_all", body=query))["tasks"]
        answer[field] = sum(
            (not users or doc["user"] in users)
            and (field == "reports" or search_hidden or HIDDEN not in doc["system_tags"])
            for doc in docs
        )
    query = _query(call, "models")
    if query is not None:
        query["only_fields"] = ["id", "user"]
        docs = model_list(replace(call, name="models.get_all", body=query))["models"]
        answer["models"] = sum(not users or doc["user"] in users for doc in docs)
    return answer
