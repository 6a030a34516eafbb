from django.apps import AppConfig


class OpsConfig(AppConfig):
    """No models: an app for its management commands (``rundev``, ``seed_demo``)."""

    name = "comms.ops"
    label = "ops"
    verbose_name = "comms operations"
