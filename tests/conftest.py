import os

# Unit tests never reach a broker: publishing is asserted through the outbox fixture.
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
