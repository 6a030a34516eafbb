"""The one error every vendor adapter raises; ``permanent`` tells the caller whether to retry."""

from __future__ import annotations


class IntegrationError(Exception):
    """A provider call failed. Permanent failures are recorded, transient ones retried.

    ``retry_after`` is the provider's requested pause in seconds (HTTP 429), when it gave one;
    ``throttled`` says the provider asked us to slow down (429), which is not a failure;
    ``status`` is the HTTP status, when there was an answer.
    """

    def __init__(
        self,
        message: str,
        permanent: bool,
        *,
        retry_after: float | None = None,
        throttled: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.throttled = throttled
        self.status = status

    def __repr__(self) -> str:
        return (
            f"IntegrationError({self.message!r}, permanent={self.permanent!r}, "
            f"retry_after={self.retry_after!r}, throttled={self.throttled!r}, status={self.status!r})"
        )
