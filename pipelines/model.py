"""Models, with ClearML's names: `OutputModel` (a task's trained weights, uploaded to the
server) and `InputModel` (an existing model, read and connected to the task using it).

The weights are bytes to the server, stored and verified like an artifact's; they are only
ever loaded by the user's own code (e.g. `joblib.load(model.get_local_copy())`).
"""

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from .client import get_client
from .config import cache_dir


class Framework:
    """The framework names ClearML records a model's framework with."""

    tensorflow = "TensorFlow"
    tensorflowjs = "TensorFlow_js"
    tensorflowlite = "TensorFlow_Lite"
    pytorch = "PyTorch"
    torchscript = "TorchScript"
    caffe = "Caffe"
    caffe2 = "Caffe2"
    onnx = "ONNX"
    keras = "Keras"
    mknet = "MXNet"
    cntk = "CNTK"
    torch = "Torch"
    darknet = "Darknet"
    paddlepaddle = "PaddlePaddle"
    scikitlearn = "ScikitLearn"
    xgboost = "XGBoost"
    lightgbm = "LightGBM"
    parquet = "Parquet"
    megengine = "MegEngine"
    catboost = "CatBoost"
    tensorrt = "TensorRT"
    openvino = "OpenVINO"


def _task_id(task) -> str:
    return task if isinstance(task, str) else task.id


class BaseModel:
    """What every model has: its server record."""

    def __init__(self, data: dict | None = None):
        self._data = data or {}

    id = property(lambda self: self._data.get("id"))
    name = property(lambda self: self._data.get("name", ""))
    framework = property(lambda self: self._data.get("framework", ""))
    tags = property(lambda self: list(self._data.get("tags") or []))
    comment = property(lambda self: self._data.get("comment", ""))
    task = property(lambda self: self._data.get("task"))
    project = property(lambda self: self._data.get("project"))
    url = property(lambda self: self._data.get("url", ""))
    config_dict = property(lambda self: dict(self._data.get("config") or {}))
    labels = property(lambda self: dict(self._data.get("labels") or {}))
    published = property(lambda self: False)

    def _reload(self) -> None:
        self._data = get_client().get(f"models/{self.id}/")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.name!r} {self.framework}>"


class Model(BaseModel):
    """A stored model, read-only, by id."""

    def __init__(self, model_id: str):
        super().__init__(get_client().get(f"models/{model_id}/"))

    @classmethod
    def query_models(
        cls,
        project_name: str | None = None,
        model_name: str | None = None,
        tags: list[str] | None = None,
        only_published: bool = False,
        **_ignored: Any,
    ) -> list["Model"]:
        query: dict = {"page_size": 1000, "ready": "1"}
        if project_name:
            query["project_name"] = project_name
        if model_name:
            query["name"] = model_name
        rows = get_client().get("models/", **query)["results"]
        wanted = set(tags or [])
        found = []
        for row in rows:
            if wanted <= set(row.get("tags") or []):
                model = cls.__new__(cls)
                BaseModel.__init__(model, row)
                found.append(model)
        return found

    def get_local_copy(
        self,
        extract_archive: bool | None = None,
        raise_on_error: bool = False,
        force_download: bool = False,
    ) -> str:
        """A local path to the weights (downloaded once, verified by their sha256); a
        package is extracted into a folder unless `extract_archive=False`."""
        try:
            path = self._download(force_download)
        except Exception:
            if raise_on_error:
                raise
            return ""
        package = self._data.get("package")
        if package and extract_archive is not False:
            folder = path.with_name(path.stem + "-extracted")
            if not folder.exists() or force_download:
                _safe_extract(path, folder)
            return str(folder)
        return str(path)

    def get_weights(self, raise_on_error: bool = False, force_download: bool = False) -> str:
        return self.get_local_copy(False, raise_on_error, force_download)

    def get_weights_package(
        self, return_path: bool = False, raise_on_error: bool = False, **_ignored: Any
    ):
        folder = self.get_local_copy(True, raise_on_error)
        if return_path or not folder:
            return folder
        return sorted(str(p) for p in Path(folder).rglob("*") if p.is_file())

    def _download(self, force: bool) -> Path:
        if self._data.get("state") != "ready":
            self._reload()
        if self._data.get("state") != "ready":
            raise RuntimeError(f"model {self.name!r} is {self._data.get('state')}: no weights yet")
        sha256 = self._data["sha256"]
        target = cache_dir() / "models" / self.id / sha256[:16] / self._data["filename"]
        if target.exists() and not force:
            return target
        get_client().download(self._data["url"], target, expected_sha256=sha256)
        return target


class InputModel(Model):
    """An existing model a task uses: by id, or the newest ready one with this name (and
    project and tags). `task.connect(input_model)` records the use on the task."""

    def __init__(
        self,
        model_id: str | None = None,
        name: str | None = None,
        project: str | None = None,
        tags: list[str] | None = None,
        only_published: bool = False,
    ):
        if not model_id:
            found = Model.query_models(project_name=project, model_name=name, tags=tags)
            if not found:
                raise ValueError(f"no model found with name={name!r} project={project!r}")
            model_id = found[0].id
        super().__init__(model_id)

    def connect(self, task, name: str | None = None, **_ignored: Any) -> None:
        get_client().post(
            f"tasks/{_task_id(task)}/input-models/", {"model": self.id, "name": name or ""}
        )


class OutputModel(BaseModel):
    """A model a task trains: created with its description, stored with update_weights()."""

    def __init__(
        self,
        task=None,
        config_text: str | None = None,
        config_dict: dict | None = None,
        label_enumeration: dict | None = None,
        name: str | None = None,
        tags: list[str] | None = None,
        comment: str | None = None,
        framework: str | None = None,
        base_model_id: str | None = None,
        **_ignored: Any,
    ):
        if task is None:
            from .task import Task

            task = Task.current_task()
            if task is None:
                raise ValueError("OutputModel needs a task: pass task= or call Task.init()")
        if config_text is not None and config_dict is not None:
            raise ValueError("give config_text or config_dict, not both")
        super().__init__({})
        self._task = task
        self._name = name or getattr(task, "name", "") or "model"
        self._description = {
            "framework": str(framework or ""),
            "tags": list(tags or []),
            "comment": comment or "",
            "config": config_dict if config_dict is not None else (
                {"text": config_text} if config_text is not None else {}
            ),
            "labels": dict(label_enumeration or {}),
        }  # fmt: skip

    name = property(lambda self: self._data.get("name", self._name))

    def connect(self, task, name: str | None = None, **_ignored: Any) -> None:
        """Name the model as the task shows it (it already belongs to its task)."""
        if _task_id(task) != _task_id(self._task):
            raise ValueError("an output model belongs to the task that created it")
        if name:
            self._name = name

    def update_labels(self, labels: dict) -> None:
        self._description["labels"] = dict(labels)

    def update_design(self, config_text: str | None = None, config_dict: dict | None = None):
        self._description["config"] = (
            config_dict if config_dict is not None else {"text": config_text or ""}
        )

    def update_weights(
        self,
        weights_filename: str | None = None,
        upload_uri: str | None = None,
        target_filename: str | None = None,
        auto_delete_file: bool = True,
        register_uri: str | None = None,
        iteration: int | None = None,
        update_comment: bool = True,
        is_package: bool = False,
        async_enable: bool = True,
        **_ignored: Any,
    ) -> str:
        """Upload the weights file to the server (verified by its sha256); returns its URL.
        The upload finishes before this returns; the local file is left as it is."""
        if register_uri:
            raise ValueError("register_uri is not supported: upload the weights file itself")
        if not weights_filename:
            raise ValueError("update_weights needs weights_filename")
        path = Path(weights_filename)
        if not path.is_file():
            raise ValueError(f"no such weights file: {weights_filename}")
        client = get_client()
        declared = client.post(
            f"tasks/{_task_id(self._task)}/models/",
            {
                "name": self._name,
                "filename": target_filename or path.name,
                "size": path.stat().st_size,
                "package": bool(is_package),
                "iteration": iteration,
                **self._description,
            },
        )
        self._data = client.put_file(f"models/{declared['id']}/content/", path)
        return self.url

    def update_weights_package(
        self,
        weights_filenames: list[str] | None = None,
        weights_path: str | None = None,
        upload_uri: str | None = None,
        target_filename: str | None = None,
        auto_delete_file: bool = True,
        iteration: int | None = None,
        async_enable: bool = True,
        **_ignored: Any,
    ) -> str:
        """Upload several files, or a folder, as one zip package; returns its URL."""
        if bool(weights_filenames) == bool(weights_path):
            raise ValueError("give either weights_filenames or weights_path")
        with tempfile.TemporaryDirectory(prefix="pipelines-model-") as folder:
            package = Path(folder) / (target_filename or f"{self._name or 'model'}.zip")
            with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as archive:
                if weights_path:
                    root = Path(weights_path)
                    for file in sorted(root.rglob("*")):
                        if file.is_file():
                            archive.write(file, file.relative_to(root))
                else:
                    for name in weights_filenames or []:
                        archive.write(name, Path(name).name)
            return self.update_weights(str(package), iteration=iteration, is_package=True)


def _safe_extract(archive: Path, folder: Path) -> None:
    """Extract a package, refusing members that would land outside `folder`."""
    partial = folder.with_name(folder.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(archive) as package:
        for member in package.namelist():
            target = (partial / member).resolve()
            if not target.is_relative_to(partial.resolve()):
                raise ValueError(f"model package member {member!r} leaves its folder")
        package.extractall(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
