"""Who may work on which brand in the studio, and the test sends marketers make."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from comms.campaigns.models import Campaign
from comms.contacts.models import Brand


class BrandAccess(models.Model):
    """A marketer works on the campaigns of the brands listed here (the dpo group and
    superusers see every brand)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="studio_brands", verbose_name=_("user")
    )
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", verbose_name=_("brand"))

    class Meta:
        verbose_name = _("brand access")
        verbose_name_plural = _("brand accesses")
        constraints = [models.UniqueConstraint(fields=["user", "brand"], name="studio_brand_access_once")]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.brand_id}"


class TestSendStatus(models.TextChoices):
    __test__ = False

    SENT = "sent", _("Handed to the provider")
    FAILED = "failed", _("Failed")


class TestSend(models.Model):
    """One test message of a campaign to a staff address. Never a Delivery: it does not count
    for the campaign, the frequency cap or the reports, and it does not pass the marketing gate
    (the recipient is staff, not a member)."""

    __test__ = False  # not a pytest test class, whatever its name

    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="test_sends", verbose_name=_("campaign")
    )
    channel = models.CharField(_("channel"), max_length=10)
    to = models.CharField(_("recipient"), max_length=200)
    status = models.CharField(_("status"), max_length=10, choices=TestSendStatus.choices)
    external_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    provider_id = models.CharField(_("provider id"), max_length=100, blank=True)
    error = models.CharField(_("error"), max_length=300, blank=True)
    sent_by = models.CharField(_("sent by"), max_length=150)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("test send")
        verbose_name_plural = _("test sends")

    def __str__(self) -> str:
        return f"test send {self.pk} ({self.status})"
