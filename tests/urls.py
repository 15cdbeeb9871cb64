from django.contrib import admin
from django.urls import include, path

from billflow_usage.views import meter_error_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("stripe/meter-errors/", meter_error_webhook),
    path("billing/", include("billflow_usage.urls")),
]
