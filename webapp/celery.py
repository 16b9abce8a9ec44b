"""The server-side Celery app: the pipeline engine's sweeps, the lease reaper, the reconciler,
schedules and triggers.

Run it as the server worker: `pipelines serverworker` (webapp/serverworker.py: Celery's
worker with the solo pool) consuming PIPELINES_SERVER_QUEUE. Its tasks are in
webapp/core/tasks.py and webapp/automation/tasks.py, found by autodiscovery when the worker starts.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("webapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["webapp.core", "webapp.automation"])
