"""API keys: creation and lookup. The key is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from comms.accounts.models import ApiKey, ApiKeyUsage, Role
from comms.errors import Conflict, InvalidInput

KEY_PREFIX = "cm_"
# Writing last_used_at on every request would turn reads into writes; a minute is precise enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(key: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching needed).
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, name: str, role: str) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext key, which is never stored."""
    if role not in Role.values:
        raise InvalidInput("role", f"must be one of {', '.join(Role.values)}")
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("name", "must be 1 to 100 characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        if ApiKey.objects.filter(name=name).exists():
            raise Conflict(f"an API key named {name!r} already exists")
        row = ApiKey.objects.create(name=name, role=role, prefix=key[:10], key_hash=_digest(key))
    return row, key


def _uses_key(api_key_id: int) -> str:
    return f"comms:apikey-uses:{api_key_id}"


def _count_use(api_key_id: int) -> None:
    key = _uses_key(api_key_id)
    if not cache.add(key, 1, timeout=None):
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=None)


def api_key_usage_flush(*, api_key_id: int, now: datetime | None = None) -> int:
    """Move the key's counted uses from the cache into the database; returns how many."""
    key = _uses_key(api_key_id)
    pending = int(cache.get(key) or 0)
    if pending <= 0:
        return 0
    with contextlib.suppress(ValueError):
        cache.decr(key, pending)
    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    with transaction.atomic():
        ApiKey.objects.filter(pk=api_key_id).update(use_count=F("use_count") + pending)
        usage, created = ApiKeyUsage.objects.get_or_create(
            api_key_id=api_key_id, minute=minute, defaults={"count": pending}
        )
        if not created:
            ApiKeyUsage.objects.filter(pk=usage.pk).update(count=F("count") + pending)
    return pending


def api_key_authenticate(key: str) -> ApiKey | None:
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = ApiKey.objects.filter(key_hash=_digest(key), revoked_at__isnull=True).first()
    if row is None:
        return None
    # Every use is counted in the cache; the database is written at most once a minute per key.
    _count_use(row.pk)
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
        api_key_usage_flush(api_key_id=row.pk, now=now)
    return row


def api_key_rotate(*, api_key: ApiKey) -> tuple[ApiKey, str]:
    """Give the key a new secret (same name and role); the old one stops working at once."""
    if api_key.revoked_at is not None:
        raise Conflict(f"the API key {api_key.name!r} is revoked; create a new one")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key.key_hash, api_key.prefix, api_key.rotated_at = _digest(key), key[:10], timezone.now()
    api_key.save(update_fields=["key_hash", "prefix", "rotated_at"])
    return api_key, key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
