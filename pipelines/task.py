"""`Task`: ClearML's task API on top of the REST client."""

import atexit
import os
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

from . import autocapture, console, model_capture, parameters
from .artifacts import Artifacts
from .client import ApiError, Client, get_client
from .liveness import Pinger
from .script_info import capture_script
from .serialization import serialize

TASK_ID_ENV = "PIPELINES_TASK_ID"


class TaskTypes:
    training = "training"
    testing = "testing"
    inference = "inference"
    data_processing = "data_processing"
    application = "application"
    monitor = "monitor"
    controller = "controller"
    optimizer = "optimizer"
    service = "service"
    qc = "qc"
    custom = "custom"


class Task:
    """A task on the server. `Task.init` makes (or, under a worker, attaches to) the current one."""

    TaskTypes = TaskTypes
    _current: "Task | None" = None
    _lock = threading.Lock()

    def __init__(self, data: dict, client: Client | None = None):
        self._client = client or get_client()
        self._data = data
        self._running_remotely = False
        self._finished = False

    # ------------------------------------------------------------ creating and finding

    @classmethod
    def init(
        cls,
        project_name: str | None = None,
        task_name: str | None = None,
        task_type: str = TaskTypes.training,
        tags: list[str] | None = None,
        auto_connect_frameworks: bool | dict = True,
        **_ignored: Any,
    ) -> "Task":
        """The task of this process: attached when a worker runs us, created otherwise.

        `auto_connect_frameworks` (ClearML's): figures shown with plt.show() become plots
        and models saved with joblib, pickle, torch or Keras become output models; False
        turns that off, a dict such as {"matplotlib": False} turns off some of it.
        """
        with cls._lock:
            if cls._current is not None:
                return cls._current
            client = get_client()
            task_id = os.environ.get(TASK_ID_ENV)
            if task_id:
                task = cls(client.get(f"tasks/{task_id}/"), client)
                task._running_remotely = True
            else:
                if not project_name or not task_name:
                    raise ValueError("Task.init needs project_name and task_name")
                data = client.post(
                    "tasks/",
                    {
                        "project_name": project_name,
                        "name": task_name,
                        "type": str(task_type),
                        "tags": list(tags or []),
                        "script": capture_script(),
                        "start_running": True,
                    },
                )
                task = cls(data, client)
                task._install_exit_hooks()
                console.capture(task)
                Pinger(client, task.id, done=lambda: task._finished).start()
            cls._current = task
            enabled = _frameworks(auto_connect_frameworks)
            if enabled.get("matplotlib", True):
                autocapture.install()
            model_capture.install(enabled)
            return task

    @classmethod
    def current_task(cls) -> "Task | None":
        return cls._current

    @classmethod
    def get_task(
        cls,
        task_id: str | None = None,
        project_name: str | None = None,
        task_name: str | None = None,
    ) -> "Task":
        """By id, or the newest task with this name in this project."""
        client = get_client()
        if task_id:
            return cls(client.get(f"tasks/{task_id}/"), client)
        if not task_name:
            raise ValueError("Task.get_task needs task_id, or project_name and task_name")
        query = {"name": task_name, "ordering": "-created", "page_size": 1}
        if project_name:
            query["project_name"] = project_name
        rows = client.get("tasks/", **query)["results"]
        if not rows:
            where = f" in project {project_name!r}" if project_name else ""
            raise ValueError(f"no task named {task_name!r}{where}")
        return cls(client.get(f"tasks/{rows[0]['id']}/"), client)

    @classmethod
    def get_tasks(cls, project_name=None, task_name=None, status=None) -> list["Task"]:
        client = get_client()
        query: dict = {"page_size": 1000}
        if project_name:
            query["project_name"] = project_name
        if task_name:
            query["name"] = task_name
        if status:
            query["status"] = ",".join(status) if isinstance(status, list | tuple) else status
        return [cls(row, client) for row in client.get("tasks/", **query)["results"]]

    @classmethod
    def clone(
        cls,
        source_task: "Task | str",
        name: str | None = None,
        comment: str | None = None,
        parent: str | None = None,
        project: str | None = None,
    ) -> "Task":
        """A new draft copied from `source_task` (its parent is the source unless given)."""
        client = get_client()
        source_id = source_task.id if isinstance(source_task, Task) else str(source_task)
        body: dict = {"parent": parent}
        if name:
            body["name"] = name
        if project:
            body["project_name"] = project
        return cls(client.post(f"tasks/{source_id}/clone/", body), client)

    @classmethod
    def enqueue(cls, task: "Task | str", queue_name: str = "default", **_ignored) -> dict:
        client = get_client()
        task_id = task.id if isinstance(task, Task) else str(task)
        return client.post(f"tasks/{task_id}/enqueue/", {"queue": queue_name})

    @classmethod
    def dequeue(cls, task: "Task | str") -> dict:
        task_id = task.id if isinstance(task, Task) else str(task)
        return get_client().post(f"tasks/{task_id}/dequeue/")

    # ------------------------------------------------------------ properties

    @property
    def id(self) -> str:
        return self._data["id"]

    @property
    def name(self) -> str:
        return self._data["name"]

    @property
    def project(self) -> str:
        return self._data["project"]

    def get_project_name(self) -> str:
        return self._data["project_name"]

    @property
    def task_type(self) -> str:
        return self._data["type"]

    @property
    def status(self) -> str:
        self.reload()
        return self._data["status"]

    def get_status(self) -> str:
        return self.status

    @property
    def data(self) -> dict:
        return self._data

    @property
    def parent(self) -> str | None:
        return self._data.get("parent")

    def reload(self) -> "Task":
        self._data = self._client.get(f"tasks/{self.id}/")
        return self

    def running_locally(self) -> bool:
        return not self._running_remotely

    @property
    def artifacts(self) -> Artifacts:
        return Artifacts(self._client.get(f"tasks/{self.id}/artifacts/"))

    # ------------------------------------------------------------ parameters

    def connect(self, mutable: Any, name: str | None = None) -> Any:
        """Register a dict (or an object's attributes) as the parameters of section `name`.

        Under a worker the server's values (possibly overridden by a pipeline) replace the
        local ones, cast back to the types of the local defaults.
        """
        from .model import InputModel, OutputModel

        if isinstance(mutable, InputModel | OutputModel):
            mutable.connect(self, name)
            return mutable
        section = name or "General"
        is_dict = isinstance(mutable, dict)
        values = mutable if is_dict else _public_attributes(mutable)
        if self._running_remotely:
            stored = self.reload()._data["hyperparameters"].get(section, {})
            for key, entry in stored.items():
                default = values.get(key)
                typed = parameters.cast(entry.get("value", ""), entry.get("type", ""), default)
                if is_dict:
                    mutable[key] = typed
                else:
                    setattr(mutable, key, typed)
            missing = {k: v for k, v in values.items() if k not in stored}
            if missing:
                self._put_parameters({section: missing})
        else:
            self._put_parameters({section: values})
        return mutable

    def connect_configuration(self, configuration: Any, name: str | None = None, **_):
        """Store a configuration object (dict or text or a file path); remote reads win."""
        key = name or "General"
        if self._running_remotely:
            entry = self.reload()._data["configuration"].get(key)
            if entry is not None:
                typed = parameters.cast(entry["value"], entry.get("type", ""))
                if isinstance(configuration, dict) and isinstance(typed, dict):
                    configuration.clear()
                    configuration.update(typed)
                    return configuration
                return typed
        value = configuration
        if isinstance(configuration, str | Path) and Path(configuration).is_file():
            value = Path(configuration).read_text()
        self._client.put(
            f"tasks/{self.id}/configuration/", {"values": {key: parameters.encode(value)}}
        )
        return configuration

    def _put_parameters(self, sections: dict) -> None:
        encoded = {
            section: {key: parameters.encode(value) for key, value in values.items()}
            for section, values in sections.items()
        }
        self._data["hyperparameters"] = self._client.put(
            f"tasks/{self.id}/hyperparameters/", {"values": encoded}
        )

    def get_parameters(self, cast: bool = False) -> dict:
        """{"Section/name": value}; strings as stored, or typed with cast=True."""
        hyper = self.reload()._data["hyperparameters"]
        if not cast:
            return parameters.flatten(hyper)
        return {
            f"{section}/{key}": parameters.cast(entry["value"], entry.get("type", ""))
            for section, entries in hyper.items()
            for key, entry in entries.items()
        }

    def get_parameters_as_dict(self, cast: bool = False) -> dict:
        return parameters.nest(self.get_parameters(cast=cast))

    def get_parameter(self, name: str, default: Any = None, cast: bool = False) -> Any:
        return self.get_parameters(cast=cast).get(name, default)

    def set_parameters(self, *args: dict, **kwargs: Any) -> None:
        """Set parameters given as {"Section/name": value} (no section means General)."""
        flat: dict = {}
        for arg in args:
            flat.update(arg)
        flat.update(kwargs)
        self._put_parameters(parameters.nest(flat))

    def set_parameter(self, name: str, value: Any) -> None:
        self.set_parameters({name: value})

    # ------------------------------------------------------------ running

    def execute_remotely(
        self, queue_name: str | None = None, clone: bool = False, exit_process: bool = True
    ) -> "Task | None":
        """On a dev machine: register this run as a draft (optionally enqueue it) and exit.

        Under a worker this does nothing, so the same script runs its body there.
        """
        if self._running_remotely:
            return None
        target = self
        if clone:
            target = Task.clone(self)
        else:
            self._data = self._client.post(f"tasks/{self.id}/draft/")
            self._finished = True
        if queue_name:
            Task.enqueue(target, queue_name=queue_name)
        if exit_process:
            self._finished = True
            sys.stdout.flush()
            sys.exit(0)
        return target

    def upload_artifact(
        self,
        name: str,
        artifact_object: Any,
        metadata: dict | None = None,
        wait_on_upload: bool = True,
        **_ignored: Any,
    ) -> bool:
        """Serialise (see serialization.py), declare, stream the bytes; ready when verified."""
        with tempfile.TemporaryDirectory(prefix="pipelines-artifact-") as workdir:
            packed = serialize(name, artifact_object, Path(workdir))
            declared = self._client.post(
                f"tasks/{self.id}/artifacts/",
                {
                    "name": name,
                    "kind": packed.kind,
                    "filename": packed.filename,
                    "size": packed.path.stat().st_size,
                    # the sha256 is sent after the bytes, hashed as they are sent (put_file)
                    "metadata": {**packed.metadata, **(metadata or {})},
                    "preview": packed.preview,
                    "content_type": packed.content_type,
                },
            )
            self._client.put_file(f"artifacts/{declared['id']}/content/", packed.path)
        return True

    def add_tags(self, tags: str | list[str]) -> None:
        """Add tags to the task (at any time, as ClearML allows)."""
        new = [tags] if isinstance(tags, str) else [str(t) for t in tags]
        current = self.reload()._data.get("tags") or []
        merged = current + [t for t in new if t not in current]
        self._data = self._client.patch(f"tasks/{self.id}/", {"tags": merged})

    def get_tags(self) -> list[str]:
        return list(self.reload()._data.get("tags") or [])

    def set_comment(self, comment: str) -> None:
        """Set the task's comment (its description)."""
        self._data = self._client.patch(f"tasks/{self.id}/", {"comment": str(comment)})

    @property
    def comment(self) -> str:
        return self._data.get("comment", "")

    def get_reported_scalars(self, max_samples: int = 0, x_axis: str = "iter") -> dict:
        """{title: {series: {"x": [iterations], "y": [values]}}}, everything reported so
        far (thinned to about `max_samples` points per series when given)."""
        self._flush_reports()
        query = {"max_points": int(max_samples)} if max_samples else {}
        grouped = self._client.get(f"tasks/{self.id}/scalars/", **query)
        for series_map in grouped.values():
            for entry in series_map.values():
                entry["y"] = [_wire_number(v) for v in entry["y"]]
        return grouped

    def get_reported_single_values(self) -> dict:
        """{name: value} of what was reported with Logger.report_single_value()."""
        self._flush_reports()
        return {
            name: _wire_number(value)
            for name, value in self._client.get(f"tasks/{self.id}/single-values/").items()
        }

    def get_reported_single_value(self, name: str) -> float | None:
        return self.get_reported_single_values().get(name)

    @property
    def models(self) -> dict:
        """{"input": [InputModel...], "output": [Model...]}, as ClearML's task.models."""
        from .model import BaseModel, InputModel

        listed = self._client.get(f"tasks/{self.id}/models/")
        output = [BaseModel(row) for row in listed["output"]]
        inputs = []
        for link in listed["input"]:
            model = InputModel.__new__(InputModel)
            BaseModel.__init__(model, link["model"])
            inputs.append(model)
        return {"input": inputs, "output": output}

    def get_logger(self):
        from .logger import Logger

        return Logger.for_task(self)

    def mark_started(self) -> None:
        self._data = self._client.post(f"tasks/{self.id}/started/")

    def mark_completed(self, status_message: str = "") -> None:
        self._finish("completed", status_message)

    def mark_failed(self, status_reason: str = "", status_message: str = "") -> None:
        self._finish("failed", status_message, status_reason)

    def mark_stopped(self, status_message: str = "") -> None:
        self._data = self._client.post(f"tasks/{self.id}/abort/", {"message": status_message})
        self._finished = True

    def _finish(self, outcome: str, message: str = "", reason: str = "") -> None:
        self._flush_reports()
        self._data = self._client.post(
            f"tasks/{self.id}/{outcome}/", {"message": message, "reason": reason}
        )
        self._finished = True

    def close(self) -> None:
        """End a local run as completed (a worker reports the end of its own runs)."""
        self._flush_reports()
        if not self._running_remotely and not self._finished:
            try:
                if self.status == "in_progress":
                    self._finish("completed")
            except ApiError:
                pass
        self._finished = True
        if Task._current is self:
            Task._current = None

    def flush(self, wait_for_uploads: bool = True) -> bool:
        self._flush_reports()
        return True

    def _flush_reports(self) -> None:
        from .logger import Logger

        Logger.flush_task(self.id)

    def _install_exit_hooks(self) -> None:
        previous_hook = sys.excepthook

        def on_exception(exc_type, exc, tb):
            if not self._finished and not issubclass(exc_type, SystemExit | KeyboardInterrupt):
                text = "".join(traceback.format_exception(exc_type, exc, tb))[-4000:]
                try:
                    self._finish("failed", text, f"{exc_type.__name__}: {exc}"[:250])
                except ApiError:
                    pass
            previous_hook(exc_type, exc, tb)

        sys.excepthook = on_exception
        atexit.register(self.close)

    def __repr__(self) -> str:
        return f"<Task {self.id} {self.name!r} {self._data.get('status')}>"


def _frameworks(setting: bool | dict) -> dict[str, bool]:
    """ClearML's auto_connect_frameworks as {framework: on}: True for all, False for none."""
    keys = ("matplotlib", *model_capture.FRAMEWORK_KEYS)
    if isinstance(setting, dict):
        return {key: bool(setting.get(key, True)) for key in keys}
    return dict.fromkeys(keys, bool(setting))


def _wire_number(value):
    """The API's "NaN" / "Infinity" strings back as floats."""
    if isinstance(value, str):
        return float(value.replace("Infinity", "inf"))
    return value


def _public_attributes(obj: Any) -> dict:
    source = vars(obj) if hasattr(obj, "__dict__") else {}
    return {k: v for k, v in source.items() if not k.startswith("_") and not callable(v)}
