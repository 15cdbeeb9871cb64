"""Delivery sinks. :func:`get_backend` builds the one ``BILLFLOW_USAGE["BACKEND"]`` names;
:func:`get_backend_class` is that class, for what is asked of the sink without a connection
(how its errors read, its payloads, its checks)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from billflow_usage.backends.base import BaseBackend


def get_backend_class(path: str | None = None) -> type[BaseBackend]:
    """The backend class at ``path`` (default: the configured one). Raises ImportError when
    it can't be imported and ImproperlyConfigured when it is no backend (check E001)."""
    from billflow_usage.conf import SETTINGS_NAME, billflow_settings

    path = path or billflow_settings.BACKEND
    backend_class = import_string(path)
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
        raise ImproperlyConfigured(
            f"{SETTINGS_NAME}['BACKEND'] = {path!r} is not a BaseBackend subclass."
        )
    return backend_class


def get_backend(path: str | None = None, **options: Any) -> BaseBackend:
    return get_backend_class(path)(**options)
