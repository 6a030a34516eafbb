from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SuppressionConfig(AppConfig):
    name = "comms.suppression"
    label = "suppression"
    verbose_name = _("Consent ledger and suppressions")
