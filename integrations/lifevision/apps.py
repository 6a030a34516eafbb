from django.apps import AppConfig


class LifeVisionConfig(AppConfig):
    """LifeVision's package is an app for its actors (``tasks.py``) only: it has no models; the
    receipts and replies it writes are ``comms.campaigns``' tables."""

    name = "integrations.lifevision"
    label = "lifevision"
    verbose_name = "LifeVision"
