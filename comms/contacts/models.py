"""Contacts: members, trial guests and leads of a brand, with their visits.

Only what messaging needs is kept (DESIGN §6): name, birth date, email, mobile, brand, centre,
tags, visits. Erasure blanks the personal fields and keeps the row, so ledger events and
deliveries still point at an id.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from comms.contacts.keys import address_key


class Brand(models.Model):
    key = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    # The SMS sender shown to the member: ≤ 11 alphanumerics, or a short number.
    sms_sender = models.CharField(max_length=16, blank=True)
    email_from = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("brand")
        verbose_name_plural = _("brands")
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class Centre(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="centres")
    key = models.SlugField(max_length=60)
    name = models.CharField(max_length=100)

    class Meta:
        verbose_name = _("centre")
        verbose_name_plural = _("centres")
        ordering = ["brand__key", "key"]
        constraints = [models.UniqueConstraint(fields=["brand", "key"], name="centre_unique_key_per_brand")]

    def __str__(self) -> str:
        return f"{self.name} ({self.brand.key})"


class Tag(models.Model):
    name = models.SlugField(max_length=60, unique=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ContactKind(models.TextChoices):
    MEMBER = "member", "Member"
    GUEST = "guest", "Trial guest"
    LEAD = "lead", "Lead"


class Contact(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="contacts")
    kind = models.CharField(max_length=10, choices=ContactKind.choices)
    # The id in the member system the contact was imported from; imports are idempotent on it.
    external_id = models.CharField(max_length=100, null=True, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    # Normalised: email lower-cased and trimmed, mobile in E.164.
    email = models.EmailField(max_length=254, null=True, blank=True)
    mobile = models.CharField(max_length=20, null=True, blank=True)
    # Keyed hashes of the current addresses (``comms.contacts.keys``), kept by ``save()`` so the
    # set-based gate can join the suppression list in SQL. Empty when there is no address.
    email_key = models.CharField(max_length=64, blank=True, default="", editable=False)
    mobile_key = models.CharField(max_length=64, blank=True, default="", editable=False)
    guardian = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="wards"
    )
    home_centre = models.ForeignKey(Centre, on_delete=models.PROTECT, null=True, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts")
    # A purchase on record is one condition of the soft opt-in (markedsføringsloven § 15(3)).
    purchase_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "external_id"],
                condition=Q(external_id__isnull=False),
                name="contact_unique_external_id_per_brand",
            ),
        ]
        indexes = [
            models.Index(fields=["brand", "kind"], name="contact_brand_kind"),
            models.Index(fields=["email"], name="contact_email"),
            models.Index(fields=["mobile"], name="contact_mobile"),
            models.Index(fields=["email_key"], name="contact_email_key"),
            models.Index(fields=["mobile_key"], name="contact_mobile_key"),
        ]

    def __str__(self) -> str:
        if self.erased_at:
            return f"Contact {self.pk} (erased)"
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name or 'Contact'} #{self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The keys are a pure function of the addresses: every write of an address refreshes
        # them, whichever path (service, admin, webhook) makes it.
        self.refresh_address_keys()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and ({"email", "mobile"} & set(update_fields)):
            kwargs["update_fields"] = {*update_fields, "email_key", "mobile_key"}
        super().save(*args, **kwargs)

    def refresh_address_keys(self) -> None:
        """Set ``email_key`` / ``mobile_key`` from the current addresses (call before a
        ``bulk_create``, which skips ``save()``)."""
        self.email_key = address_key("email", self.email) if self.email else ""
        self.mobile_key = address_key("sms", self.mobile) if self.mobile else ""

    def address_key_for(self, channel: str) -> str:
        return self.email_key if channel == "email" else self.mobile_key

    def age_on(self, day: date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def address_for(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.mobile


class VisitKind(models.TextChoices):
    TRIAL_SESSION = "trial_session", "Trial session"
    CHECK_IN = "check_in", "Check-in"
    CLASS_BOOKING = "class_booking", "Class booking"


class Visit(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="visits")
    kind = models.CharField(max_length=20, choices=VisitKind.choices)
    centre = models.ForeignKey(Centre, on_delete=models.PROTECT, null=True, blank=True)
    occurred_at = models.DateTimeField()
    external_id = models.CharField(max_length=100, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("visit")
        verbose_name_plural = _("visits")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "external_id"],
                condition=Q(external_id__isnull=False),
                name="visit_unique_external_id_per_contact",
            ),
        ]
        indexes = [models.Index(fields=["contact", "occurred_at"], name="visit_contact_occurred")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.occurred_at:%Y-%m-%d}"
