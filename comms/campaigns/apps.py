from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "comms.campaigns"
    label = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        # Django's place to connect receivers: they import models, which are ready only now.
        from comms.campaigns import receivers
        from comms.contacts.signals import visit_recorded

        visit_recorded.connect(receivers.visit_recorded, dispatch_uid="campaigns.followups")
