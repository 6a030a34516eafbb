"""The rights audit log, read-only: who exported, erased, restricted or rectified whom, and when."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from comms.errors import DomainError
from comms.rights import services
from comms.rights.models import AuditEntry, RightsRequest, RightsRequestStatus


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


@admin.register(RightsRequest)
class RightsRequestAdmin(admin.ModelAdmin[RightsRequest]):
    """The DPO queue: requests from the preference centre that need review, oldest due first."""

    list_display = ["id", "contact_id", "kind", "status", "received_at", "due_at", "overdue", "closed_by"]
    list_filter = ["status", "kind"]
    search_fields = ["=contact__id"]
    readonly_fields = [
        "contact",
        "kind",
        "channel",
        "status",
        "received_at",
        "due_at",
        "closed_at",
        "closed_by",
        "note",
    ]
    actions = ["erase_now", "refuse"]

    @admin.display(boolean=True, description="overdue")
    def overdue(self, obj: RightsRequest) -> bool:
        return obj.status == RightsRequestStatus.OPEN and obj.due_at < timezone.now()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _close(self, request: HttpRequest, queryset: QuerySet[RightsRequest], *, erase: bool) -> None:
        actor = f"admin:{request.user.get_username()}"
        done = 0
        for pk in queryset.values_list("pk", flat=True):
            try:
                services.rights_request_close(request_id=pk, actor=actor, erase=erase)
            except DomainError as exc:
                self.message_user(request, f"request {pk}: {exc.message}", messages.WARNING)
                continue
            done += 1
        self.message_user(request, f"{done} request(s) {'erased' if erase else 'refused'}")

    @admin.action(description="Erase the person now (keeps the suppression)")
    def erase_now(self, request: HttpRequest, queryset: QuerySet[RightsRequest]) -> None:
        self._close(request, queryset, erase=True)

    @admin.action(description="Refuse the request")
    def refuse(self, request: HttpRequest, queryset: QuerySet[RightsRequest]) -> None:
        self._close(request, queryset, erase=False)
