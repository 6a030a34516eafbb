from django.contrib import admin

from comms.suppression.admin import ReadOnlyAdmin
from comms.web.models import MemberMessage


@admin.register(MemberMessage)
class MemberMessageAdmin(ReadOnlyAdmin):
    """Every confirmation and fresh link the member pages sent: read-only, like the ledger."""

    list_display = ["id", "kind", "contact", "channel", "status", "attempts", "created_at", "sent_at"]
    list_filter = ["kind", "channel", "status"]
    search_fields = ["=contact__id", "provider_id", "=external_id"]
    list_select_related = ["contact"]
