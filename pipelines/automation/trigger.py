"""`TriggerScheduler`, ClearML's names, with the triggers kept and fired by the server.

`add_task_trigger()` registers a trigger on the server at once (or updates the one of that
name); the server starts the task or pipeline when the event happens, at most once per
event, and `start()` returns: nothing has to keep running. Parameter values may name the
triggering task: `${trigger.id}` (ClearML's `${task.id}` too), `${trigger.name}`,
`${trigger.artifacts.NAME.url}`, `${trigger.parameters.Section/name}`.
"""

from typing import Any

from . import _registered


class TriggerScheduler:
    """Triggers on task and pipeline events."""

    def __init__(
        self,
        pooling_frequency_minutes: float = 3.0,
        sync_frequency_minutes: float = 15,
        force_create_task_name: str | None = None,
        force_create_task_project: str | None = None,
        **_ignored: Any,
    ):
        # ClearML polls every pooling_frequency_minutes; the server follows events as they
        # commit instead.
        self._triggers = _registered.ServerRegistry("triggers")

    def add_task_trigger(
        self,
        schedule_task_id: Any = None,
        schedule_queue: str | None = None,
        schedule_function=None,
        trigger_project: str | None = None,
        trigger_name: str | None = None,
        trigger_on_tags: list | None = None,
        trigger_on_status: list | None = None,
        trigger_exclude_dev_tasks: bool | None = None,
        trigger_on_metric: str | None = None,
        trigger_on_variant: str | None = None,
        trigger_on_threshold: float | None = None,
        trigger_on_sign: str | None = None,
        trigger_required_tags: list | None = None,
        name: str | None = None,
        target_project: str | None = None,
        add_tag: bool | str = True,
        single_instance: bool = False,
        reuse_task: bool = False,
        task_parameters: dict | None = None,
        task_overrides: dict | None = None,
        *,
        schedule_pipeline_project: str | None = None,
        schedule_pipeline_name: str | None = None,
        schedule_pipeline_version: str | None = None,
        pipeline_parameters: dict | None = None,
        trigger_on_artifact: str | None = None,
        paused: bool = False,
        _source: str = "task",
    ) -> bool:
        """Start a clone of `schedule_task_id` on `schedule_queue` (or the pipeline named by
        `schedule_pipeline_project/name/version`) when a task in `trigger_project` whose
        name matches `trigger_name` (a regular expression) ends with a status in
        `trigger_on_status`, gets all of `trigger_on_tags`, reports
        `trigger_on_metric/trigger_on_variant` past `trigger_on_threshold`
        (`trigger_on_sign` "max": at or above, "min" (default): at or below), or has an
        artifact named `trigger_on_artifact` ready. One event kind per trigger; tags given
        with another kind must be present (as `trigger_required_tags`)."""
        _registered.refuse(
            schedule_function=schedule_function,
            reuse_task=reuse_task,
            task_overrides=task_overrides,
        )
        body = _registered.target(
            schedule_task_id,
            queue=schedule_queue,
            task_parameters=task_parameters,
            target_project=target_project,
            pipeline_project=schedule_pipeline_project,
            pipeline_name=schedule_pipeline_name,
            pipeline_version=schedule_pipeline_version,
            pipeline_parameters=pipeline_parameters,
        )
        required = list(trigger_required_tags or [])
        metric = trigger_on_metric or trigger_on_variant or trigger_on_threshold is not None
        kinds = [k for k, v in (("metric", metric), ("status", trigger_on_status),
                                ("artifact", trigger_on_artifact)) if v]  # fmt: skip
        if len(kinds) > 1:
            raise ValueError(f"one event per trigger: {' and '.join(kinds)} given; use two")
        if kinds:
            required += [t for t in trigger_on_tags or [] if t not in required]
            event = kinds[0]
        elif trigger_on_tags:
            event = "tags"
        else:
            raise ValueError(
                "give the event: trigger_on_status, trigger_on_tags, trigger_on_metric or "
                "trigger_on_artifact"
            )
        name = name or body.get("base_task") or body.get("pipeline_name")
        body.update(
            name=name,
            source=_source,
            event=event,
            watch_project=trigger_project or None,
            name_pattern=trigger_name or "",
            required_tags=required,
            exclude_dev=bool(trigger_exclude_dev_tasks),
            single_instance=bool(single_instance),
            tags=[add_tag if isinstance(add_tag, str) else name] if add_tag else [],
            paused=bool(paused),
        )
        if event == "status":
            body["statuses"] = list(trigger_on_status)
        elif event == "tags":
            body["on_tags"] = list(trigger_on_tags)
        elif event == "artifact":
            body["artifact_name"] = trigger_on_artifact
        else:
            body.update(
                metric_title=trigger_on_metric or "",
                metric_series=trigger_on_variant or "",
                threshold=trigger_on_threshold,
                sign="max" if (trigger_on_sign or "").lower() in ("max", "maximum") else "min",
            )
        self._triggers.upsert(body)
        return True

    def add_pipeline_trigger(self, **options: Any) -> bool:
        """add_task_trigger() watching pipelines (their controllers) instead of tasks:
        `trigger_project` and `trigger_name` name the pipeline; its artifacts are its steps'
        (so `${trigger.artifacts.NAME.url}` reads one of them)."""
        return self.add_task_trigger(**options, _source="pipeline")

    def add_model_trigger(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("this server has no model registry: use add_task_trigger")

    def add_dataset_trigger(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(
            "this server has no dataset registry: trigger on the artifact with "
            "add_task_trigger(trigger_on_artifact=...)"
        )

    def get_triggers(self) -> list[_registered.Registered]:
        """Every trigger you can see (`.name`, `.id`, `.paused`, `.data`)."""
        return self._triggers.all()

    def remove_trigger(self, name: str) -> bool:
        return self._triggers.remove(name)

    def pause(self, name: str) -> bool:
        return self._triggers.set_paused(name, True)

    def resume(self, name: str) -> bool:
        return self._triggers.set_paused(name, False)

    def get_firings(self, name: str) -> list[dict]:
        """A trigger's history: each event, what it started, or why it did not."""
        return self._triggers.firings(name)

    def start(self) -> None:
        """Returns at once: the server follows the events (ClearML loops here)."""
        print(f"{len(self._triggers.all())} trigger(s) run on the server", flush=True)

    def start_remotely(self, queue: str = "services") -> None:
        """As start(): there is no trigger process to run on `queue`."""
        self.start()
