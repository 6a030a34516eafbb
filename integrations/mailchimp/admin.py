"""Read-only views of what comms pushed to and sent through Mailchimp."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from integrations.mailchimp.models import AudienceUnsubscribe, CampaignSend, SyncState


class _ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AudienceUnsubscribe)
class AudienceUnsubscribeAdmin(_ReadOnly):
    list_display = [
        "id",
        "contact",
        "list_id",
        "status",
        "attempts",
        "requested_at",
        "propagated_at",
        "last_error",
    ]
    list_filter = ["status", "list_id"]


@admin.register(CampaignSend)
class CampaignSendAdmin(_ReadOnly):
    list_display = ["campaign", "list_id", "mailchimp_campaign_id", "snapshot_at", "final_diff_at", "sent_at"]


@admin.register(SyncState)
class SyncStateAdmin(_ReadOnly):
    list_display = ["list_id", "last_run_at", "last_result"]
