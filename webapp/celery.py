"""The server-side Celery app: the pipeline engine's sweeps, the lease reaper, the reconciler.

Run it as the server worker: `pipelines serverworker` (webapp/serverworker.py: Celery's
worker with the solo pool) consuming PIPELINES_SERVER_QUEUE.
"""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("webapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["webapp.core"])


@worker_ready.connect
def _start_sweeper(**_kwargs) -> None:
    from webapp.core.tasks import start_sweeper

    start_sweeper()
