"""Kept: every admin view and action of billflow_usage (on Django's site and on a host
project's site with UsageAdminMixin) refuses staff without its permission (view to read,
change or the action's own to act) and refuses POSTs without a CSRF token."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.db.models import Model
from django.test import Client
from django.urls import URLPattern, reverse
from django.utils import timezone

from billflow_usage.admin import UsageAdminMixin
from billflow_usage.admin.reconciliation import PERMISSIONS as RECONCILE_PERMISSIONS
from billflow_usage.models import (
    Metric,
    SubscriptionItemLink,
    SyncReport,
    UsageEvent,
    UsageLimit,
    UsageThresholdCrossing,
)
from tests.admin import host_site
from tests.factories import (
    MetricFactory,
    SubscriptionItemLinkFactory,
    UsageEventFactory,
    UsageLimitFactory,
    WorkspaceFactory,
)
from tests.testapp.models import Workspace

pytestmark = pytest.mark.django_db

SITES = {"admin": ("tests.urls", admin.site), "host": ("tests.admin.host_site", host_site.site)}


def our_admins() -> Iterator[tuple[str, admin.ModelAdmin]]:
    for site_name, (_, site) in SITES.items():
        for model, model_admin in site._registry.items():
            if model._meta.app_label == "billflow_usage" or isinstance(
                model_admin, UsageAdminMixin
            ):
                yield site_name, model_admin


ADMINS = list(our_admins())
ACTIONS = [
    (site_name, model_admin, name)
    for site_name, model_admin in ADMINS
    for name in [
        *(a for a in model_admin.actions or [] if isinstance(a, str)),
        *(["reconcile_usage_dry_run"] if isinstance(model_admin, UsageAdminMixin) else []),
    ]
]


def label(site_name: str, model_admin: admin.ModelAdmin, *rest: str) -> str:
    return "-".join([site_name, model_admin.opts.model_name or "", *rest])


@pytest.fixture
def objects() -> dict[type[Model], Model]:
    return {
        Metric: MetricFactory(key="perm_metric"),
        UsageEvent: UsageEventFactory(failed=True),
        SubscriptionItemLink: SubscriptionItemLinkFactory(),
        SyncReport: SyncReport.objects.create(started_at=timezone.now(), mode="check"),
        Workspace: WorkspaceFactory(),
        UsageLimit: UsageLimitFactory(),
        UsageThresholdCrossing: UsageThresholdCrossing.objects.create(
            metric=MetricFactory(key="perm_crossed"),
            customer_id="cus_Perm",
            period_start=timezone.now(),
            threshold=80,
            used=8,
            limit=10,
            crossed_at=timezone.now(),
        ),
    }


def use_site(settings: Any, site_name: str) -> None:
    settings.ROOT_URLCONF = SITES[site_name][0]


def urls(site_name: str, model_admin: admin.ModelAdmin, obj: Model) -> list[str]:
    """Every named URL of this admin, with this object or its customer filled in."""
    found = []
    for pattern in model_admin.urls:
        if not isinstance(pattern, URLPattern) or not pattern.name:
            continue
        values = {"object_id": str(obj.pk), "customer_id": "cus_Permissions"}
        kwargs = {name: values[name] for name in pattern.pattern.converters}
        found.append(reverse(f"{site_name}:{pattern.name}", kwargs=kwargs))
    return found


def staff(*codenames: str) -> User:
    user = User.objects.create_user(f"staff-{len(codenames)}-{codenames}", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)


def view_codename(model_admin: admin.ModelAdmin) -> str:
    return f"view_{model_admin.opts.model_name}"


@pytest.mark.parametrize(("site_name", "model_admin"), ADMINS, ids=[label(*a) for a in ADMINS])
def test_every_view_needs_a_permission(client, settings, objects, site_name, model_admin):
    use_site(settings, site_name)
    client.force_login(staff())
    pages = urls(site_name, model_admin, objects[model_admin.model])
    assert len(pages) >= 5
    for url in pages:
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize(("site_name", "model_admin"), ADMINS, ids=[label(*a) for a in ADMINS])
def test_viewing_is_not_changing(client, settings, objects, site_name, model_admin):
    use_site(settings, site_name)
    client.force_login(staff(view_codename(model_admin), "view_usageevent"))
    obj = objects[model_admin.model]
    opts = model_admin.opts
    change = reverse(f"{site_name}:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    changelist = reverse(f"{site_name}:{opts.app_label}_{opts.model_name}_changelist")
    assert client.get(changelist).status_code == 200
    assert client.get(change).status_code == 200
    assert client.post(change, {"quantity": 99, "name": "x", "key": "x"}).status_code == 403


def test_list_editable_quantities_need_the_change_permission(client, objects):
    link = objects[SubscriptionItemLink]
    client.force_login(staff("view_subscriptionitemlink"))
    client.post(
        reverse("admin:billflow_usage_subscriptionitemlink_changelist"),
        {
            "form-TOTAL_FORMS": 1,
            "form-INITIAL_FORMS": 1,
            "form-0-id": link.pk,
            "form-0-quantity": 99,
            "_save": "Save",
        },
    )
    link.refresh_from_db()
    assert link.quantity != 99


def spy_on(monkeypatch: Any, model_admin: admin.ModelAdmin, name: str) -> list[str]:
    """Replace the action with a recorder that keeps its description and permissions."""
    calls: list[str] = []
    real: Callable[..., Any] = getattr(type(model_admin), name)

    @functools.wraps(real)
    def recorder(self: admin.ModelAdmin, request: Any, queryset: Any) -> None:
        calls.append(name)

    monkeypatch.setattr(type(model_admin), name, recorder)
    return calls


def run_action(
    client: Client, site_name: str, model_admin: admin.ModelAdmin, obj: Model, name: str
) -> None:
    opts = model_admin.opts
    client.post(
        reverse(f"{site_name}:{opts.app_label}_{opts.model_name}_changelist"),
        {"action": name, ACTION_CHECKBOX_NAME: [obj.pk], "index": 0},
    )


@pytest.mark.parametrize(
    ("site_name", "model_admin", "name"), ACTIONS, ids=[label(*a) for a in ACTIONS]
)
def test_every_action_needs_its_permission(
    client, settings, monkeypatch, objects, site_name, model_admin, name
):
    use_site(settings, site_name)
    needed = getattr(type(model_admin), name).allowed_permissions
    assert needed, f"{name} declares no permission"
    assert "view" not in needed, f"{name} must not run for staff who may only view"
    calls = spy_on(monkeypatch, model_admin, name)
    obj = objects[model_admin.model]

    client.force_login(staff(view_codename(model_admin), "view_syncreport"))
    run_action(client, site_name, model_admin, obj, name)
    assert calls == []

    model = model_admin.opts.model_name
    granted = [
        f"view_{model}",
        f"change_{model}",
        *(p.split(".")[1] for p in RECONCILE_PERMISSIONS),
    ]
    client.force_login(staff(*granted))
    run_action(client, site_name, model_admin, obj, name)
    assert calls == [name]


@pytest.mark.parametrize(("site_name", "model_admin"), ADMINS, ids=[label(*a) for a in ADMINS])
def test_posts_without_a_csrf_token_are_refused(settings, objects, site_name, model_admin):
    use_site(settings, site_name)
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("root", password="pw"))
    obj = objects[model_admin.model]
    for url in urls(site_name, model_admin, obj):
        response = client.post(url, {"action": "x", ACTION_CHECKBOX_NAME: [obj.pk]})
        assert response.status_code == 403, url
        assert "CSRF" in response.text, url

    # With the token the same client gets through (the refusal above was the token's).
    opts = model_admin.opts
    changelist = reverse(f"{site_name}:{opts.app_label}_{opts.model_name}_changelist")
    client.get(changelist)
    token = client.cookies["csrftoken"].value
    response = client.post(
        changelist, {"csrfmiddlewaretoken": token, "action": "", ACTION_CHECKBOX_NAME: [obj.pk]}
    )
    assert response.status_code in (200, 302)
