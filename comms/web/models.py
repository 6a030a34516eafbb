"""Service messages the member pages send: double-opt-in confirmations and fresh links.

They are not marketing, so they do not pass the gate (the person has just asked for them on our
page); every one is recorded here and sent by ``comms.web.messages.member_message_send``.
No personal data and no link is stored: the row names the contact and the address's keyed hash,
and the message is composed (and its signed link made) when it is handed to LifeVision, only if
the contact's address still has that key.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from comms.contacts.models import Contact


class MemberMessageKind(models.TextChoices):
    CONFIRM = "confirm", "Double-opt-in confirmation"
    LINK = "link", "Fresh preferences link"
    RIGHTS = "rights", "Self-service rights link (export, erasure)"


class MemberMessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Handed to the provider"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled (the address changed)"


class MemberMessage(models.Model):
    kind = models.CharField(max_length=10, choices=MemberMessageKind.choices)
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=10, choices=[("email", "Email"), ("sms", "SMS")])
    address_key = models.CharField(max_length=64)
    # For a confirmation: the pending grant events its link confirms.
    grant_ids = models.JSONField(default=list, blank=True)
    lang = models.CharField(max_length=5, default="nb")
    status = models.CharField(
        max_length=10, choices=MemberMessageStatus.choices, default=MemberMessageStatus.QUEUED
    )
    # Sent to the provider as external_id: a retry is recognised as the same message.
    external_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    provider_id = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("service message to a member")
        verbose_name_plural = _("service messages to members")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["contact", "created_at"], name="membermessage_contact"),
            models.Index(fields=["created_at"], condition=Q(status="queued"), name="membermessage_queued"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} message {self.pk} {self.status}"
