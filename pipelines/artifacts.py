"""Read-side artifact handles: `task.artifacts[name].get()` and friends."""

from collections.abc import Mapping
from pathlib import Path

from .serialization import deserialize
from .storage import StorageManager


class ArtifactNotReady(RuntimeError):
    pass


class Artifact:
    """One stored artifact of a task, as the server describes it."""

    def __init__(self, data: dict):
        self._data = data

    name = property(lambda self: self._data["name"])
    url = property(lambda self: self._data["url"])
    size = property(lambda self: self._data["size"])
    sha256 = property(lambda self: self._data["sha256"])
    type = property(lambda self: self._data["kind"])
    kind = property(lambda self: self._data["kind"])
    state = property(lambda self: self._data["state"])
    preview = property(lambda self: self._data.get("preview", ""))
    metadata = property(lambda self: self._data.get("metadata") or {})

    def get_local_copy(self, extract_archive: bool = False) -> str:
        if self.state != "ready":
            raise ArtifactNotReady(f"artifact {self.name!r} is {self.state}: upload unfinished")
        return StorageManager.get_local_copy(self.url)

    def get(self, allow_pickle: bool | None = None):
        """The artifact as a Python object. Pickles load only with an explicit opt-in."""
        return deserialize(self.kind, Path(self.get_local_copy()), allow_pickle=allow_pickle)

    def __repr__(self) -> str:
        return f"<Artifact {self.name!r} {self.kind} {self.size} bytes {self.state}>"


class Artifacts(Mapping):
    """A read-only mapping name -> Artifact, as fetched when it was created."""

    def __init__(self, rows: list[dict]):
        self._by_name = {row["name"]: Artifact(row) for row in rows}

    def __getitem__(self, name: str) -> Artifact:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise KeyError(f"no artifact named {name!r} (this task has: {known})") from None

    def __iter__(self):
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)
