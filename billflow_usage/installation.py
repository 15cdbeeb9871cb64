"""The installation's namespace, read once per process and database.

``migrate`` creates the :class:`~billflow_usage.models.Installation` row (a ``post_migrate``
receiver, like contenttypes and permissions, so ``--run-syncdb``, test databases built without
migrations and ``flush`` get one too) and remembers its namespace. Any other process reads it
on first use and keeps it: a tracked save costs no query for it. Should the row be missing, the
first use creates it (``get_or_create``, safe against a concurrent creation), and keeps it
only once that is committed, so a rolled-back transaction never leaves a namespace behind
that the database doesn't have.
"""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS, router, transaction

from billflow_usage.models import Installation
from billflow_usage.models.installation import ONLY_ROW

#: The namespace of each database alias, as read or created.
_namespaces: dict[str, str] = {}


def namespace(using: str) -> str:
    """The namespace of the installation whose ledger is the ``using`` database."""
    found = _namespaces.get(using)
    if found is None:
        installation, _ = Installation.objects.using(using).get_or_create(pk=ONLY_ROW)
        found = installation.namespace
        transaction.on_commit(lambda: _remember(using, found), using=using)
    return found


def create_installation(
    app_config: AppConfig,
    using: str = DEFAULT_DB_ALIAS,
    apps: Any = global_apps,
    **kwargs: Any,
) -> None:
    """``post_migrate``: make sure the database has its row, and remember its namespace.

    Uses the model as the migrations left it: before the migration that creates it (a
    migrate backwards), there is nothing to do.
    """
    try:
        model = apps.get_model("billflow_usage", "Installation")
    except LookupError:
        return
    if not router.allow_migrate_model(using, model):
        return
    installation, _ = model.objects.using(using).get_or_create(pk=ONLY_ROW)
    _remember(using, installation.namespace)


def _remember(using: str, value: str) -> None:
    _namespaces[using] = value
