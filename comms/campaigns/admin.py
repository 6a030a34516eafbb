"""Campaigns for marketers: edit drafts, preview, schedule, send now, pause, resume, cancel, and
watch counts by status and reason. Every change goes through comms.campaigns.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from comms.campaigns import previews, selectors, services

# Registers the follow-up rules and adds a contact's follow-ups to its page.
from comms.campaigns.followups import admin as followups_admin  # noqa: F401
from comms.campaigns.models import AudiencePreview, Campaign, Delivery
from comms.errors import DomainError, InvalidInput


class CampaignForm(forms.ModelForm[Campaign]):
    purpose_key = forms.CharField(label="Purpose key", help_text="e.g. fit24-newsletter or member-dialogue")

    class Meta:
        model = Campaign
        fields = [
            "brand",
            "name",
            "channel",
            "audience",
            "subject",
            "html",
            "text",
            "sms_max_segments",
            "send_at",
        ]
        help_texts = {
            "audience": 'JSON filters, e.g. {"kinds": ["member"], "centres": ["bergen"], "tags": ["yoga"], '
            '"last_visit_before": "2026-10-01", "age_min": 18}. Empty: the whole brand.',
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["purpose_key"].initial = self.instance.purpose.key
            self.fields["brand"].disabled = True
            self.fields["channel"].disabled = True

    def _input(self) -> services.CampaignInput:
        data = self.cleaned_data
        return services.CampaignInput(
            name=data.get("name"),
            channel=data.get("channel"),
            purpose=data.get("purpose_key"),
            audience=data.get("audience") or {},
            subject=data.get("subject", ""),
            html=data.get("html", ""),
            text=data.get("text"),
            sms_max_segments=data.get("sms_max_segments"),
            send_at=data.get("send_at"),
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        brand = data.get("brand") or (self.instance.brand if self.instance.pk else None)
        if brand is None or self.errors:
            return data
        try:
            services.campaign_validate(
                brand=brand, data=self._input(), existing=self.instance if self.instance.pk else None
            )
        except InvalidInput as exc:
            field = exc.field.split(".")[0]
            field = "purpose_key" if field == "purpose" else field
            self.add_error(field if field in self.fields else None, exc.message)
        except DomainError as exc:
            self.add_error(None, exc.message)
        return data


def _counts_table(campaign: Campaign) -> str:
    counts = selectors.campaign_counts(campaign=campaign)
    if not counts.total:
        return "no deliveries yet"
    rows = []
    for status, number in sorted(counts.by_status.items()):
        reasons = ", ".join(
            f"{reason}: {n}" for reason, n in sorted(counts.by_reason.get(status, {}).items())
        )
        rows.append((status, number, reasons))
    return format_html(
        "<table><tr><th>status</th><th>messages</th><th>by reason</th></tr>{}</table>",
        format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
    )


def _preview_summary(preview: AudiencePreview) -> str:
    result = selectors.preview_of(preview.counts)
    reasons = format_html_join(", ", "{}: {}", sorted(preview.counts.items())) or "none yet"
    finished = f", finished {preview.finished_at:%Y-%m-%d %H:%M:%S}" if preview.finished_at else ""
    error = format_html("<br>error: {}", preview.error) if preview.error else ""
    return format_html(
        "{} ({} / {} decided{}); would send {}; by reason: {}{}",
        preview.get_status_display(),
        preview.decided,
        preview.total,
        finished,
        result.would_send,
        reasons,
        error,
    )


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin[Campaign]):
    form = CampaignForm
    list_display = [
        "id",
        "name",
        "studio_link",
        "brand",
        "channel",
        "state",
        "send_at",
        "sent",
        "denied",
        "deferred",
        "failed",
    ]
    list_filter = ["status", "brand", "channel"]
    search_fields = ["name"]
    readonly_fields = [
        "studio_link",
        "state",
        "status_detail",
        "provider_paused_since",
        "counts",
        "failures",
        "latest_preview",
        "created_by",
        "started_at",
        "finished_at",
    ]
    actions = ["preview", "send_now", "schedule", "pause", "resume", "cancel", "retry_failed"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return (
            super()
            .get_queryset(request)
            .select_related("brand", "purpose")
            .annotate(
                n_sent=Count("deliveries", filter=Q(deliveries__status__in=["sent", "delivered"])),
                n_denied=Count("deliveries", filter=Q(deliveries__status="denied")),
                n_deferred=Count("deliveries", filter=Q(deliveries__status="deferred")),
                n_failed=Count("deliveries", filter=Q(deliveries__status__in=["failed", "bounced"])),
            )
        )

    @admin.display(description=_("in the studio"))
    def studio_link(self, obj: Campaign) -> str:
        if not obj.pk:
            return "-"
        return format_html(
            '<a href="{}">{}</a>', reverse("studio:campaign", args=[obj.pk]), _("Open in the studio")
        )

    @admin.display(description="sent")
    def sent(self, obj: Any) -> int:
        return int(obj.n_sent)

    @admin.display(description="denied")
    def denied(self, obj: Any) -> int:
        return int(obj.n_denied)

    @admin.display(description="deferred")
    def deferred(self, obj: Any) -> int:
        return int(obj.n_deferred)

    @admin.display(description="failed")
    def failed(self, obj: Any) -> int:
        return int(obj.n_failed)

    @admin.display(description="status", ordering="status")
    def state(self, obj: Campaign) -> str:
        state = selectors.campaign_state(obj)
        if obj.provider_paused_since is not None and obj.status == "sending":
            return f"{state} (since {obj.provider_paused_since:%Y-%m-%d %H:%M:%S})"
        return state

    @admin.display(description="Messages that never reached the provider")
    def failures(self, obj: Campaign) -> str:
        if not obj.pk:
            return "-"
        found = selectors.campaign_failures(campaign_id=obj.pk)
        if not found.count:
            return "none"
        reasons = ", ".join(f"{reason}: {n}" for reason, n in found.by_reason.items())
        return f"{found.count} ({reasons}); the action “Retry failed deliveries” sends them again"

    @admin.display(description="Deliveries by status and reason")
    def counts(self, obj: Campaign) -> str:
        return _counts_table(obj) if obj.pk else "-"

    @admin.display(description="Latest preview")
    def latest_preview(self, obj: Campaign) -> str:
        preview = selectors.audience_preview_latest(campaign=obj) if obj.pk else None
        return _preview_summary(preview) if preview else "-"

    def has_delete_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        data = form._input()
        if change:
            services.campaign_update(campaign=obj, data=data)
        else:
            created = services.campaign_create(
                brand=form.cleaned_data["brand"], data=data, created_by=f"admin:{request.user}"
            )
            obj.pk = created.pk

    def _each(self, request: HttpRequest, queryset: QuerySet[Campaign], action: Any, verb: str) -> None:
        for campaign in queryset:
            try:
                action(campaign=campaign)
                self.message_user(request, f"{campaign.name}: {verb}")
            except DomainError as exc:
                self.message_user(request, f"{campaign.name}: {exc.message}", messages.ERROR)

    @admin.action(description="Preview audience and would-be denials")
    def preview(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        for campaign in queryset:
            result = previews.campaign_preview_request(
                campaign=campaign, requested_by=f"admin:{request.user}"
            )
            if isinstance(result, AudiencePreview):
                self.message_user(
                    request,
                    f"{campaign.name}: the preview of {result.total} recipients runs in the background; "
                    "its progress is shown on the campaign's page",
                )
                continue
            denials = ", ".join(f"{reason}: {n}" for reason, n in result.would_deny.items()) or "none"
            self.message_user(
                request,
                f"{campaign.name}: audience {result.audience}, would send {result.would_send}; denied by reason: {denials}",
            )

    @admin.action(description="Send now")
    def send_now(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, services.campaign_send_now, "sending")

    @admin.action(description="Schedule at its send time")
    def schedule(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, services.campaign_schedule, "scheduled")

    @admin.action(description="Pause")
    def pause(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, services.campaign_pause, "paused")

    @admin.action(description="Resume")
    def resume(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, services.campaign_resume, "resumed")

    @admin.action(description="Retry failed deliveries (through the gate again)")
    def retry_failed(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        for campaign in queryset:
            try:
                _, queued = services.campaign_retry_failed(campaign=campaign)
                self.message_user(request, f"{campaign.name}: {queued} failed messages queued again")
            except DomainError as exc:
                self.message_user(request, f"{campaign.name}: {exc.message}", messages.ERROR)

    @admin.action(description="Cancel")
    def cancel(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        self._each(request, queryset, services.campaign_cancel, "cancelled")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin[Delivery]):
    list_display = ["id", "campaign", "contact_id", "channel", "status", "reason", "decided_at", "sent_at"]
    list_filter = ["status", "reason", "channel"]
    search_fields = ["=campaign__id", "=contact__id", "=provider_id"]
    list_select_related = ["campaign"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AudiencePreview)
class AudiencePreviewAdmin(admin.ModelAdmin[AudiencePreview]):
    """Preview jobs, read-only: the campaign's preview action starts them."""

    list_display = ["id", "campaign", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["=campaign__id"]
    list_select_related = ["campaign"]
    fields = readonly_fields = (
        "campaign",
        "status",
        "progress",
        "summary",
        "error",
        "runs",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
    )

    @admin.display(description="progress")
    def progress(self, obj: AudiencePreview) -> str:
        return f"{obj.decided} / {obj.total}"

    @admin.display(description="counts by reason")
    def summary(self, obj: AudiencePreview) -> str:
        return _preview_summary(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
