"""Bearer API keys with roles, for the ninja API."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.http import HttpRequest
from ninja.security import HttpBearer

from comms.accounts.models import ApiKey, Role
from comms.accounts.services import api_key_authenticate
from comms.errors import Forbidden

F = TypeVar("F", bound=Callable[..., Any])


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return api_key_authenticate(token)


def principal_name(request: HttpRequest) -> str:
    key = getattr(request, "auth", None)
    return f"api-key:{key.name}" if isinstance(key, ApiKey) else ""


def require_role(*roles: Role) -> Callable[[F], F]:
    """Allow an operation only to keys with one of ``roles``."""
    allowed = {str(r) for r in roles}

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            key = getattr(request, "auth", None)
            if not isinstance(key, ApiKey) or key.role not in allowed:
                raise Forbidden(f"this needs one of the roles: {', '.join(sorted(allowed))}")
            return view(request, *args, **kwargs)

        wrapper.__comms_roles__ = sorted(allowed)  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorator
