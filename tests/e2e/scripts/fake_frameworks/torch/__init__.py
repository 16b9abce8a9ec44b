"""A stand-in for PyTorch where it is not installed: save() writes a file, as torch's does."""

import pickle

from . import nn  # noqa: F401


def save(obj, f, pickle_protocol=2, **_ignored):
    with open(f, "wb") if isinstance(f, str) or hasattr(f, "__fspath__") else f as handle:
        pickle.dump(obj, handle, protocol=pickle_protocol)
