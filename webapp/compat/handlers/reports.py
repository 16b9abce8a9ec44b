"""reports.*: ClearML's reports, markdown written in its web UI. A report is a task of type
`report`, hidden and tagged `reports`, kept in a hidden `.reports` project under the
project it belongs to (`a/.reports`, or `.reports` for none); its text and the files it
shows are TaskExtra's `report` and `report_assets`. A `.reports` project is deleted once
its last report leaves it, and only when it holds nothing else."""

import textwrap
from dataclasses import replace

from django.db import transaction

from webapp.core import access, limits, policy, project_verbs, services
from webapp.core.choices import TaskStatus, TaskType
from webapp.core.errors import Conflict
from webapp.core.models import Project, Task

from ..convert import CLEARML_SYSTEM_TAG
from ..documents import check_project, extra_of, get_project, get_task, project_extra_of
from ..envelope import ApiError, bad_request
from ..query import as_list
from ..registry import endpoint
from ..status import change_status
from .projects import ensure_project
from .tasks import get_all as task_list
from .tasks import record_creator

REPORTS_PROJECT = ".reports"
REPORT_TAGS = ["hidden", "reports"]
REPORT_MAX = 1_000_000  # characters of markdown
ASSETS_MAX = 1_000
ASSET_MAX = 2_048
# What a published report may still change: the rest of it is what was published.
PUBLISHED_EDITABLE = {"name", "tags", "comment"}


def _name(value) -> str:
    if not isinstance(value, str) or len(value.strip()) < 3:
        raise bad_request("a report's name must be at least 3 characters long", subcode=12)
    return limits.text("name", value.strip(), limits.NAME_MAX)


def _assets(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request("report_assets must be a list of strings", subcode=12)
    if len(value) > ASSETS_MAX or any(len(v) > ASSET_MAX for v in value):
        raise bad_request(f"report_assets: at most {ASSETS_MAX} of {ASSET_MAX} characters")
    return value


def _content(body: dict) -> dict:
    """The report's own fields of a create or update body, checked."""
    fields = {}
    if body.get("report") is not None:
        fields["report"] = limits.text("report", body["report"], REPORT_MAX)
    if body.get("report_assets") is not None:
        fields["report_assets"] = _assets(body["report_assets"])
    return fields


def reports_project(call, owner_of_name: str) -> Project:
    """The `.reports` project of the project named `owner_of_name` ('' for the root),
    created hidden with its parents if missing, as the caller's projects are."""
    name = owner_of_name.strip("/")
    if name.rpartition("/")[2] != REPORTS_PROJECT:
        name = f"{name}/{REPORTS_PROJECT}" if name else REPORTS_PROJECT
    rule = policy.rule_for("project.create", call.user, call.key)
    target = ensure_project(name, access.project_owner(rule, call.user, call.key, name))
    extra = project_extra_of(target)
    if extra._state.adding or not extra.system_tags:
        extra.system_tags = list(REPORT_TAGS)
        extra.save()
    return target


def delete_if_empty(project_id: str) -> None:
    """A `.reports` project left without a report goes, if nothing else is in it."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None or project.name.rpartition("/")[2] != REPORTS_PROJECT:
        return
    if Task.objects.filter(project=project).exists():
        return
    try:
        services.delete_empty_projects([project])
    except Conflict:
        pass  # it holds something else (a model, a schedule): it stays


def get_report(call, verb: str | None = None) -> Task:
    task = get_task(call, call.require("task"), verb=verb)
    if task.type != TaskType.REPORT:
        raise ApiError(400, f"task {task.pk} is not a report", 150)
    return task


def _owner_project(call) -> str:
    """The name of the project a create or move puts the report under ('' for none)."""
    if call.body.get("project_name"):
        return str(call.body["project_name"])
    if call.body.get("project"):
        return get_project(call, call.body["project"], verb="project.read").name
    return ""


@endpoint("reports.create", verb="task.create")
def create(call):
    name = _name(call.require("name"))
    content = _content(call.body)
    tags = [str(t) for t in as_list(call.get("tags"))]
    owner_name = _owner_project(call)
    owner, parent = access.new_task_for(call.rule, call.user, call.key, parent=None, project=None)
    with transaction.atomic():
        target = reports_project(call, owner_name)
        check_project(call, target, verb="project.edit")
        task = services.create_task(
            user=owner,
            project_name=target.name,
            name=name,
            task_type=TaskType.REPORT,
            tags=tags,
            comment=limits.text("comment", call.get("comment", ""), limits.COMMENT_MAX),
            parent=parent,
        )
        task = services.edit_task(
            task, {"system_tags": [*REPORT_TAGS, CLEARML_SYSTEM_TAG]}, force=True
        )
        extra = extra_of(task)
        for field, value in content.items():
            setattr(extra, field, value)
        extra.save()
        record_creator(task, call.key)
    return {"id": task.id, "project_id": target.id}


@endpoint("reports.update", verb="task.edit")
def update(call):
    task = get_report(call)
    fields = {
        field: call.body[field]
        for field in ("name", "tags", "comment", "report", "report_assets")
        if call.body.get(field) is not None
    }
    if not fields:
        return {"updated": 0}
    if task.status != TaskStatus.CREATED and not set(fields) <= PUBLISHED_EDITABLE:
        raise ApiError(
            400, f"Invalid task status: report {task.pk} is {task.status}, not a draft", 110
        )
    changes = {}
    if "name" in fields:
        changes["name"] = fields["name"] = _name(fields["name"])
    if "tags" in fields:
        changes["tags"] = [str(t) for t in as_list(fields["tags"])]
    if "comment" in fields:
        changes["comment"] = fields["comment"]
    content = _content(fields)
    with transaction.atomic():
        if changes:
            services.edit_task(task, changes, force=True)
        if content:
            extra = extra_of(task)
            for field, value in content.items():
                setattr(extra, field, value)
            extra.save()
    if "tags" in fields:
        fields["tags"] = sorted(changes["tags"])
    if fields.get("report"):
        fields["report"] = textwrap.shorten(fields["report"], width=100)
    return {"updated": 1, "fields": fields}


@endpoint("reports.move", verb="task.edit")
def move(call):
    if "project" not in call.body and not call.body.get("project_name"):
        raise ApiError(400, "project or project_name is required", 11)
    task = get_report(call)
    source = task.project_id
    with transaction.atomic():
        target = reports_project(call, _owner_project(call))
        check_project(call, target, verb="project.edit")
        project_verbs.move_task(task, target)
        delete_if_empty(source)
    return {"project_id": target.pk}


@endpoint("reports.publish", verb="task.publish")
def publish(call):
    task = get_report(call)
    message = limits.text("message", call.get("message", ""), limits.STATUS_MESSAGE_MAX)
    task = change_status(
        task, TaskStatus.PUBLISHED, force=True, reason="published", message=message
    )
    return {"updated": 1, "fields": {"status": task.status}}


def _archiving(call, archive: bool) -> int:
    task = get_report(call)
    if task.archived == archive:
        return 0
    if archive:
        services.archive_task(task)
    else:
        services.restore_task(task)
    return 1


@endpoint("reports.archive", verb="task.edit")
def archive(call):
    return {"archived": _archiving(call, True)}


@endpoint("reports.unarchive", verb="task.edit")
def unarchive(call):
    return {"unarchived": _archiving(call, False)}


@endpoint("reports.delete", verb="task.delete")
def delete(call):
    task = get_report(call)
    if task.status != TaskStatus.CREATED and not task.archived and not call.flag("force"):
        raise ApiError(400, f"report {task.pk} is {task.status}: delete it with force", 123)
    with transaction.atomic():
        if task.status in (TaskStatus.QUEUED, TaskStatus.IN_PROGRESS):
            task = services.abort_task(task, "report deleted")  # only a report run as a task
        services.delete_task(task)
        delete_if_empty(task.project_id)
    return {"deleted": 1}


def _visible_reports(call):
    return access.visible_tasks(call.user, call.key).filter(type=TaskType.REPORT)


@endpoint("reports.get_tags", verb="task.read")
def get_tags(call):
    tags = {tag for row in _visible_reports(call).values_list("tags", flat=True) for tag in row}
    return {"tags": sorted(tags)}


def _reports_projects(call, wanted: list) -> list[str]:
    """The `.reports` projects of the projects asked for (None: the root), or themselves."""
    asked = {None if p is None else str(p) for p in wanted}
    found = []
    projects = access.visible_projects(call.user, call.key)
    by_name = dict(projects.values_list("name", "pk"))
    for name, pid in by_name.items():
        head, _, base = name.rpartition("/")
        if base == REPORTS_PROJECT and (pid in asked or by_name.get(head) in asked):
            found.append(pid)
    return found


@endpoint("reports.get_all_ex", verb="task.read")
def get_all_ex(call):
    body = {**call.body, "type": ["report"]}
    if "project" in body:
        wanted = body["project"] if isinstance(body["project"], list) else [body["project"]]
        body["project"] = _reports_projects(call, wanted)
        if not body["project"]:
            return {"tasks": []}
    return task_list(replace(call, name="tasks.get_all_ex", body=body))
