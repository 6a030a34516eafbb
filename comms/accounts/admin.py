from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from comms.accounts.models import ApiKey
from comms.accounts.services import api_key_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ["name", "role", "prefix", "created_at", "last_used_at", "use_count", "revoked_at"]
    list_filter = ["role"]
    readonly_fields = [
        "name",
        "role",
        "prefix",
        "key_hash",
        "created_at",
        "last_used_at",
        "use_count",
        "rotated_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are created with `manage.py create_api_key`, which shows the key once

    @admin.action(description="Revoke selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            api_key_revoke(api_key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
