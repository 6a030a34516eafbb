from django.apps import AppConfig


class RightsConfig(AppConfig):
    name = "comms.rights"
    label = "rights"
    verbose_name = "Data-protection rights"
