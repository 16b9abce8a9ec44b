"""`python -m webapp.serverworker`: the server worker (`pipelines serverworker`).

Celery's worker class run directly on the Django app (webapp.celery) with the solo pool,
rather than through Celery's command line, which imports an interactive shell
(click-repl, prompt-toolkit, pygments) worth about 11 MB of memory.
"""

import os
import socket
import sys

from webapp import startup


def main() -> int:
    startup.begin()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django
    from celery.concurrency import get_implementation
    from celery.utils.log import mlevel
    from django.conf import settings

    django.setup()
    startup.ready()
    from pipelines.worker import broker_watch
    from webapp.celery import app

    broker_watch.install(app)
    worker = app.Worker(
        hostname=f"server-{os.getpid()}@{socket.gethostname()}",
        # Named, not left to Celery: without a selection a worker consumes every queue the
        # app knows, and publishing a step's run message teaches the app that step's queue,
        # so after a reconnect it would take (and drop) step workers' messages.
        queues=[settings.PIPELINES_SERVER_QUEUE],
        pool_cls=get_implementation("solo"),
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
        loglevel=mlevel(os.environ.get("PIPELINES_LOG_LEVEL", "INFO")),
    )
    worker.start()
    return worker.exitcode or 0


if __name__ == "__main__":
    sys.exit(main())
