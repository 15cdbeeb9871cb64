"""Base URLs a sink is reached at: the one rule for their shape, and whether one stays on
this machine.

Neutral ground: the settings checks (``billflow_usage.E005``) and a backend's own checks
(a key sent in clear text) both need these rules, and backends import nothing of the app
above them.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

#: Host names of this machine, besides the loopback addresses (127.0.0.0/8, ::1).
LOOPBACK_NAMES = ("localhost",)


def is_base_url(value: Any) -> bool:
    """``http(s)://host[:port][/path]``: no user, query, fragment, space or backslash, which
    a URL parser and an HTTP client could read differently."""
    if not (isinstance(value, str) and value.startswith(("http://", "https://"))):
        return False
    if not value.isprintable() or any(c in value for c in " @\\?#"):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return False
    return bool(parts.hostname)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host name) is this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
