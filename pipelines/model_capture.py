"""Models saved inside a task become its output models, as ClearML does: `joblib.dump` and
`pickle.dump` of a model (an object with `fit` or `predict`), `torch.save`, and Keras
`Model.save` / `save_weights`. `Task.init(auto_connect_frameworks=False)` turns it off
(or a dict such as `{"pytorch": False}`, by framework).

The patches are small and safe: each calls the original first and returns its result
untouched; recording the model afterwards never raises into the user's code (a failure is
one line on stderr); a save made while recording one is not recorded again.
"""

import functools
import os
import sys
import threading
from pathlib import Path

from .autocapture import when_imported

_guard = threading.local()
_installed: set[str] = set()
_lock = threading.Lock()

# ClearML's auto_connect_frameworks keys for what this module captures.
FRAMEWORK_KEYS = ("joblib", "pickle", "pytorch", "tensorflow")
_TOP_MODULE_FRAMEWORKS = {
    "sklearn": "ScikitLearn",
    "xgboost": "XGBoost",
    "lightgbm": "LightGBM",
    "catboost": "CatBoost",
    "torch": "PyTorch",
    "keras": "Keras",
    "tensorflow": "TensorFlow",
}


def install(enabled: dict[str, bool]) -> None:
    """Patch the savers of every framework `enabled` allows, now or when imported."""
    hooks = {
        "joblib": [("joblib", _patch_joblib)],
        "pickle": [("pickle", _patch_pickle)],
        "pytorch": [("torch", _patch_torch)],
        "tensorflow": [("keras", _patch_keras), ("tf_keras", _patch_keras)],
    }
    with _lock:
        wanted = [key for key in FRAMEWORK_KEYS if enabled.get(key, True) and key not in _installed]
        _installed.update(wanted)
    for key in wanted:
        for module_name, patch in hooks[key]:
            when_imported(module_name, patch)


def looks_like_model(obj) -> bool:
    """An estimator or network: what a script saves as a model rather than as data."""
    return any(callable(getattr(obj, name, None)) for name in ("predict", "fit", "forward"))


def framework_of(obj, default: str) -> str:
    module = type(obj).__module__.split(".", 1)[0]
    return _TOP_MODULE_FRAMEWORKS.get(module, default)


def _path_of(target) -> Path | None:
    """The file a save wrote to: a path, or an open file's name (flushed first)."""
    if isinstance(target, str | os.PathLike):
        return Path(target)
    name = getattr(target, "name", None)
    if isinstance(name, str) and hasattr(target, "flush"):
        try:
            target.flush()
        except (OSError, ValueError):
            return None
        return Path(name)
    return None


def record(target, framework: str) -> None:
    """Upload the file a save wrote as an output model of the current task, named after
    the file. Never raises: a model that cannot be recorded is reported on stderr."""
    from .task import Task

    task = Task.current_task()
    path = _path_of(target)
    if task is None or path is None or not path.exists():
        return
    try:
        from .model import OutputModel

        _guard.active = True
        model = OutputModel(task=task, name=path.stem, framework=framework)
        if path.is_dir():
            model.update_weights_package(weights_path=str(path))
        else:
            model.update_weights(weights_filename=str(path))
    except Exception as error:  # noqa: BLE001 - a model must never break the user's run
        print(f"[pipelines] could not record the model saved to {path}: {error}", file=sys.stderr)
    finally:
        _guard.active = False


def _recording() -> bool:
    return getattr(_guard, "active", False)


def _wrap(original, on_saved):
    if getattr(original, "_pipelines_patched", False):
        return original

    @functools.wraps(original)
    def save(*args, **kwargs):
        result = original(*args, **kwargs)
        if not _recording():
            try:
                on_saved(args, kwargs)
            except Exception as error:  # noqa: BLE001 - never break the user's save
                print(f"[pipelines] model capture failed: {error}", file=sys.stderr)
        return result

    save._pipelines_patched = True
    return save


def _argument(args, kwargs, index: int, name: str):
    return args[index] if len(args) > index else kwargs.get(name)


def _patch_joblib(joblib) -> None:
    def on_saved(args, kwargs):
        obj, target = _argument(args, kwargs, 0, "value"), _argument(args, kwargs, 1, "filename")
        if looks_like_model(obj):
            record(target, framework_of(obj, "ScikitLearn"))

    joblib.dump = _wrap(joblib.dump, on_saved)
    numpy_pickle = getattr(joblib, "numpy_pickle", None)
    if numpy_pickle is not None:
        numpy_pickle.dump = joblib.dump


def _patch_pickle(pickle) -> None:
    def on_saved(args, kwargs):
        obj, target = _argument(args, kwargs, 0, "obj"), _argument(args, kwargs, 1, "file")
        if looks_like_model(obj):
            record(target, framework_of(obj, "ScikitLearn"))

    pickle.dump = _wrap(pickle.dump, on_saved)


def _patch_torch(torch) -> None:
    def on_saved(args, kwargs):
        record(_argument(args, kwargs, 1, "f"), "PyTorch")

    torch.save = _wrap(torch.save, on_saved)


def _patch_keras(keras) -> None:
    model_class = getattr(keras, "Model", None)
    if model_class is None:
        return

    def on_saved(args, kwargs):
        record(_argument(args, kwargs, 1, "filepath"), "Keras")

    for method in ("save", "save_weights"):
        original = getattr(model_class, method, None)
        if original is not None:
            setattr(model_class, method, _wrap(original, on_saved))
