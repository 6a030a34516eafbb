from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from comms.contacts.addresses import normalise_email, normalise_mobile
from comms.contacts.models import Brand, Centre, Contact, Tag, Visit
from comms.errors import InvalidInput


class CentreInline(admin.TabularInline[Centre, Brand]):
    model = Centre
    extra = 0


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin[Brand]):
    list_display = ["key", "name", "sms_sender", "email_from"]
    inlines = [CentreInline]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin[Tag]):
    search_fields = ["name"]


class ContactForm(forms.ModelForm[Contact]):
    class Meta:
        model = Contact
        fields = [
            "brand",
            "kind",
            "external_id",
            "first_name",
            "last_name",
            "birth_date",
            "email",
            "mobile",
            "guardian",
            "home_centre",
            "tags",
            "purchase_at",
        ]

    def _normalised(self, field: str, normalise: Any) -> str | None:
        value = self.cleaned_data.get(field)
        if not value:
            return None
        try:
            return str(normalise(value, field=field))
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from None

    def clean_email(self) -> str | None:
        return self._normalised("email", normalise_email)

    def clean_mobile(self) -> str | None:
        return self._normalised("mobile", normalise_mobile)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        centre, brand = data.get("home_centre"), data.get("brand")
        if centre is not None and brand is not None and centre.brand_id != brand.pk:
            self.add_error("home_centre", "This centre belongs to another brand.")
        if self.instance.pk and data.get("guardian") and data["guardian"].pk == self.instance.pk:
            self.add_error("guardian", "A contact cannot be their own guardian.")
        return data


class VisitInline(admin.TabularInline[Visit, Contact]):
    model = Visit
    extra = 0
    fields = ["kind", "centre", "occurred_at", "external_id"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin[Contact]):
    form = ContactForm
    list_display = [
        "id",
        "first_name",
        "last_name",
        "brand",
        "kind",
        "email",
        "mobile",
        "home_centre",
        "erased_at",
    ]
    list_filter = ["brand", "kind", "home_centre", "tags"]
    search_fields = ["first_name", "last_name", "email", "mobile", "external_id"]
    autocomplete_fields = ["guardian", "tags"]
    readonly_fields = ["erased_at", "created_at", "updated_at"]
    inlines = [VisitInline]  # campaigns adds its follow-ups (comms/campaigns/followups/admin.py)
    list_select_related = ["brand", "home_centre"]

    def has_delete_permission(self, request: HttpRequest, obj: Contact | None = None) -> bool:
        # Contacts are erased (personal data blanked, ledger kept), never deleted.
        return False
