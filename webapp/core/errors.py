"""Domain errors raised by services; the API maps each to one HTTP status."""


class DomainError(Exception):
    """Base: a request that cannot be carried out as asked."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    """The object is not in a state that allows this (e.g. an illegal status transition)."""

    status_code = 409
    code = "conflict"


class TooLarge(DomainError):
    status_code = 413
    code = "too_large"


class Unavailable(DomainError):
    status_code = 503
    code = "unavailable"
