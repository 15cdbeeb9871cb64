"""Delivery sinks. :func:`get_backend` builds the one ``BILLFLOW_USAGE["BACKEND"]`` names."""

from __future__ import annotations

from typing import Any

from django.utils.module_loading import import_string

from billflow_usage.backends.base import BaseBackend


def get_backend(path: str | None = None, **options: Any) -> BaseBackend:
    from billflow_usage.conf import billflow_settings

    backend_class = import_string(path or billflow_settings.BACKEND)
    backend: BaseBackend = backend_class(**options)
    return backend
