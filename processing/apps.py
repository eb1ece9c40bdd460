from django.apps import AppConfig


class ProcessingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "processing"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from . import health

        # Each qcluster worker process beats while it lives (processing.health).
        post_spawn.connect(health.worker_heartbeat_start, dispatch_uid="easycrm-worker-heartbeat")
