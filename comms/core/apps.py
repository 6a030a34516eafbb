from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "comms.core"
    label = "core"
    verbose_name = "comms"
