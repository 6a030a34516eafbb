from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from comms.studio.models import BrandAccess, TestSend


@admin.register(BrandAccess)
class BrandAccessAdmin(admin.ModelAdmin[BrandAccess]):
    list_display = ["user", "brand"]
    list_filter = ["brand"]
    autocomplete_fields = ["user"]


@admin.register(TestSend)
class TestSendAdmin(admin.ModelAdmin[TestSend]):
    list_display = ["created_at", "campaign", "channel", "to", "status", "sent_by"]
    list_filter = ["status", "channel"]
    readonly_fields = [f.name for f in TestSend._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: TestSend | None = None) -> bool:
        return False
