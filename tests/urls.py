from django.contrib import admin
from django.urls import path

from billflow_usage.views import meter_error_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("stripe/meter-errors/", meter_error_webhook),
]
