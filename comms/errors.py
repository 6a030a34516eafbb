"""Domain errors. Services raise these; the API maps them to HTTP in one place (comms/api.py)."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """Bad input naming the field it concerns (HTTP 422)."""

    status_code = 422

    def __init__(self, field: str, message: str, *, location: str = "body") -> None:
        super().__init__(message)
        self.field = field
        self.location = location


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Forbidden(DomainError):
    status_code = 403
