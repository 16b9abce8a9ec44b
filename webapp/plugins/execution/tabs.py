from webapp.dashboard.plugin_api import TaskTab


def _requirements(script: dict) -> list[str]:
    """Requirements arrive as a list of lines or as one requirements.txt text."""
    raw = script.get("requirements") or []
    if isinstance(raw, str):
        return [line for line in raw.splitlines() if line.strip()]
    if isinstance(raw, dict):  # {"pip": [...]} as ClearML stores them
        raw = raw.get("pip") or []
        if isinstance(raw, str):
            return [line for line in raw.splitlines() if line.strip()]
    return [str(line) for line in raw]


def get_context(request, task) -> dict:
    script = task.script if isinstance(task.script, dict) else {}
    requirements = _requirements(script)
    return {
        "script": script,
        "requirements": requirements,
        "requirements_text": "\n".join(requirements),
        "source": [
            (label, script.get(key))
            for label, key in (
                ("Repository", "repository"),
                ("Branch", "branch"),
                ("Commit", "commit"),
                ("Entry point", "entry_point"),
                ("Working directory", "working_dir"),
                ("Binary", "binary"),
            )
        ],
    }


tabs = [
    TaskTab(
        slug="execution",
        label="Execution",
        order=10,
        template="plugins/execution/tab.html",
        get_context=get_context,
    )
]
