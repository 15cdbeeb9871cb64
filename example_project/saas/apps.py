from django.apps import AppConfig


class SaasConfig(AppConfig):
    name = "saas"
    default_auto_field = "django.db.models.BigAutoField"
