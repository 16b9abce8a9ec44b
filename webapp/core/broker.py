"""Publishing run messages. A message carries only a task id and an attempt number."""

import logging

from webapp.celery import app

logger = logging.getLogger(__name__)

RUN_TASK = "pipelines.run_task"


def publish_run(task_id: str, attempt: int, queue_name: str) -> bool:
    """Send one run message; returns False (and logs) when the broker cannot be reached.

    A failed publish loses nothing: the row stays `queued` and the reconciler publishes it
    again, so callers never block on a broker that is down.
    """
    try:
        with app.producer_or_acquire() as producer:
            # One bounded connection attempt. kombu's own (re)connect sleeps 2 s and more
            # between tries, once for the channel and again for each queue it declares, so
            # an enqueue would take seconds whenever the broker is down.
            producer.connection.ensure_connection(
                max_retries=0, timeout=app.conf.broker_connection_timeout
            )
            app.send_task(
                RUN_TASK,
                args=[task_id, attempt],
                queue=queue_name,
                routing_key=queue_name,
                retry=False,
                producer=producer,
            )
        return True
    except Exception:  # noqa: BLE001 - any broker failure is handled the same way
        logger.warning("could not publish task %s attempt %s", task_id, attempt, exc_info=True)
        return False
