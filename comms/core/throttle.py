"""Failed-login counters in the Django cache (Redis in production: shared by every process)."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _key(kind: str, value: str) -> str:
    # Usernames may be email addresses: the cache holds a hash, never the name.
    digest = hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()[:32]
    return f"comms:login-fail:{kind}:{digest}"


def retry_after() -> int:
    return max(settings.ADMIN_LOGIN_LIMIT_PER_IP[1], settings.ADMIN_LOGIN_LIMIT_PER_USERNAME[1])


def _count(key: str) -> int:
    return int(cache.get(key) or 0)


def login_blocked(*, ip: str, username: str) -> bool:
    per_ip, _ = settings.ADMIN_LOGIN_LIMIT_PER_IP
    per_user, _ = settings.ADMIN_LOGIN_LIMIT_PER_USERNAME
    if _count(_key("ip", ip)) >= per_ip:
        return True
    return bool(username) and _count(_key("user", username)) >= per_user


def _incr(key: str, window: int) -> int:
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        return 1


def login_failed(*, ip: str, username: str) -> None:
    _incr(_key("ip", ip), settings.ADMIN_LOGIN_LIMIT_PER_IP[1])
    if username:
        _incr(_key("user", username), settings.ADMIN_LOGIN_LIMIT_PER_USERNAME[1])
    logger.warning("admin login failed (user hash %s)", _key("user", username)[-12:])


@receiver(user_login_failed)
def _on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kw: Any
) -> None:
    if request is None:
        return
    login_failed(ip=client_ip(request), username=str(credentials.get("username", "")))


@receiver(user_logged_in)
def _on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kw: Any) -> None:
    cache.delete(_key("user", user.get_username()))
