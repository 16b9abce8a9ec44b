"""Automatic capture, as ClearML does: figures shown with plt.show() become task plots.

`when_imported` patches a module as soon as it is imported (also used by model_capture.py).
"""

import importlib.abc
import sys
import threading

_installed = False
_lock = threading.Lock()
_counter = {"iteration": 0}


def install() -> None:
    """Patch matplotlib.pyplot now if imported, or the moment it is imported."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    when_imported("matplotlib.pyplot", _patch)


def when_imported(module_name: str, patch) -> None:
    """Call `patch(module)` now if `module_name` is imported, else right after its import."""
    if module_name in sys.modules:
        patch(sys.modules[module_name])
        return
    with _lock:
        waiting = _hooks.setdefault(module_name, [])
        waiting.append(patch)
        if not any(isinstance(finder, _ImportHook) for finder in sys.meta_path):
            sys.meta_path.insert(0, _ImportHook())


_hooks: dict[str, list] = {}


class _ImportHook(importlib.abc.MetaPathFinder):
    """Runs the patches waiting for a module once its own code has run."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _hooks:
            return None
        import importlib.util

        # Find the real spec with this finder out of the way, then run the patches when
        # the module is executed (a find_spec() alone, e.g. to test for it, imports nothing).
        with _lock:
            present = self in sys.meta_path
            if present:
                sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            with _lock:
                if present and _hooks and self not in sys.meta_path:
                    sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            with _lock:
                patches = _hooks.pop(fullname, [])
                if not _hooks and self in sys.meta_path:
                    sys.meta_path.remove(self)
            for patch in patches:
                try:
                    patch(module)
                except Exception as error:  # noqa: BLE001 - capture must not break imports
                    print(f"[pipelines] could not patch {fullname}: {error}", file=sys.stderr)

        spec.loader.exec_module = exec_module
        return spec


def _patch(pyplot) -> None:
    if getattr(pyplot.show, "_pipelines_patched", False):
        return
    original_show = pyplot.show

    def show(*args, **kwargs):
        _report_open_figures(pyplot)
        return original_show(*args, **kwargs)

    show._pipelines_patched = True
    pyplot.show = show


def _report_open_figures(pyplot) -> None:
    from .logger import Logger
    from .task import Task

    task = Task.current_task()
    if task is None:
        return
    logger = Logger.for_task(task)
    for number in pyplot.get_fignums():
        figure = pyplot.figure(number)
        titles = [ax.get_title() for ax in figure.get_axes() if ax.get_title()]
        title = titles[0] if titles else f"Figure {number}"
        try:
            logger.report_matplotlib_figure(title, "plot", figure, iteration=_counter["iteration"])
        except Exception as error:  # noqa: BLE001 - a plot must never break the user's run
            print(f"[pipelines] could not report figure {title!r}: {error}", file=sys.stderr)
    _counter["iteration"] += 1
