from django.apps import AppConfig

from comms.core.inprocess import load_task_modules


class CoreConfig(AppConfig):
    name = "comms.core"
    label = "core"
    verbose_name = "comms"

    def ready(self) -> None:
        from comms.core import throttle  # noqa: F401  (connects the login signals)

        # Every process declares every actor (and its queue) at start, as ``rundramatiq`` does:
        # services enqueue them by name (``comms.core.jobs``), and a worker consumes only the
        # queues declared when it starts.
        load_task_modules()
