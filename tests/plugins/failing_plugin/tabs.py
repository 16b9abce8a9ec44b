from webapp.dashboard.registry import MenuItem, TaskTab


def explode(*args):
    raise RuntimeError("this plugin always fails")


tabs = [
    TaskTab(slug="boom", label="Boom", order=90, render=explode, badge=explode),
    TaskTab(
        slug="boom-template",
        label="Boom template",
        order=91,
        template="plugins/failing_plugin/missing-template.html",
    ),
]
menu_items = [MenuItem(slug="boom", label="Boom", url="/nowhere/", order=99, visible=explode)]
