"""The dashboard's own left-menu entries, registered through the same registry as plugins'."""

from .registry import MenuItem


def _staff(request) -> bool:
    return bool(request.user.is_staff)


CORE_MENU = [
    MenuItem(slug="projects", label="Projects", url_name="dashboard:projects", order=10, icon="▦"),
    MenuItem(
        slug="pipelines", label="Pipelines", url_name="dashboard:pipelines", order=20, icon="⇶"
    ),
    MenuItem(slug="models", label="Models", url_name="dashboard:models", order=25, icon="◈"),
    MenuItem(
        slug="schedules", label="Schedules", url_name="automation:schedules", order=26, icon="◷"
    ),
    MenuItem(
        slug="triggers", label="Triggers", url_name="automation:triggers", order=27, icon="⚡"
    ),
    MenuItem(slug="queues", label="Queues", url_name="dashboard:queues", order=30, icon="☰"),
    MenuItem(slug="workers", label="Workers", url_name="dashboard:workers", order=40, icon="⚙"),
    MenuItem(slug="keys", label="API keys", url_name="dashboard:keys", order=80, icon="⚷"),
    MenuItem(slug="admin", label="Admin", url="/admin/", order=90, icon="✎", visible=_staff),
]
