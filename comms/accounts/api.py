"""API key administration for dpo keys: list, rotate, revoke (the commands do the same)."""

import datetime as dt

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Router, Schema

from comms.accounts.models import ApiKey, Role
from comms.accounts.services import api_key_revoke, api_key_rotate, api_key_usage_flush
from comms.auth import require_role
from comms.schemas import PathId, responses

router = Router(tags=["api keys"])


class ApiKeyOut(Schema):
    id: int
    name: str
    role: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    rotated_at: dt.datetime | None
    revoked_at: dt.datetime | None
    use_count: int


class ApiKeyRotatedOut(Schema):
    api_key: ApiKeyOut
    key: str  # the new secret, shown only in this answer


@router.get("/api-keys", response=responses({200: list[ApiKeyOut]}), summary="List API keys")
@require_role(Role.DPO)
def list_api_keys(request: HttpRequest) -> list[ApiKey]:
    """Every key with its role, prefix, use count and when it was last used (never the key)."""
    keys = list(ApiKey.objects.all())
    for key in keys:
        if api_key_usage_flush(api_key_id=key.pk):
            key.refresh_from_db(fields=["use_count"])
    return keys


@router.post(
    "/api-keys/{key_id}/rotate", response=responses({200: ApiKeyRotatedOut}), summary="Rotate an API key"
)
@require_role(Role.DPO)
def rotate_api_key(request: HttpRequest, key_id: PathId) -> dict[str, object]:
    """A new secret for the key (shown only in this answer); the old one stops working at
    once. 409 for a revoked key."""
    api_key, secret = api_key_rotate(api_key=get_object_or_404(ApiKey, pk=key_id))
    return {"api_key": api_key, "key": secret}


@router.post("/api-keys/{key_id}/revoke", response=responses({200: ApiKeyOut}), summary="Revoke an API key")
@require_role(Role.DPO)
def revoke_api_key(request: HttpRequest, key_id: PathId) -> ApiKey:
    """Revoke the key for good: it answers 401 from now on."""
    return api_key_revoke(api_key=get_object_or_404(ApiKey, pk=key_id))
