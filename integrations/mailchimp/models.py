"""What comms remembers about Mailchimp: the propagation of each withdrawal, the evidence of
each campaign send, and where reconciliation left off."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from comms.campaigns.models import Campaign
from comms.contacts.models import Contact


class PropagationStatus(models.TextChoices):
    PENDING = "pending", "Waiting to reach Mailchimp"
    DONE = "done", "Unsubscribed in Mailchimp"
    FAILED = "failed", "Refused by Mailchimp"


class AudienceUnsubscribe(models.Model):
    """One address that must be ``unsubscribed`` in one audience, and whether it is yet.

    ``email`` is kept only until Mailchimp has it: it is blanked once propagated, so an erased
    contact's address does not outlive the push. A later withdrawal reopens the row."""

    contact = models.ForeignKey(Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    list_id = models.CharField(max_length=40)
    address_key = models.CharField(max_length=64)
    email = models.CharField(max_length=254, blank=True)
    # The ledger event that asked for it (0 when reconciliation found it).
    event_id = models.BigIntegerField(default=0)
    status = models.CharField(
        max_length=10, choices=PropagationStatus.choices, default=PropagationStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    requested_at = models.DateTimeField()
    propagated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("Mailchimp unsubscribe")
        verbose_name_plural = _("Mailchimp unsubscribes")
        constraints = [
            models.UniqueConstraint(fields=["list_id", "address_key"], name="mailchimp_unsubscribe_once"),
        ]
        indexes = [
            models.Index(
                fields=["requested_at"], condition=Q(status="pending"), name="mailchimp_unsub_pending"
            ),
            models.Index(fields=["contact"], name="mailchimp_unsub_contact"),
        ]

    def __str__(self) -> str:
        return f"unsubscribe {self.address_key[:8]}… in {self.list_id}: {self.status}"


class CampaignSend(models.Model):
    """Evidence of one Mailchimp send: who was in the static segment at the snapshot, who the
    final diff took out, and when each step happened."""

    campaign = models.OneToOneField(Campaign, on_delete=models.PROTECT, related_name="mailchimp_send")
    list_id = models.CharField(max_length=40)
    segment_id = models.CharField(max_length=40, blank=True)
    mailchimp_campaign_id = models.CharField(max_length=40, blank=True)
    snapshot_at = models.DateTimeField()
    # Delivery ids and address keys (never addresses) of the allowed members at the snapshot.
    members = models.JSONField(default=list)
    removed = models.JSONField(default=list)
    final_diff_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Transient failures of the send (5xx, timeouts): retried until COMMS_SEND_RETRY_WINDOW after
    # the first, then the campaign fails (a marketer can retry it).
    failing_since = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("Mailchimp send")
        verbose_name_plural = _("Mailchimp sends")

    def __str__(self) -> str:
        return f"Mailchimp send of campaign {self.campaign_id}"


class SyncState(models.Model):
    """Where reconciliation of one audience left off."""

    list_id = models.CharField(max_length=40, unique=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_result = models.JSONField(default=dict)

    class Meta:
        verbose_name = _("Mailchimp sync state")
        verbose_name_plural = _("Mailchimp sync states")

    def __str__(self) -> str:
        return f"sync {self.list_id}"
