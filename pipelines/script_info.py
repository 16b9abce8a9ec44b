"""What a task records about the code that created it: script text, git state, packages."""

import importlib.metadata
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from .config import cache_dir

GIT_TIMEOUT = 5
MAX_SCRIPT_BYTES = 5 * 1024 * 1024


def entry_script() -> Path | None:
    main = sys.modules.get("__main__")
    candidate = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else None)
    if not candidate:
        return None
    path = Path(candidate).resolve()
    return path if path.is_file() and path.suffix == ".py" else None


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def git_state(script: Path) -> dict:
    root = _git(["rev-parse", "--show-toplevel"], script.parent)
    if not root:
        return {}
    root_path = Path(root)
    return {
        "repository": _git(["remote", "get-url", "origin"], root_path) or "",
        "branch": _git(["rev-parse", "--abbrev-ref", "HEAD"], root_path) or "",
        "commit": _git(["rev-parse", "HEAD"], root_path) or "",
        "diff": _git(["diff", "HEAD"], root_path) or "",
        "repo_root": str(root_path),
        "entry_point": str(script.relative_to(root_path)),
    }


def imported_requirements() -> list[str]:
    """`name==version` for every installed distribution the process has imported."""
    stdlib = set(sys.stdlib_module_names)
    try:
        by_module = _packages_distributions()
    except Exception:  # noqa: BLE001 - broken metadata must not stop Task.init
        return []
    found: dict[str, str] = {}
    for module in list(sys.modules):
        top = module.partition(".")[0]
        if top in stdlib or top.startswith("_") or top in ("pipelines",):
            continue
        for dist in by_module.get(top, []):
            if dist in found:
                continue
            try:
                found[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
    return sorted(f"{name}=={version}" for name, version in found.items())


def _packages_distributions() -> dict[str, list[str]]:
    """importlib.metadata.packages_distributions(), kept on disk between runs.

    Computing it reads the metadata of every installed distribution: a few hundred ms of each
    Task.init in a large environment. The copy is keyed by the path entries and their
    modification times, which change whenever a distribution is installed or removed.
    """
    key = []
    for entry in sys.path:
        try:
            key.append([entry, os.stat(entry or ".").st_mtime_ns])
        except OSError:
            continue
    path = cache_dir() / "packages_distributions.json"
    try:
        stored = json.loads(path.read_text())
        if stored["key"] == key:
            return stored["packages"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    packages = importlib.metadata.packages_distributions()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        partial.write_text(json.dumps({"key": key, "packages": packages}))
        partial.replace(path)
    except OSError:
        pass  # a read-only home only costs the next run the same lookup again
    return packages


def capture_script() -> dict:
    """The `script` field of a task created by running a file on this machine."""
    script = entry_script()
    info: dict = {
        "binary": f"python{sys.version_info.major}.{sys.version_info.minor}",
        "requirements": imported_requirements(),
    }
    if script is None:
        info.update({"entry_point": "", "working_dir": os.getcwd(), "code": ""})
        return info
    raw = script.read_bytes()[:MAX_SCRIPT_BYTES]
    info.update(
        {
            "entry_point": script.name,
            "working_dir": str(script.parent),
            "code": raw.decode("utf-8", errors="replace"),
        }
    )
    git = git_state(script)
    if git:
        info.update(
            {
                "repository": git["repository"],
                "branch": git["branch"],
                "commit": git["commit"],
                "diff": git["diff"],
                "repo_entry_point": git["entry_point"],
            }
        )
    return info
