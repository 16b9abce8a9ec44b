"""A stand-in for Keras where it is not installed: Model.save() writes a file, as Keras'."""

from pathlib import Path


class Model:
    def save(self, filepath, overwrite=True, **_ignored):
        Path(filepath).write_bytes(b"keras model")

    def save_weights(self, filepath, overwrite=True, **_ignored):
        Path(filepath).write_bytes(b"keras weights")


class Sequential(Model):
    def __init__(self, layers=None):
        self.layers = list(layers or [])
