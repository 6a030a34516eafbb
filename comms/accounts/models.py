"""API keys: bearer tokens with a role, stored as SHA-256 (the key itself is shown once)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    MARKETER = "marketer", "Marketer"
    STAFF = "staff", "Staff"
    DPO = "dpo", "Data-protection officer"
    SYSTEM = "system", "System"


class ApiKey(models.Model):
    name = models.CharField(max_length=100, unique=True)
    role = models.CharField(max_length=20, choices=Role.choices)
    # First characters of the key, to recognise it in lists without revealing it.
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    # Requests made with the key; counted in the cache and written at most once a minute.
    use_count = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})"


class ApiKeyUsage(models.Model):
    """How often a key was used, per minute (the minute the counts were written)."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="usage")
    minute = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("API key usage")
        verbose_name_plural = _("API key usage")
        ordering = ["-minute"]
        constraints = [models.UniqueConstraint(fields=["api_key", "minute"], name="apikey_usage_minute")]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.minute:%Y-%m-%d %H:%M} x{self.count}"
