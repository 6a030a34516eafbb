from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "comms.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"
