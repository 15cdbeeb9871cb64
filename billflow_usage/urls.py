"""Customer-facing usage endpoints: ``path("billing/", include("billflow_usage.urls"))``.

``usage/<metric>/`` answers JSON for the signed-in user's customer (see
``BILLFLOW_USAGE["CUSTOMER_FOR_REQUEST"]``).
"""

from django.urls import path

from billflow_usage.usage_limits.views import usage_view

app_name = "billflow_usage"

urlpatterns = [
    path("usage/<str:metric>/", usage_view, name="usage"),
]
