"""docs/architecture.md's "Where the code lives" names every module, and nothing that is gone.

A module is named by its path, or by its folder (`webapp/compat/handlers/`) when the folder
holds no packages of its own; a package's `__init__.py` that only holds a docstring needs no
row.
"""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"


def _section() -> str:
    text = DOC.read_text()
    start = text.index("## Where the code lives")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _named() -> set[str]:
    """The paths in the first column of the section's tables."""
    cells = [line.split("|")[1] for line in _section().splitlines() if line.startswith("| `")]
    return {name for cell in cells for name in re.findall(r"`([^`\s]+)`", cell)}


def _trivial_init(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and all(
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) for node in body
    )


def _modules() -> list[str]:
    found = []
    for top in ("webapp", "pipelines"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" in path.parts or _trivial_init(path):
                continue
            found.append(path.relative_to(ROOT).as_posix())
    return found


def _covered(module: str, named: set[str]) -> bool:
    if module in named:
        return True
    folders = [n for n in named if n.endswith("/")]
    return any(module.startswith(folder) for folder in folders)


def test_every_module_is_named():
    named = _named()
    assert [module for module in _modules() if not _covered(module, named)] == []


def test_everything_named_exists_and_folders_hold_no_packages():
    missing, too_wide = [], []
    for name in _named():
        path = ROOT / name
        if not path.exists():
            missing.append(name)
        elif name.endswith("/") and any(
            p.is_dir() and (p / "__init__.py").exists() for p in path.iterdir()
        ):
            too_wide.append(name)
    assert (missing, too_wide) == ([], [])
