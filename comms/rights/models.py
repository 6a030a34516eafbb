"""The rights audit log: every rights action and every refused attempt, who, what, when.

It holds no personal data (a contact id, the API key's or job's name, the names of changed
fields), so it outlives an erasure. The database refuses to update or delete it (migration 0002).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class RightsAction(models.TextChoices):
    EXPORT = "export", "Export (arts. 15, 20)"
    LOG = "log", "Communication log (art. 15)"
    RECTIFY = "rectify", "Rectification (art. 16)"
    ERASE = "erase", "Erasure (art. 17)"
    ERASE_PROPAGATION = "erase_propagation", "Erasure passed on to providers"
    RESTRICT = "restrict", "Restriction (art. 18)"
    LIFT_RESTRICTION = "lift_restriction", "Restriction lifted"
    RETENTION = "retention", "Retention run"
    ERASE_REQUEST = "erase_request", "Erasure requested by the person (self-service)"


class AuditEntry(models.Model):
    at = models.DateTimeField()
    # ``api-key:<name>``, ``admin:<user>`` or ``system:<job>``.
    actor = models.CharField(max_length=120)
    action = models.CharField(max_length=30, choices=RightsAction.choices)
    # A plain number, not a foreign key: a refused call may name an id that does not exist.
    contact_id = models.BigIntegerField(null=True, blank=True)
    # ``ok``, or ``refused <HTTP status>: <message>``.
    outcome = models.CharField(max_length=300)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["contact_id", "at"], name="rights_audit_contact_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.contact_id or '-'}: {self.outcome}"


class RightsRequestKind(models.TextChoices):
    ERASURE = "erasure", "Erasure (art. 17)"


class RightsRequestStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    REFUSED = "refused", "Refused"


class RightsRequest(models.Model):
    """A request the person made from the preference centre, after proving they hold the
    address, that the DPO must review (an erasure of a member, whose membership is a contract).
    Art. 12(3): answered within one month of receipt (``due_at``)."""

    contact = models.ForeignKey("contacts.Contact", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=RightsRequestKind.choices)
    channel = models.CharField(max_length=10)  # the address the person proved they hold
    status = models.CharField(
        max_length=10, choices=RightsRequestStatus.choices, default=RightsRequestStatus.OPEN
    )
    received_at = models.DateTimeField()
    due_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.CharField(max_length=120, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("rights request")
        verbose_name_plural = _("rights requests")
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"], name="rights_request_queue")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for contact {self.contact_id}, due {self.due_at:%Y-%m-%d}"
