"""Trigger verbs, and firing them at most once per event.

Events are followed through core's listener points (hooks.STATUS_CHANGED for a task that
ends, hooks.py for tags, scalars and artifacts), registered by this app's AppConfig. A
listener runs inside the transaction of the event: it inserts one firing row per matching
trigger, unique by (trigger, event key), so the row commits with the event or not at all,
and a second notice of the same event adds nothing. After the commit the server worker is
asked to start it (`automation.start_trigger_firing`); the sweep starts any firing still
pending a few seconds later (its message was lost, the server worker was down), and the
start is conditional on the row still being pending, so it happens once.
"""

import functools
import logging
import math
import re
from datetime import timedelta

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from webapp.core import access
from webapp.core.choices import ACTIVE_STATES, TaskType
from webapp.core.errors import Conflict, DomainError, InvalidInput, NotFound
from webapp.core.models import PipelineRun, Project, Task

from . import jobs, launch, patterns, targets
from .choices import (
    TRIGGER_STATUSES,
    FiringState,
    MetricSign,
    TriggerEvent,
    TriggerSource,
)
from .models import Trigger, TriggerFiring

logger = logging.getLogger(__name__)

CONDITION_FIELDS = (
    "source",
    "event",
    "watch_project",
    "name_pattern",
    "required_tags",
    "statuses",
    "on_tags",
    "metric_title",
    "metric_series",
    "threshold",
    "sign",
    "artifact_name",
    "exclude_dev",
    "single_instance",
)
EDITABLE = {"name", "paused", *CONDITION_FIELDS, *targets.TARGET_FIELDS}
# A pending firing older than this is started by the sweep (its message was lost).
PENDING_GRACE = timedelta(seconds=2)


# ---------------------------------------------------------------- the verbs


@transaction.atomic
def create_trigger(*, user, name: str, **fields) -> Trigger:
    """A trigger of `user`'s, checked whole (nothing is kept when anything is refused)."""
    targets.refuse_unknown(fields, EDITABLE, editing=False)
    target, project = targets.checked_target(user, fields, allow_trigger=True)
    trigger = Trigger(
        name=targets.checked_name(name),
        project=project,
        created_by=user,
        paused=bool(fields.get("paused", False)),
        **target,
        **_checked_conditions(user, fields),
    )
    targets.refuse_duplicate_name(trigger)
    try:
        with transaction.atomic():
            trigger.save(force_insert=True)
    except IntegrityError as error:  # the same name created meanwhile
        raise Conflict(
            f"project {project.name!r} already has a trigger named {trigger.name!r}"
        ) from error
    return trigger


def edit_trigger(trigger: Trigger, changes: dict, *, user) -> Trigger:
    targets.refuse_unknown(changes, EDITABLE, editing=True)
    with transaction.atomic():
        trigger = Trigger.objects.select_for_update().get(pk=trigger.pk)
        targets.apply_target_changes(trigger, changes, user=user, allow_trigger=True)
        if set(changes) & set(CONDITION_FIELDS):
            current = {name: getattr(trigger, name) for name in CONDITION_FIELDS}
            for name, value in _checked_conditions(user, {**current, **changes}).items():
                setattr(trigger, name, value)
        if "name" in changes:
            trigger.name = targets.checked_name(changes["name"])
            targets.refuse_duplicate_name(trigger)
        if "paused" in changes:
            trigger.paused = bool(changes["paused"])
        trigger.updated = timezone.now()
        trigger.save()
    return trigger


def pause_trigger(trigger: Trigger) -> Trigger:
    """Events while paused do not fire it, then or later."""
    Trigger.objects.filter(pk=trigger.pk).update(paused=True, updated=timezone.now())
    trigger.refresh_from_db()
    return trigger


def resume_trigger(trigger: Trigger) -> Trigger:
    Trigger.objects.filter(pk=trigger.pk).update(paused=False, updated=timezone.now())
    trigger.refresh_from_db()
    return trigger


def delete_trigger(trigger: Trigger) -> None:
    Trigger.objects.filter(pk=trigger.pk).delete()


def _tag_list(value, field: str) -> list[str]:
    value = value or []
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise InvalidInput(f"{field} must be a list of tags", field=field)
    return list(dict.fromkeys(value))


def _checked_conditions(user, fields: dict) -> dict:
    source = fields.get("source") or TriggerSource.TASK
    event = fields.get("event")
    if source not in TriggerSource.values:
        raise InvalidInput(
            f"source must be one of {', '.join(TriggerSource.values)}", field="source"
        )
    if event not in TriggerEvent.values:
        raise InvalidInput(f"event must be one of {', '.join(TriggerEvent.values)}", field="event")
    watch = fields.get("watch_project")
    if watch:
        name = watch.name if isinstance(watch, Project) else str(watch)
        watch = access.visible_projects(user).filter(name=name).first()
        if watch is None:
            raise NotFound("project to watch not found", field="watch_project")
    pattern = patterns.checked(str(fields.get("name_pattern") or ""))
    clean = {
        "source": source,
        "event": event,
        "watch_project": watch or None,
        "name_pattern": pattern,
        "required_tags": _tag_list(fields.get("required_tags"), "required_tags"),
        "statuses": [],
        "on_tags": [],
        "metric_title": "",
        "metric_series": "",
        "threshold": None,
        "sign": MetricSign.MAX,
        "artifact_name": "",
        "exclude_dev": bool(fields.get("exclude_dev", False)),
        "single_instance": bool(fields.get("single_instance", False)),
    }
    if event == TriggerEvent.STATUS:
        statuses = fields.get("statuses") or []
        if not statuses or not isinstance(statuses, list) or set(statuses) - set(TRIGGER_STATUSES):
            raise InvalidInput(
                f"statuses: one or more of {', '.join(TRIGGER_STATUSES)}", field="statuses"
            )
        clean["statuses"] = list(dict.fromkeys(statuses))
    elif event == TriggerEvent.TAGS:
        clean["on_tags"] = _tag_list(fields.get("on_tags"), "on_tags")
        if not clean["on_tags"]:
            raise InvalidInput("on_tags: the tags to wait for", field="on_tags")
    elif event == TriggerEvent.METRIC:
        threshold = fields.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise InvalidInput("threshold must be a number", field="threshold")
        if not math.isfinite(threshold):
            raise InvalidInput("threshold must be finite", field="threshold")
        title = str(fields.get("metric_title") or "").strip()
        series = str(fields.get("metric_series") or "").strip()
        if not title or not series or len(title) > 255 or len(series) > 255:
            raise InvalidInput(
                "metric_title and metric_series name the scalar", field="metric_title"
            )
        sign = fields.get("sign") or MetricSign.MAX
        if sign not in MetricSign.values:
            raise InvalidInput("sign must be 'max' or 'min'", field="sign")
        clean.update(
            metric_title=title, metric_series=series, threshold=float(threshold), sign=sign
        )
    else:
        name = str(fields.get("artifact_name") or "").strip()
        if not name or len(name) > 255 or "." in name:
            raise InvalidInput("artifact_name: 1-255 characters, no dots", field="artifact_name")
        clean["artifact_name"] = name
    return clean


# ---------------------------------------------------------------- events (core's listeners)


def on_task_status_changed(task: Task) -> None:
    if task.status not in TRIGGER_STATUSES:
        return
    key = f"status:{task.pk}:{task.status}:{task.attempt}"
    _record(TriggerEvent.STATUS, task, key, {"status": task.status})


def on_tags_added(task: Task, added: list) -> None:
    def matches(trigger, subject):
        tags = set(subject.tags)
        return set(trigger.on_tags) <= tags and bool(set(trigger.on_tags) & set(added))

    _record(TriggerEvent.TAGS, task, f"tags:{task.pk}", {"tags": list(task.tags)}, matches)


def on_scalars_reported(task: Task, scalars: dict) -> None:
    def matches(trigger, subject):
        series = (trigger.metric_title, trigger.metric_series)
        values = [v for (t, s, _), v in sorted(scalars.items()) if (t, s) == series]
        past = [v for v in values if v is not None and math.isfinite(v) and _past(trigger, v)]
        if past:
            detail["value"] = past[-1]
        return bool(past)

    detail: dict = {}
    _record(TriggerEvent.METRIC, task, f"metric:{task.pk}:{task.attempt}", detail, matches)


def _past(trigger: Trigger, value: float) -> bool:
    if trigger.sign == MetricSign.MIN:
        return value <= trigger.threshold
    return value >= trigger.threshold


def on_artifact_ready(artifact) -> None:
    if not Trigger.objects.filter(paused=False, event=TriggerEvent.ARTIFACT).exists():
        return  # the common case: no task read for nothing
    task = Task.objects.filter(pk=artifact.task_id).first()
    if task is None:
        return
    key = f"artifact:{task.pk}:{task.attempt}:{artifact.name}"

    def matches(trigger, subject):
        return trigger.artifact_name == artifact.name

    _record(TriggerEvent.ARTIFACT, task, key, {"artifact": artifact.name}, matches)


def _record(event: str, task: Task, key: str, detail: dict, matches=None) -> None:
    """Insert the firing rows of the triggers `event` on `task` matches, in the event's
    transaction, and ask the server worker to start them once it commits."""
    if not _any_waiting(event):
        return  # the common case, on every report: one plain statement, no ORM query
    candidates = list(
        Trigger.objects.filter(paused=False, event=event).select_related("created_by")
    )
    created = []
    for trigger in candidates:
        subject = _subject(trigger, task)
        if subject is None or not _conditions_hold(trigger, subject):
            continue
        if matches is not None and not matches(trigger, subject):
            continue
        if event == TriggerEvent.STATUS and subject.status not in trigger.statuses:
            continue
        if _started_by(trigger, subject):
            continue  # what this trigger started does not fire it again
        if not _visible_to_owner(trigger, subject):
            continue  # nothing of another team's tasks reaches the trigger's history
        firing, was_created = TriggerFiring.objects.get_or_create(
            trigger=trigger,
            event_key=key if subject.pk == task.pk else f"{key}@{subject.pk}",
            defaults={"source_task": subject, "state": FiringState.PENDING, "detail": dict(detail)},
        )
        if was_created:
            created.append(firing.pk)
    for firing_id in created:
        transaction.on_commit(lambda firing_id=firing_id: jobs.start_trigger_firing_soon(firing_id))


def _subject(trigger: Trigger, task: Task) -> Task | None:
    """What the trigger watches that `task` is: the task, or for a pipeline trigger the
    controller of the run (`task` is the controller, or for artifacts one of its steps)."""
    if trigger.source == TriggerSource.TASK:
        return task if task.type != TaskType.CONTROLLER else None
    if task.type == TaskType.CONTROLLER and PipelineRun.objects.filter(controller=task).exists():
        return task
    if trigger.event == TriggerEvent.ARTIFACT and task.parent_id:
        parent = Task.objects.filter(pk=task.parent_id, type=TaskType.CONTROLLER).first()
        if parent is not None and PipelineRun.objects.filter(controller=parent).exists():
            return parent
    return None


def _conditions_hold(trigger: Trigger, subject: Task) -> bool:
    if trigger.watch_project_id and subject.project_id != trigger.watch_project_id:
        return False
    if trigger.name_pattern and not re.search(trigger.name_pattern, subject.name):
        return False
    if not set(trigger.required_tags) <= set(subject.tags or []):
        return False
    return not (
        trigger.exclude_dev and trigger.source == TriggerSource.TASK and not subject.queue_id
    )


def _visible_to_owner(trigger: Trigger, subject: Task) -> bool:
    owner = trigger.created_by
    return owner is not None and access.visible_tasks(owner).filter(pk=subject.pk).exists()


def _started_by(trigger: Trigger, subject: Task) -> bool:
    ids = [subject.pk, *([subject.parent_id] if subject.parent_id else [])]
    return TriggerFiring.objects.filter(trigger=trigger, task_id__in=ids).exists()


# ---------------------------------------------------------------- starting (the server worker)


def start_firing(firing_id: int) -> TriggerFiring | None:
    """Start a pending firing, once: the row is locked and must still be pending."""
    with transaction.atomic():
        firing = (
            TriggerFiring.objects.select_for_update()
            .filter(pk=firing_id, state=FiringState.PENDING)
            .first()
        )
        if firing is None:
            return None
        trigger = (
            Trigger.objects.select_related("created_by", "base_task", "target_project")
            .filter(pk=firing.trigger_id)
            .first()
        )
        subject = Task.objects.select_related("project").filter(pk=firing.source_task_id).first()
        if subject is None or not _visible_to_owner(trigger, subject):
            reason = "the triggering task is gone, or its owner can no longer see it"
            return _finish(firing, FiringState.FAILED, reason)
        owner = trigger.created_by
        if trigger.single_instance:
            running = trigger.firings.filter(
                state=FiringState.LAUNCHED, task__status__in=ACTIVE_STATES
            ).first()
            if running is not None:
                return _finish(
                    firing,
                    FiringState.SKIPPED,
                    f"what the trigger started before ({running.task_id}) is still running "
                    "(single instance)",
                )
        marker = {"trigger": trigger.pk, "event": firing.event_key}
        try:
            with transaction.atomic():
                started = launch.start(trigger, user=owner, subject=subject, marker=marker)
        except DatabaseError:
            raise
        except DomainError as error:
            return _finish(firing, FiringState.FAILED, error.message)
        except Exception as error:  # noqa: BLE001 - recorded, not retried for ever
            logger.exception("trigger firing %s could not start", firing_id)
            return _finish(firing, FiringState.FAILED, f"internal error: {error}")
        firing.task, firing.run, firing.launched = started.task, started.run, timezone.now()
        return _finish(firing, FiringState.LAUNCHED, "", fields=["task", "run", "launched"])


def _finish(firing: TriggerFiring, state: str, reason: str, fields=()) -> TriggerFiring:
    firing.state, firing.reason = state, reason
    firing.save(update_fields=["state", "reason", *fields])
    return firing


def start_pending(now=None) -> int:
    """The sweep's part: start firings whose message was lost or never handled."""
    before = (now or timezone.now()) - PENDING_GRACE
    ids = list(
        TriggerFiring.objects.filter(state=FiringState.PENDING, created__lte=before)
        .order_by("created")
        .values_list("pk", flat=True)[:500]
    )
    started = 0
    for firing_id in ids:
        try:
            started += start_firing(firing_id) is not None
        except Exception:  # noqa: BLE001 - one firing must not stop the others
            logger.exception("starting trigger firing %s failed", firing_id)
    return started


def _any_waiting(event: str) -> bool:
    """Whether an unpaused trigger waits on `event`."""
    with connection.cursor() as cursor:
        cursor.execute(_waiting_text(), [event, False])
        return cursor.fetchone() is not None


@functools.cache
def _waiting_text() -> str:
    quote, meta = connection.ops.quote_name, Trigger._meta
    event, paused = meta.get_field("event").column, meta.get_field("paused").column
    return (
        f"SELECT 1 FROM {quote(meta.db_table)} WHERE {quote(event)} = %s"  # noqa: S608
        f" AND {quote(paused)} = %s LIMIT 1"
    )
