"""How the server's parts hold each other: the twin of test_sdk_boundaries.py.

- core (the domain) imports none of the doors (api, compat, dashboard), the plugins, or the
  apps that follow it through its listener points (automation);
- no two modules of webapp/core import each other, directly or round a loop, counting the
  imports inside functions too;
- the engine is used through its package's interface, never its private modules;
- plugins import only the plugin API;
- one function writes Task.status (core/status.py); conftest.py also watches every UPDATE of
  the tasks table that the rest of the suite runs.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEBAPP = ROOT / "webapp"
CORE = WEBAPP / "core"


def _modules(root: Path):
    for path in sorted(root.rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[str]:
    """Every module `path` imports, anywhere in it, as absolute dotted names (for
    `from package import name`, `package.name` too, which may be a module)."""
    module = _name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.append(target)
            found += [f"{target}.{alias.name}" for alias in node.names]
    return found


def test_core_imports_none_of_the_doors_or_plugins():
    doors = (
        "webapp.api",
        "webapp.compat",
        "webapp.dashboard",
        "webapp.plugins",
        "webapp.automation",
    )
    offenders = [
        f"{_name(path)} imports {name}"
        for path in _modules(CORE)
        for name in _imports(path)
        if name.startswith(doors)
    ]
    assert offenders == []


def test_no_import_loop_in_core():
    modules = {_name(path): path for path in _modules(CORE)}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            # `from . import x` names the package and its module x: the module is the edge.
            if imported in modules and imported != name:
                targets.add(imported)
        edges[name] = targets
    # A package's own __init__ only re-exports its modules; an import of the package from
    # inside it is an import of the module it names.
    for name in edges:
        edges[name] = {t for t in edges[name] if not name.startswith(f"{t}.")}
    loops = _strongly_connected(edges)
    assert [sorted(loop) for loop in loops if len(loop) > 1] == []


def _strongly_connected(edges: dict) -> list[set]:
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            found.append(component)

    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_the_engine_is_used_through_its_interface():
    engine = CORE / "engine"
    offenders = [
        f"{_name(path)} imports {name}"
        for path in _modules(WEBAPP)
        if engine not in path.parents
        for name in _imports(path)
        if name.startswith("webapp.core.engine._")
    ]
    assert offenders == []


def test_plugins_import_only_the_plugin_api():
    allowed = ("webapp.dashboard.plugin_api",)
    offenders = []
    for plugins in (WEBAPP / "plugins", ROOT / "examples" / "dashboard_plugin"):
        for path in _modules(plugins):
            package = ".".join(_name(path).split(".")[:3])
            for name in _imports(path):
                own = name.startswith(package) or not name.startswith("webapp")
                if not own and not name.startswith(allowed):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def _calls_update_with_status(node: ast.Call) -> bool:
    if not (isinstance(node.func, ast.Attribute) and node.func.attr == "update"):
        return False
    return any(keyword.arg == "status" for keyword in node.keywords)


def test_one_function_writes_task_status():
    """No `.update(status=...)` on tasks, no `task.status = ...` followed by a save, and no
    written-out UPDATE of the tasks table's status outside core/status.py. (Node and run
    statuses are the engine's; creating a row with its first status is not a change.)"""
    offenders = []
    for path in _modules(WEBAPP):
        if path == CORE / "status.py":
            continue
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and _calls_update_with_status(node):
                receiver = ast.get_source_segment(source, node.func.value) or ""
                if "Task" in receiver or "task" in receiver.split(".")[0]:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {receiver}")
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if (
                        isinstance(target, ast.Attribute)
                        and target.attr == "status"
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "task"
                    ):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} task.status =")
    sql = (CORE / "sql.py").read_text()
    assert "UPDATE {task}" not in sql and "UPDATE {task_table}" not in sql
    # The one new task a bulk insert creates already queued (services.enqueue_clones) sets
    # its first status on an unsaved row: that is creation, listed here by name.
    allowed = {"webapp/core/services.py enqueue_clones"}
    offenders = [o for o in offenders if not _in_function(o, allowed)]
    assert offenders == []


def _in_function(offender: str, allowed: set) -> bool:
    location = offender.split(" ")[0]
    path, _, line = location.partition(":")
    tree = ast.parse((ROOT / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.lineno <= int(line) <= node.end_lineno:
            if f"{path} {node.name}" in allowed:
                return True
    return False
