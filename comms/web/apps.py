from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "comms.web"
    label = "web"
    verbose_name = "Member pages"
