"""API keys: creation and lookup. The key is shown once; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from comms.accounts.models import ApiKey, Role
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


def api_key_authenticate(key: str) -> ApiKey | None:
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = ApiKey.objects.filter(key_hash=_digest(key), revoked_at__isnull=True).first()
    if row is None:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=now)
    return row


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key
