"""The view Prometheus scrapes: mount it where only your scraper can reach it.

``path("metrics/billflow/", billflow_usage.observability.views.metrics)``. Without the
``metrics`` extra it answers 501 saying what to install.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from billflow_usage.observability import recorder

MISSING = (
    "billflow_usage metrics need prometheus-client: pip install 'billflow-usage[metrics]', "
    "then restart.\n"
)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """The ``billflow_usage_`` metrics in Prometheus's text format."""
    if not recorder.enabled():
        return HttpResponse(MISSING, status=501, content_type="text/plain; charset=utf-8")
    from billflow_usage.observability.exposition import render

    body, content_type = render()
    return HttpResponse(body, content_type=content_type)
