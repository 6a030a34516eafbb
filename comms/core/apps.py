from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "comms.core"
    label = "core"
    verbose_name = "comms"

    def ready(self) -> None:
        from comms.core import throttle  # noqa: F401  (connects the login signals)
