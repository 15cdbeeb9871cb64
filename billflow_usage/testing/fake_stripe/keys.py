"""API keys as Stripe judges them: test-mode secret or restricted keys are accepted, unless a
test revoked one (a rolled or deleted key: 401) or took a permission away from it (a
restricted key without the permission: 403)."""

from __future__ import annotations

import threading
from fnmatch import fnmatchcase
from typing import Any

from .errors import StripeError, authentication

ACCEPTED_PREFIXES = ("sk_test_", "rk_test_")
#: The account the fake plays (Stripe names it in permission errors).
ACCOUNT = "acct_fake"


def mask(key: str) -> str:
    """A key as Stripe shows it in errors: its prefix and last four characters."""
    return f"{key[:8]}****{key[-4:]}"


def permission_for(method: str, template: str) -> str:
    """The restricted-key permission Stripe names for a request to a route, e.g.
    ``rak_billing_meter_event_write`` for ``POST /v1/billing/meter_events``."""
    words = [part for part in template.split("/")[2:] if part and not part.startswith("{")]
    resource = "_".join(words).removesuffix("s") or "account"
    return f"rak_{resource}_{'read' if method == 'GET' else 'write'}"


class Keys:
    """Revoked keys and the permissions taken from restricted keys; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: set[str] = set()
        self._denied: dict[str, list[tuple[str, str | None]]] = {}

    def revoke(self, key: str) -> None:
        """Refuse ``key`` from now on with Stripe's 401 ``Invalid API Key provided``."""
        with self._lock:
            self._revoked.add(key)

    def restore(self, key: str) -> None:
        """Accept ``key`` again."""
        with self._lock:
            self._revoked.discard(key)

    def deny(self, key: str, route: str = "*", method: str | None = None) -> None:
        """Answer 403 to ``key``'s requests matching ``route`` (an fnmatch pattern on the path)
        and ``method``, as Stripe does for a restricted key without the permission."""
        with self._lock:
            self._denied.setdefault(key, []).append((route, method.upper() if method else None))

    def allow(self, key: str) -> None:
        """Give ``key`` back every permission taken by :meth:`deny`."""
        with self._lock:
            self._denied.pop(key, None)

    def reset(self) -> None:
        """Accept every well-formed test key again."""
        with self._lock:
            self._revoked.clear()
            self._denied.clear()

    def check(self, key: str, method: str, path: str, template: str | None = None) -> None:
        """Raise the error Stripe answers ``key`` with for ``method path`` (served by the
        route ``template``), if any."""
        if not key.startswith(ACCEPTED_PREFIXES) or len(key) <= len(ACCEPTED_PREFIXES[0]):
            raise authentication(f"Invalid API Key provided: {mask(key)}")
        with self._lock:
            revoked = key in self._revoked
            denied = any(
                (rule_method is None or rule_method == method)
                and (route == "*" or fnmatchcase(path, route))
                for route, rule_method in self._denied.get(key, ())
            )
        if revoked:
            raise authentication(f"Invalid API Key provided: {mask(key)}")
        if denied:
            permission = permission_for(method, template or path)
            raise StripeError(
                403,
                f"The provided key '{mask(key)}' does not have the required permissions for "
                f"this endpoint on account '{ACCOUNT}'. Having the '{permission}' permission "
                "would allow this request to continue.",
            )

    def summary(self) -> dict[str, Any]:
        """Masked, for ``GET /_fake/keys`` and the state summary."""
        with self._lock:
            return {
                "revoked": sorted(mask(key) for key in self._revoked),
                "restricted": {
                    mask(key): [{"route": route, "method": method} for route, method in rules]
                    for key, rules in sorted(self._denied.items())
                },
            }
