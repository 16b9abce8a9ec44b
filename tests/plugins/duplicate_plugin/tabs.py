from webapp.dashboard.registry import TaskTab

tabs = [TaskTab(slug="execution", label="Execution again", render=lambda request, task: "")]
