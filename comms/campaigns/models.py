"""Campaigns and their deliveries. A Delivery row is the truth about one message: the broker
only carries ids, and (campaign, contact, channel) is unique so nothing is ever sent twice."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from comms.contacts.models import Brand, Contact
from comms.suppression.models import ConsentEvent, Purpose


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    # Finished, but some allowed messages never reached the provider (see status_detail); a
    # marketer can retry them.
    SENT_WITH_FAILURES = "sent_with_failures", "Sent with failures"
    PAUSED = "paused", "Paused"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class Provider(models.TextChoices):
    LIFEVISION = "lifevision", "LifeVision"
    MAILCHIMP = "mailchimp", "Mailchimp"


class Campaign(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=10, choices=[("email", "Email"), ("sms", "SMS")])
    provider = models.CharField(max_length=20, choices=Provider.choices, default=Provider.LIFEVISION)
    purpose = models.ForeignKey(Purpose, on_delete=models.PROTECT, related_name="campaigns")
    # Audience filters (see comms.campaigns.audience.AUDIENCE_FIELDS); empty means the whole brand.
    audience = models.JSONField(default=dict, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(
        help_text="SMS text, or the plain-text part of an email. {first_name} etc. allowed."
    )
    # The marketer's limit on SMS length, in segments (1 segment = 160 GSM characters).
    sms_max_segments = models.PositiveSmallIntegerField(default=2)
    send_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    status_detail = models.CharField(max_length=300, blank=True)
    # Set while its provider's circuit is open ("paused — provider unavailable", since then): the
    # campaign stays ``sending`` and goes on by itself once the provider answers again.
    provider_paused_since = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "send_at"], name="campaign_due")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_status_display()})"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    DENIED = "denied", "Denied by the gate"
    DEFERRED = "deferred", "Deferred"
    SENT = "sent", "Handed to the provider"
    FAILED = "failed", "Failed"
    DELIVERED = "delivered", "Delivered"
    BOUNCED = "bounced", "Bounced"
    CANCELLED = "cancelled", "Cancelled with the campaign"


class Delivery(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="deliveries")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="deliveries")
    channel = models.CharField(max_length=10)
    status = models.CharField(max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    # The gate's reason (allowed basis or denial code), or why it was deferred or failed.
    reason = models.CharField(max_length=60, blank=True)
    decision_event = models.ForeignKey(
        ConsentEvent, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Sent to the provider as external_id: fixed per delivery, so a retry is recognised as one.
    external_id = models.UUIDField(unique=True)
    provider_id = models.CharField(max_length=100, blank=True)
    address_key = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    deferred_until = models.DateTimeField(null=True, blank=True)
    # When its hand-off first failed transiently (or was held by an open circuit): it is retried
    # until COMMS_SEND_RETRY_WINDOW after this, then failed. Quiet hours start the clock afresh.
    failing_since = models.DateTimeField(null=True, blank=True)
    # Last time the id was handed to the broker; the sweep re-enqueues what nobody picked up.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # SMS from an alphanumeric sender carry a short unsubscribe link /s/<short_code>.
    short_code = models.CharField(max_length=12, null=True, blank=True, unique=True)
    segments = models.PositiveSmallIntegerField(default=0)
    segments_delivered = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "contact", "channel"], name="delivery_once_per_campaign"
            ),
        ]
        indexes = [
            models.Index(fields=["campaign", "status"], name="delivery_campaign_status"),
            models.Index(fields=["contact", "channel", "sent_at"], name="delivery_contact_sent"),
            models.Index(fields=["provider_id"], condition=~Q(provider_id=""), name="delivery_provider_id"),
            models.Index(
                fields=["deferred_until"], condition=Q(status="deferred"), name="delivery_deferred_due"
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} {self.status}"


class CallbackReceipt(models.Model):
    """One provider callback, kept once: the unique key makes at-least-once delivery harmless."""

    provider = models.CharField(max_length=20)
    kind = models.CharField(max_length=20)
    dedupe_key = models.CharField(max_length=200)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("provider callback")
        verbose_name_plural = _("provider callbacks")
        constraints = [
            models.UniqueConstraint(fields=["provider", "kind", "dedupe_key"], name="callback_once"),
        ]
        indexes = [
            # The sweep finds receipts whose processing message the broker may have lost.
            models.Index(
                fields=["received_at"], condition=Q(processed_at__isnull=True), name="callback_unprocessed"
            ),
        ]


class ReplyStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Handed to the provider"
    FAILED = "failed", "Failed"


class Reply(models.Model):
    """A service SMS that answers one inbound SMS (a STOPP confirmation, a START question, the
    JA confirmation, the HJELP text). Never marketing, so it does not pass the gate; the
    one-to-one link to the inbound receipt allows at most one reply per inbound message."""

    inbound_receipt = models.OneToOneField(CallbackReceipt, on_delete=models.PROTECT, related_name="reply")
    keyword = models.CharField(max_length=20)
    to = models.CharField(max_length=20)
    # The number (or name) the person wrote to: the reply comes from there.
    sender = models.CharField(max_length=20)
    text = models.TextField()
    status = models.CharField(max_length=10, choices=ReplyStatus.choices, default=ReplyStatus.QUEUED)
    # Sent to the provider as external_id: a retry is recognised as the same message.
    external_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    provider_id = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("SMS reply")
        verbose_name_plural = _("SMS replies")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["created_at"], condition=Q(status="queued"), name="reply_queued"),
        ]

    def __str__(self) -> str:
        return f"reply {self.pk} {self.keyword} {self.status}"


# --- follow-ups (comms/campaigns/followups/) -------------------------------------------------


class FollowUpTrigger(models.TextChoices):
    TRIAL_VISIT = "trial_visit", "Trial visit of a guest or lead"
    CLASS_BOOKING = "class_booking", "Class booking"
    NO_VISIT = "no_visit", "Member without a visit for N days"


class FollowUpRule(models.Model):
    """When to follow a person up, and with what. The message itself (channel, purpose, content,
    provider) is the rule's own campaign, which stays ``sending`` while the rule is active: every
    follow-up is a Delivery of that campaign and goes out through the one send path."""

    brand = models.ForeignKey(Brand, on_delete=models.PROTECT, related_name="followup_rules")
    name = models.CharField(max_length=200)
    trigger = models.CharField(max_length=20, choices=FollowUpTrigger.choices)
    # After the trigger moment: the visit, or the moment a member reached ``inactive_days``.
    delay_hours = models.PositiveIntegerField()
    inactive_days = models.PositiveIntegerField(null=True, blank=True)
    campaign = models.OneToOneField(Campaign, on_delete=models.PROTECT, related_name="followup_rule")
    created_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("follow-up rule")
        verbose_name_plural = _("follow-up rules")
        ordering = ["brand__key", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(trigger="no_visit", inactive_days__isnull=False)
                | (~Q(trigger="no_visit") & Q(inactive_days__isnull=True)),
                name="followuprule_inactive_days_only_for_no_visit",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_trigger_display()})"


class FollowUp(models.Model):
    """One follow-up of one person: the Delivery that carries it and why it was planned. The
    window closes ``COMMS_FOLLOWUP_WINDOW_DAYS`` after the trigger moment."""

    delivery = models.OneToOneField(Delivery, on_delete=models.PROTECT, related_name="followup")
    rule = models.ForeignKey(FollowUpRule, on_delete=models.PROTECT, related_name="followups")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="followups")
    # The visit that triggered it (trial, class) or the last one before the lapse (no_visit);
    # erasure deletes visits, so the link may go.
    visit = models.ForeignKey(
        "contacts.Visit", on_delete=models.SET_NULL, null=True, blank=True, related_name="followups"
    )
    anchor_at = models.DateTimeField()
    due_at = models.DateTimeField()
    window_ends_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["contact", "due_at"], name="followup_contact_due")]

    def __str__(self) -> str:
        return f"follow-up {self.pk} ({self.rule_id}) for contact {self.contact_id}"


# --- audience previews that run as a job (comms/campaigns/previews.py) ----------------------


class PreviewStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class AudiencePreview(models.Model):
    """The gate's would-be decisions over an audience too large to decide inside a web request,
    counted by reason range by range of contact ids. Writes nothing else and sends nothing."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="previews")
    status = models.CharField(max_length=10, choices=PreviewStatus.choices, default=PreviewStatus.QUEUED)
    # The audience size counted when requested (and again when the run starts); at the end the
    # number decided.
    total = models.PositiveIntegerField(default=0)
    decided = models.PositiveIntegerField(default=0)
    # Reason -> number of contacts, as decided so far (allowed bases and denials alike).
    counts = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    # How many runs started; a run writes only while it is the latest (a redelivered message
    # restarts the preview from zero and the run it replaced stops at its next save).
    runs = models.PositiveSmallIntegerField(default=0)
    requested_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # When a run last saved its progress, or the sweep last sent the preview's message again: a
    # queued or running preview untouched for COMMS_PREVIEW_SWEEP_AFTER_SECONDS lost its message.
    touched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("audience preview")
        verbose_name_plural = _("audience previews")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["campaign", "-created_at"], name="preview_campaign_recent")]

    def __str__(self) -> str:
        return f"preview {self.pk} of campaign {self.campaign_id} ({self.status})"

    @property
    def progress(self) -> float:
        """Share decided, 0–1 (1 when done, whatever the audience grew or shrank to meanwhile)."""
        if self.status == PreviewStatus.DONE:
            return 1.0
        return min(1.0, self.decided / self.total) if self.total else 0.0
