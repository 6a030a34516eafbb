from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from comms.errors import DomainError
from comms.suppression import services
from comms.suppression.models import (
    STAFF_LIFTABLE_REASONS,
    ConsentEvent,
    ConsentEvidence,
    Purpose,
    PurposeNotice,
    Source,
    Suppression,
)


def _staff_user(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """The ledger is read-only everywhere, the admin included."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NoticeInline(admin.TabularInline[PurposeNotice, Purpose]):
    model = PurposeNotice
    extra = 0
    fields = ["version", "text", "created_at", "created_by"]
    readonly_fields = ["version", "text", "created_at", "created_by"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PurposeForm(forms.ModelForm[Purpose]):
    notice_text = forms.CharField(
        widget=forms.Textarea,
        help_text="Saving a changed text publishes a new notice version; earlier consents keep theirs.",
    )

    class Meta:
        model = Purpose
        fields = [
            "brand",
            "key",
            "name",
            "allows_email",
            "allows_sms",
            "allows_soft_opt_in",
            "marketing",
            "min_notice_version",
            "consent_lifetime_days",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            current = self.instance.current_notice()
            self.fields["notice_text"].initial = current.text if current else ""
            self.fields["brand"].disabled = True
            self.fields["key"].disabled = True

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("allows_email") and not data.get("allows_sms"):
            raise forms.ValidationError("A purpose needs at least one channel.")
        return data


@admin.register(Purpose)
class PurposeAdmin(admin.ModelAdmin[Purpose]):
    form = PurposeForm
    list_display = [
        "key",
        "name",
        "brand",
        "allows_email",
        "allows_sms",
        "allows_soft_opt_in",
        "min_notice_version",
    ]
    list_filter = ["brand", "allows_email", "allows_sms"]
    inlines = [NoticeInline]

    def save_model(self, request: HttpRequest, obj: Purpose, form: Any, change: bool) -> None:
        data = form.cleaned_data
        channels = [c for c, on in (("email", data["allows_email"]), ("sms", data["allows_sms"])) if on]
        user = _staff_user(request)
        if not change:
            created = services.purpose_create(
                brand=data["brand"],
                key=data["key"],
                name=data["name"],
                channels=channels,
                notice_text=data["notice_text"],
                allows_soft_opt_in=data["allows_soft_opt_in"],
                marketing=data["marketing"],
                min_notice_version=data["min_notice_version"],
                consent_lifetime_days=data["consent_lifetime_days"],
                created_by=user,
            )
            obj.pk = created.pk
            return
        services.purpose_notice_publish(purpose=obj, text=data["notice_text"], created_by=user)
        services.purpose_update(
            purpose=obj,
            name=data["name"],
            channels=channels,
            allows_soft_opt_in=data["allows_soft_opt_in"],
            min_notice_version=data["min_notice_version"],
            consent_lifetime_days=data["consent_lifetime_days"],
            clear_min_notice_version=data["min_notice_version"] is None,
            clear_consent_lifetime=data["consent_lifetime_days"] is None,
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Notices are published by the service, never edited: save no inline. The change message
        # reads what each formset saved, so say it saved nothing (else saving the form is a 500).
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


class EvidenceInline(admin.StackedInline[ConsentEvidence, ConsentEvent]):
    model = ConsentEvidence
    fields = ["ip", "user_agent", "proof_sha256", "redacted_at"]
    readonly_fields = ["ip", "user_agent", "proof_sha256", "redacted_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "recorded_at",
        "action",
        "channel",
        "purpose",
        "contact_id",
        "source",
        "actor",
        "chain",
        "seq",
    ]
    list_filter = ["action", "channel", "source", "actor", "brand"]
    search_fields = ["=contact__id", "=address_key", "=hash"]
    inlines = [EvidenceInline]
    list_select_related = ["purpose"]
    date_hierarchy = "recorded_at"


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "reason", "channel", "brand", "address_key", "lifted_at"]
    list_filter = ["reason", "channel", "brand"]
    search_fields = ["=address_key"]
    actions = ["lift_bounces"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and bool(request.user.is_staff)  # the action list, never the form

    @admin.action(description="Lift selected bounces / operator blocks (not what the person caused)")
    def lift_bounces(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> None:
        lifted, refused = 0, 0
        for suppression in queryset.filter(lifted_at__isnull=True):
            if suppression.reason not in STAFF_LIFTABLE_REASONS:
                refused += 1
                continue
            try:
                services.suppression_lift(
                    suppression=suppression,
                    source=Source.ADMIN,
                    principal=services.Principal(
                        actor="staff", user=_staff_user(request), recorded_by=f"admin:{request.user}"
                    ),
                )
                lifted += 1
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)
        self.message_user(request, f"Lifted {lifted}; refused {refused} that only the person can lift.")
