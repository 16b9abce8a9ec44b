from webapp.dashboard.plugin_api import TaskTab, read_task, task_actions


def _rows(hyperparameters: dict) -> list[dict]:
    rows = []
    for section in sorted(hyperparameters or {}):
        params = hyperparameters[section] or {}
        for name in sorted(params):
            param = params[name] if isinstance(params[name], dict) else {"value": params[name]}
            rows.append(
                {
                    "section": section,
                    "name": name,
                    "value": param.get("value", ""),
                    "type": param.get("type", ""),
                    "description": param.get("description", ""),
                }
            )
    return rows


def get_context(request, task) -> dict:
    # Sensitive values show as a mask; saving the form unchanged keeps them.
    reading = read_task(task)
    rows = _rows(reading.hyperparameters)
    sections: dict[str, list[dict]] = {}
    for index, row in enumerate(rows):
        row["index"] = index
        sections.setdefault(row["section"], []).append(row)
    return {
        "sections": sections,
        "row_count": len(rows),
        "editable": task_actions(task)["edit"],
        "configuration": sorted(reading.configuration.items()),
    }


def count(task) -> int:
    return sum(len(params or {}) for params in (task.hyperparameters or {}).values())


tabs = [
    TaskTab(
        slug="configuration",
        label="Configuration",
        order=20,
        template="plugins/configuration/tab.html",
        get_context=get_context,
        badge=count,
    )
]
