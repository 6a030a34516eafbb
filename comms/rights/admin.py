"""The rights audit log, read-only: who exported, erased, restricted or rectified whom, and when."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from comms.rights.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin[AuditEntry]):
    list_display = ["at", "actor", "action", "contact_id", "outcome"]
    list_filter = ["action"]
    search_fields = ["=contact_id", "actor"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
