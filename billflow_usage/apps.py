from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class BillflowUsageConfig(AppConfig):
    name = "billflow_usage"
    verbose_name = _("Usage billing")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billflow_usage import checks  # noqa: F401  (registers the system checks)
        from billflow_usage.installation import create_installation
        from billflow_usage.observability.receivers import connect as connect_metrics
        from billflow_usage.services.setup import checks as setup_checks  # noqa: F401
        from billflow_usage.tracking import checks as tracking_checks  # noqa: F401
        from billflow_usage.tracking.discovery import discover
        from billflow_usage.usage_limits import checks as limit_checks  # noqa: F401
        from billflow_usage.webhooks import connect_djstripe

        post_migrate.connect(
            create_installation, sender=self, dispatch_uid="billflow_usage.installation"
        )
        discover()
        connect_djstripe()
        connect_metrics()
