"""Follow-up rules for marketers, and for staff every follow-up with its state and reason (also
inline on each contact's page). Every change goes through comms.campaigns.followups.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from comms.campaigns import services as campaigns
from comms.campaigns.followups import services
from comms.campaigns.models import CampaignStatus, FollowUp, FollowUpRule
from comms.contacts.admin import ContactAdmin
from comms.contacts.models import Contact
from comms.errors import DomainError, InvalidInput


class FollowUpRuleForm(forms.ModelForm[FollowUpRule]):
    channel = forms.ChoiceField(choices=[("sms", "SMS"), ("email", "Email")])
    purpose_key = forms.CharField(label="Purpose key", help_text="e.g. trial-followup")
    subject = forms.CharField(required=False, help_text="email only")
    text = forms.CharField(widget=forms.Textarea, help_text="{first_name}, {last_name}, {brand}, {centre}")
    html = forms.CharField(widget=forms.Textarea, required=False)

    class Meta:
        model = FollowUpRule
        fields = ["brand", "name", "trigger", "delay_hours", "inactive_days"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            campaign = self.instance.campaign
            self.fields["channel"].initial = campaign.channel
            self.fields["purpose_key"].initial = campaign.purpose.key
            self.fields["subject"].initial = campaign.subject
            self.fields["text"].initial = campaign.text
            self.fields["html"].initial = campaign.html
            for name in ("brand", "trigger", "channel"):
                self.fields[name].disabled = True

    def rule_input(self) -> services.FollowUpRuleInput:
        data = self.cleaned_data
        return services.FollowUpRuleInput(
            name=data.get("name"),
            trigger=data.get("trigger"),
            delay_hours=data.get("delay_hours"),
            inactive_days=data.get("inactive_days"),
            channel=data.get("channel"),
            purpose=data.get("purpose_key"),
            subject=data.get("subject") or "",
            html=data.get("html") or "",
            text=data.get("text"),
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        brand = data.get("brand") or (self.instance.brand if self.instance.pk else None)
        if brand is None or self.errors:
            return data
        try:
            services.followup_rule_validate(
                brand=brand, data=self.rule_input(), existing=self.instance if self.instance.pk else None
            )
        except InvalidInput as exc:
            field = {"purpose": "purpose_key"}.get(exc.field, exc.field)
            self.add_error(field if field in self.fields else None, exc.message)
        except DomainError as exc:
            self.add_error(None, exc.message)
        return data

    def save(self, commit: bool = True) -> FollowUpRule:
        # The admin saves through the service (save_model); the form never writes itself.
        return self.instance


@admin.register(FollowUpRule)
class FollowUpRuleAdmin(admin.ModelAdmin[FollowUpRule]):
    form = FollowUpRuleForm
    list_display = ["id", "name", "brand", "trigger", "delay_hours", "inactive_days", "channel", "active"]
    list_filter = ["brand", "trigger"]
    list_select_related = ["brand", "campaign"]
    actions = ["pause", "resume"]

    @admin.display(description="channel")
    def channel(self, obj: FollowUpRule) -> str:
        return obj.campaign.channel

    @admin.display(description="active", boolean=True)
    def active(self, obj: FollowUpRule) -> bool:
        return obj.campaign.status == CampaignStatus.SENDING

    def has_delete_permission(self, request: HttpRequest, obj: FollowUpRule | None = None) -> bool:
        return False  # its deliveries are the record of what was sent; pause it instead

    def save_model(self, request: HttpRequest, obj: FollowUpRule, form: Any, change: bool) -> None:
        # The form ran the service's validation in clean(); the service checks it again.
        if change:
            services.followup_rule_update(rule=obj, data=form.rule_input())
        else:
            created = services.followup_rule_create(
                brand=form.cleaned_data["brand"], data=form.rule_input(), created_by=f"admin:{request.user}"
            )
            obj.pk = created.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return

    def _each(self, request: HttpRequest, queryset: QuerySet[FollowUpRule], action: Any, verb: str) -> None:
        for rule in queryset.select_related("campaign"):
            try:
                action(campaign=rule.campaign)
                self.message_user(request, f"{rule.name}: {verb}")
            except DomainError as exc:
                self.message_user(request, f"{rule.name}: {exc.message}", messages.ERROR)

    @admin.action(description="Pause (plan and send nothing)")
    def pause(self, request: HttpRequest, queryset: QuerySet[FollowUpRule]) -> None:
        self._each(request, queryset, campaigns.campaign_pause, "paused")

    @admin.action(description="Resume")
    def resume(self, request: HttpRequest, queryset: QuerySet[FollowUpRule]) -> None:
        self._each(request, queryset, campaigns.campaign_resume, "resumed")


class _FollowUpColumns:
    @admin.display(description="status")
    def status(self, obj: FollowUp) -> str:
        return obj.delivery.status

    @admin.display(description="reason")
    def reason(self, obj: FollowUp) -> str:
        return obj.delivery.reason

    @admin.display(description="sent at")
    def sent_at(self, obj: FollowUp) -> Any:
        return obj.delivery.sent_at


@admin.register(FollowUp)
class FollowUpAdmin(_FollowUpColumns, admin.ModelAdmin[FollowUp]):
    list_display = ["id", "contact_id", "rule", "due_at", "window_ends_at", "status", "reason", "sent_at"]
    list_filter = ["rule", "delivery__status", "delivery__reason"]
    search_fields = ["=contact__id"]
    list_select_related = ["rule", "delivery"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class FollowUpInline(_FollowUpColumns, admin.TabularInline[FollowUp, Contact]):
    """On a contact's page: what is planned, what went out, and why not."""

    model = FollowUp
    fk_name = "contact"
    extra = 0
    fields = readonly_fields = ("rule", "due_at", "window_ends_at", "status", "reason", "sent_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# A contact's page shows its follow-ups; the contacts app knows nothing of campaigns.
ContactAdmin.inlines = [*ContactAdmin.inlines, FollowUpInline]
