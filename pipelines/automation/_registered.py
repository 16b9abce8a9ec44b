"""What TaskScheduler and TriggerScheduler share: server-side rows kept by name."""

from dataclasses import dataclass, field
from typing import Any

from ..client import get_client

UNSUPPORTED = "is not supported: the server runs schedules and triggers, not this process"


@dataclass
class Registered:
    """A schedule or trigger as the server holds it (its REST answer in `data`)."""

    id: str
    name: str
    data: dict = field(repr=False, default_factory=dict)

    @property
    def paused(self) -> bool:
        return bool(self.data.get("paused"))

    @property
    def base_task_id(self) -> str | None:
        return self.data.get("base_task")

    def next_run(self) -> str | None:
        """The next fire time (ISO 8601, UTC), for a schedule that is not paused."""
        upcoming = self.data.get("upcoming") or []
        return upcoming[0] if upcoming else None


class ServerRegistry:
    """Rows of one kind (`schedules/` or `triggers/`) upserted by name."""

    def __init__(self, kind: str):
        self._kind = kind
        self._client = get_client()

    def all(self) -> list[Registered]:
        rows, page = [], 1
        while True:
            answer = self._client.get(f"{self._kind}/", page=page, page_size=100)
            rows += answer["results"]
            if not answer.get("next"):
                return [Registered(row["id"], row["name"], row) for row in rows]
            page += 1

    def named(self, name: str) -> list[dict]:
        return self._client.get(f"{self._kind}/", name=name, page_size=100)["results"]

    def upsert(self, body: dict) -> Registered:
        """Create the row, or change the one of that name: running a script that sets up
        its schedules again changes them instead of adding copies."""
        existing = self.named(body["name"])
        if len(existing) > 1:
            raise ValueError(
                f"several {self._kind} are named {body['name']!r}: remove or rename all but one"
            )
        if existing:
            row = self._client.patch(f"{self._kind}/{existing[0]['id']}/", body)
        else:
            row = self._client.post(f"{self._kind}/", body)
        return Registered(row["id"], row["name"], row)

    def find(self, key: str) -> list[dict]:
        """Rows whose id, name or base task is `key`."""
        return [r.data for r in self.all() if key in (r.id, r.name, r.data.get("base_task"))]

    def remove(self, key: str) -> bool:
        rows = self.find(key)
        for row in rows:
            self._client.delete(f"{self._kind}/{row['id']}/")
        return bool(rows)

    def set_paused(self, key: str, paused: bool) -> bool:
        rows = self.find(key)
        for row in rows:
            self._client.post(f"{self._kind}/{row['id']}/{'pause' if paused else 'resume'}/")
        return bool(rows)

    def firings(self, key: str) -> list[dict]:
        """The history of the row named (or with id) `key`, newest first."""
        rows = self.find(key)
        if not rows:
            return []
        return self._client.get(f"{self._kind}/{rows[0]['id']}/firings/", page_size=100)["results"]


def target(
    schedule_task_id: Any = None,
    *,
    queue: str | None = None,
    task_parameters: dict | None = None,
    target_project: str | None = None,
    pipeline_project: str | None = None,
    pipeline_name: str | None = None,
    pipeline_version: str | None = None,
    pipeline_parameters: dict | None = None,
) -> dict:
    """The body fields naming what to start: a task to clone, or a pipeline."""
    if pipeline_name:
        if schedule_task_id:
            raise ValueError("give a task to clone or a pipeline, not both")
        return {
            "target_kind": "pipeline",
            "pipeline_project": pipeline_project or "",
            "pipeline_name": pipeline_name,
            "pipeline_version": str(pipeline_version or ""),
            "pipeline_parameters": dict(pipeline_parameters or {}),
        }
    task_id = getattr(schedule_task_id, "id", schedule_task_id)
    if not task_id:
        raise ValueError("give schedule_task_id (a task to clone) or a pipeline to start")
    body = {
        "target_kind": "task",
        "base_task": str(task_id),
        "queue": queue or "default",
        "task_parameters": dict(task_parameters or {}),
    }
    if target_project:
        body["target_project"] = target_project
    return body


def refuse(**options: Any) -> None:
    """ClearML options that need this process to keep running."""
    for name, value in options.items():
        if value:
            raise NotImplementedError(f"{name} {UNSUPPORTED}")
