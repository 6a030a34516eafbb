"""Domain errors. Services raise these; the API maps them to HTTP in one place (comms/api.py)."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(DomainError):
    """Bad input naming the field it concerns. The member pages and commands show it as a form
    error; the API answers 409, because a request that reaches a service has already matched
    the document, so what the service refuses is a conflict with what it holds (comms/api.py)."""

    status_code = 422
    field: str

    def __init__(self, field: str, message: str, *, location: str = "body") -> None:
        super().__init__(message, field=field)
        self.location = location


class NotFound(DomainError):
    """Unknown id: the resource of the path, or one that a body or query names (``field``)."""

    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Forbidden(DomainError):
    status_code = 403
