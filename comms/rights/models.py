"""The rights audit log: every rights action and every refused attempt, who, what, when.

It holds no personal data (a contact id, the API key's or job's name, the names of changed
fields), so it outlives an erasure. The database refuses to update or delete it (migration 0002).
"""

from __future__ import annotations

from django.db import models


class RightsAction(models.TextChoices):
    EXPORT = "export", "Export (arts. 15, 20)"
    LOG = "log", "Communication log (art. 15)"
    RECTIFY = "rectify", "Rectification (art. 16)"
    ERASE = "erase", "Erasure (art. 17)"
    ERASE_PROPAGATION = "erase_propagation", "Erasure passed on to providers"
    RESTRICT = "restrict", "Restriction (art. 18)"
    LIFT_RESTRICTION = "lift_restriction", "Restriction lifted"
    RETENTION = "retention", "Retention run"


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
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["contact_id", "at"], name="rights_audit_contact_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.contact_id or '-'}: {self.outcome}"
