from django.apps import AppConfig


class QueuesConfig(AppConfig):
    name = "queues"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The real-time layer listens to the engine's signals (the engine never imports it).
        from .realtime import receivers  # noqa: F401
        from .webhooks import receivers as webhook_receivers  # noqa: F401 - queue.paused and the other flags
