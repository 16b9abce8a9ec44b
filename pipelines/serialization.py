"""Artifact serialisation: turn Python objects into one uploadable file and back.

``serialize(name, obj, workdir)`` picks a kind from :data:`ARTIFACT_KINDS` and writes a file
(numbers, booleans, None and containers of them are JSON);
``deserialize(kind, path, allow_pickle)`` reads it back. Pickles are only ever loaded after an
explicit opt-in (``.get(allow_pickle=True)`` or ``PIPELINES_ALLOW_PICKLE=1``).
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import pickle
import re
import shutil
import stat
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

ARTIFACT_KINDS = ("file", "folder", "numpy", "pandas", "json", "text", "image", "pickle")
PICKLE_ENV = "PIPELINES_ALLOW_PICKLE"
_TRUTHY = ("1", "true", "yes")
_FREQ_KEY = b"pipelines.index_freq"
_SERIES_KEY = b"pipelines.series"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class ArtifactError(Exception):
    """An artifact cannot be serialised or deserialised."""


class PickleNotAllowedError(ArtifactError):
    """A pickle artifact was requested without an explicit opt-in."""


@dataclass(frozen=True)
class Serialized:
    kind: str
    path: Path
    filename: str
    content_type: str
    preview: str
    metadata: dict = field(default_factory=dict)


def safe_filename(name: str, default: str = "artifact") -> str:
    """A basename made of ``[A-Za-z0-9._-]`` only, without leading dots, 1..200 chars."""
    cleaned = _UNSAFE_CHARS.sub("_", str(name)).lstrip(".")[:200]
    return cleaned or default


def file_size(path: str | os.PathLike) -> int:
    return os.stat(path).st_size


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_plain_json(obj: Any) -> bool:
    """True if obj holds only exact str/int/float/bool/None/list/tuple/dict-with-str-keys."""
    scalars = (str, int, float, bool, type(None))
    stack, seen = [obj], set()
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in scalars:
            continue
        if kind not in (list, tuple, dict):
            return False
        if id(item) in seen:  # shared or cyclic; json.dumps rejects real cycles
            continue
        seen.add(id(item))
        if kind is dict:
            if any(type(key) is not str for key in item):
                return False
            stack.extend(item.values())
        else:
            stack.extend(item)
    return True


def serialize(name: str, obj: Any, workdir: Path) -> Serialized:
    """Write ``obj`` as one file in ``workdir`` (or point at it, for existing files)."""
    workdir = Path(workdir)
    base = safe_filename(name)
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if np is not None and isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
        return _serialize_numpy(base, obj, workdir)
    series = pd is not None and isinstance(obj, pd.Series)
    if series:
        named = obj.name is not None
        obj = obj.to_frame(name=obj.name if named else name)
    if pd is not None and isinstance(obj, pd.DataFrame):
        return _serialize_pandas(
            base, obj, workdir, series=("named" if named else "unnamed") if series else None
        )
    if np is not None and isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        obj = obj.item()  # a numpy number is stored as the number it is
    if type(obj) in (int, float, bool, type(None)) or (
        isinstance(obj, dict | list | tuple) and _is_plain_json(obj)
    ):
        try:
            text = json.dumps(obj, allow_nan=True, ensure_ascii=False)
        except (TypeError, ValueError):
            text = None
        if text is not None:
            path = workdir / f"{base}.json"
            path.write_text(text, encoding="utf-8")
            meta = {"type": type(obj).__name__}
            if isinstance(obj, dict | list | tuple):
                meta["length"] = len(obj)
            return Serialized(
                "json", path, path.name, "application/json", _truncate(text, 300), meta
            )
    if isinstance(obj, Path) and not os.path.lexists(obj):
        raise ArtifactError(f"artifact {name!r}: path {str(obj)!r} does not exist")
    if isinstance(obj, str | Path) and os.path.exists(obj):
        return _serialize_path(name, Path(obj), workdir)
    if isinstance(obj, str):
        path = workdir / f"{base}.txt"
        try:
            path.write_text(obj, encoding="utf-8")
        except UnicodeEncodeError:  # lone surrogates: keep the exact string via pickle
            return _serialize_pickle(name, base, obj, workdir)
        meta = {"length": len(obj)}
        return Serialized(
            "text", path, path.name, "text/plain; charset=utf-8", _truncate(obj, 300), meta
        )
    if type(obj).__module__.startswith("PIL.") and hasattr(obj, "save") and hasattr(obj, "mode"):
        path = workdir / f"{base}.png"
        try:
            obj.save(path, format="PNG")
        except (OSError, ValueError, KeyError):  # modes PNG cannot hold, e.g. CMYK
            path.unlink(missing_ok=True)
        else:
            size = list(getattr(obj, "size", ()))
            preview = f"image size={tuple(size)} mode={obj.mode}"
            meta = {"size": size, "mode": obj.mode}
            return Serialized("image", path, path.name, "image/png", preview, meta)
    return _serialize_pickle(name, base, obj, workdir)


def _serialize_numpy(base: str, arr: Any, workdir: Path) -> Serialized:
    import numpy as np

    path = workdir / f"{base}.npz"
    with open(path, "wb") as fh:  # a file object stops numpy appending another ".npz"
        np.savez_compressed(fh, array=arr)
    head = np.array2string(arr.ravel()[:8], precision=4, separator=", ", threshold=8)
    preview = _truncate(f"ndarray shape={arr.shape} dtype={arr.dtype} {head}", 300)
    meta = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    return Serialized("numpy", path, path.name, "application/zip", preview, meta)


def _serialize_pandas(base: str, df: Any, workdir: Path, series: str | None = None) -> Serialized:
    """A DataFrame as parquet (csv.gz when pyarrow cannot). A Series travels as a one-column
    frame that parquet marks (`series`: its name kept or not), so it reads back a Series."""
    path = workdir / f"{base}.parquet"
    fmt, content_type = "parquet", "application/vnd.apache.parquet"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(df)
        extra = {}
        freq = getattr(df.index, "freqstr", None)
        if freq:  # parquet drops DatetimeIndex.freq; keep it so round trips compare equal
            extra[_FREQ_KEY] = freq
        if series:
            extra[_SERIES_KEY] = series
        if extra:
            table = table.replace_schema_metadata({**table.schema.metadata, **extra})
        pq.write_table(table, path)
    except Exception:  # pyarrow raises many types: ArrowInvalid, TypeError, ...
        path.unlink(missing_ok=True)
        path = workdir / f"{base}.csv.gz"
        fmt, content_type = "csv.gz", "application/gzip"
        out = df.reset_index() if df.index.nlevels > 1 else df
        out.to_csv(path, compression="gzip", index=df.index.nlevels == 1)
    preview = _truncate(f"DataFrame shape={df.shape}\n{df.head().to_string()}", 1000)
    meta = {"shape": list(df.shape), "columns": [str(c) for c in df.columns], "format": fmt}
    return Serialized("pandas", path, path.name, content_type, preview, meta)


def _serialize_path(name: str, src: Path, workdir: Path) -> Serialized:
    if src.is_file():
        filename = safe_filename(src.name or name)
        content_type = mimetypes.guess_type(src.name)[0] or "application/octet-stream"
        size = file_size(src)
        preview = f"file {src.name} ({size} bytes)"
        return Serialized("file", src, filename, content_type, preview, {"size": size})
    if src.is_dir():
        root = src.resolve()
        zip_path = workdir / f"{safe_filename(root.name or name)}.zip"
        files, total = _zip_folder(root, zip_path)
        preview = f"folder {root.name} ({files} files, {total} bytes)"
        meta = {"files": files, "size": total}
        return Serialized("folder", zip_path, zip_path.name, "application/zip", preview, meta)
    raise ArtifactError(f"artifact {name!r}: {str(src)!r} is neither a file nor a directory")


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _zip_folder(root: Path, zip_path: Path) -> tuple[int, int]:
    """Zip ``root`` deterministically; symlinks are kept only if they resolve inside it."""
    files = total = 0
    skip = zip_path.resolve()
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            here = Path(dirpath)
            rel_dir = here.relative_to(root).as_posix()
            if rel_dir != ".":
                info = zipfile.ZipInfo(rel_dir + "/", date_time=_ZIP_EPOCH)
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
                zf.writestr(info, b"")
            for fname in sorted(filenames):
                entry = here / fname
                target = entry.resolve()
                if target == skip or not target.is_file():
                    continue
                if entry.is_symlink() and not _inside(target, root):
                    continue
                info = zipfile.ZipInfo(entry.relative_to(root).as_posix(), date_time=_ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (stat.S_IFREG | (target.stat().st_mode & 0o777)) << 16
                with open(target, "rb") as src, zf.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                files += 1
                total += info.file_size
    return files, total


def _serialize_pickle(name: str, base: str, obj: Any, workdir: Path) -> Serialized:
    path = workdir / f"{base}.pkl"
    try:
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # PicklingError, TypeError, AttributeError, ...
        path.unlink(missing_ok=True)
        raise ArtifactError(
            f"artifact {name!r}: cannot serialise object of type {type(obj).__qualname__}: {exc}"
        ) from exc
    try:
        preview = _truncate(repr(obj), 300)
    except Exception:  # a broken __repr__ must not fail the upload
        preview = f"<{type(obj).__qualname__} object>"
    meta = {"type": f"{type(obj).__module__}.{type(obj).__qualname__}"}
    return Serialized("pickle", path, path.name, "application/octet-stream", preview, meta)


def pickle_allowed(allow_pickle: bool | None = None) -> bool:
    if allow_pickle is not None:
        return bool(allow_pickle)
    return os.environ.get(PICKLE_ENV, "").strip().lower() in _TRUTHY


def deserialize(kind: str, path: Path, allow_pickle: bool | None = None) -> Any:
    """Load an artifact file written by :func:`serialize` (or any file of that kind)."""
    path = Path(path)
    if kind == "numpy":
        import numpy as np

        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # a plain .npy file
            return loaded
        with loaded:
            return loaded["array"] if "array" in loaded.files else loaded[loaded.files[0]]
    if kind == "pandas":
        return _read_pandas(path)
    if kind == "json":
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    if kind == "text":
        return path.read_text(encoding="utf-8")
    if kind == "file":
        return str(path)
    if kind == "folder":
        return str(extract_zip(path, path.with_name(path.with_suffix("").name + "_extracted")))
    if kind == "image":
        try:
            from PIL import Image
        except ImportError:
            return str(path)
        with Image.open(path) as img:
            img.load()
            return img.copy()
    if kind == "pickle":
        if not pickle_allowed(allow_pickle):
            raise PickleNotAllowedError(
                f"refusing to unpickle artifact {str(path)!r}: unpickling can run arbitrary code. "
                f"If you trust its source, call .get(allow_pickle=True) "
                f"or set {PICKLE_ENV}=1 in the environment."
            )
        with open(path, "rb") as fh:
            return pickle.load(fh)  # noqa: S301 - explicit opt-in checked above
    raise ArtifactError(f"unknown artifact kind {kind!r}; expected one of {ARTIFACT_KINDS}")


def _read_pandas(path: Path) -> Any:
    import pandas as pd

    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        df = table.to_pandas()
        freq = (table.schema.metadata or {}).get(_FREQ_KEY)
        if freq:
            with contextlib.suppress(AttributeError, ValueError, TypeError):
                df.index.freq = freq.decode()
        series = (table.schema.metadata or {}).get(_SERIES_KEY)
        if series and len(df.columns) == 1:
            column = df.iloc[:, 0]
            return column if series == b"named" else column.rename(None)
        return df
    compression = "gzip" if magic[:2] == b"\x1f\x8b" else None
    return pd.read_csv(path, compression=compression, index_col=0)


def _member_path(name: str) -> PurePosixPath:
    """Validate one zip member name; raise ArtifactError on absolute or parent paths."""
    norm = name.replace("\\", "/")
    rel = PurePosixPath(norm)
    if not norm or rel.is_absolute() or re.match(r"^[A-Za-z]:", norm) or ".." in rel.parts:
        raise ArtifactError(f"unsafe path in zip archive: {name!r}")
    return rel


def extract_zip(zip_path: Path, dest: Path) -> Path:
    """Extract ``zip_path`` into ``dest`` (replaced if present), refusing zip-slip members."""
    zip_path, dest = Path(zip_path), Path(dest)
    with zipfile.ZipFile(zip_path) as zf:
        members = [(info, _member_path(info.filename)) for info in zf.infolist()]
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
        try:
            for info, rel in members:
                target = tmp.joinpath(*rel.parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    os.chmod(target, mode | 0o600)
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return dest
