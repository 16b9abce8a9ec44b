from django.db import models
from django.utils import timezone


class IdempotentRequest(models.Model):
    """The answer to a POST that carried an Idempotency-Key, replayed if the same caller sends
    the same key again (its first answer was lost on the way back)."""

    # sha256 of the caller's credentials and the key: two callers never share an answer.
    key = models.CharField(primary_key=True, max_length=64)
    # sha256 of method, path and body: the same key on another request is refused.
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100, blank=True, default="")
    body = models.BinaryField()
    created = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"answer {self.status_code} to request {self.key[:12]}"
