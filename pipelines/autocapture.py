"""Automatic capture, as ClearML does: figures shown with plt.show() become task plots."""

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
    if "matplotlib.pyplot" in sys.modules:
        _patch(sys.modules["matplotlib.pyplot"])
    else:
        sys.meta_path.insert(0, _PyplotFinder())


class _PyplotFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "matplotlib.pyplot":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        original_exec = spec.loader.exec_module

        def exec_module(module):
            original_exec(module)
            _patch(module)

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
