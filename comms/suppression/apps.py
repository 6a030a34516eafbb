from django.apps import AppConfig


class SuppressionConfig(AppConfig):
    name = "comms.suppression"
    label = "suppression"
    verbose_name = "Consent ledger and suppressions"
