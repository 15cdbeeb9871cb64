from django.urls import path

from billflow_usage.views import meter_error_webhook

urlpatterns = [path("stripe/meter-errors/", meter_error_webhook)]
