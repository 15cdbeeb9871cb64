"""The example's customer-facing pages: a metered API endpoint under a plan limit, and an
account page showing the workspace's usage."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

import billflow_usage
from saas.models import Workspace


def workspace_for_request(request: HttpRequest) -> Workspace | None:
    """The signed-in user's workspace (its billing email is the user's): the customer of
    ``@limited`` here and of ``BILLFLOW_USAGE["CUSTOMER_FOR_REQUEST"]``."""
    if not request.user.is_authenticated:
        return None
    return Workspace.objects.filter(email=request.user.email).first()


@billflow_usage.limited("api-calls", customer=workspace_for_request)
def api_search(request: HttpRequest) -> JsonResponse:
    """One API call, one unit of "api-calls": recorded by ``limited`` with the limit checked
    in the same step, so the plan's last call is served once. Past a hard limit: 429."""
    if workspace_for_request(request) is None:
        return JsonResponse({"error": "sign in as a workspace's billing user"}, status=401)
    return JsonResponse({"query": request.GET.get("q", ""), "results": []})


@login_required
def account_usage(request: HttpRequest) -> HttpResponse:
    """The workspace's usage this billing period, with the {% usage_meter %} tag."""
    workspace = workspace_for_request(request)
    return render(request, "saas/account_usage.html", {"workspace": workspace})
