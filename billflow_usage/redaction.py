"""Text from elsewhere made safe to store, log or show: secrets masked, length capped, and
values described without being turned into text of any size.

The app keeps messages it doesn't write itself (Stripe's answers, a host's exceptions in
trackers, what callers pass to ``record_usage()``) on ledger rows, in reports and in logs.
Everything of that kind goes through here, one home outside ``backends/`` since trackers,
the ledger and every backend need it.
"""

from __future__ import annotations

import functools
import math
import re
import traceback
from collections.abc import Iterable
from decimal import Decimal

#: The most a stored or logged message keeps (they are shown in the admin).
MAX_MESSAGE = 1000
#: How far past the cap a secret that starts before it is still read whole, so a secret cut
#: by the cap is masked rather than shown in part (and what bounds the work on long text).
LOOKAHEAD = 1024
#: How much of a caller's text an error message quotes.
EXCERPT = 60
#: Integers up to this many bits are shown as they are, larger ones by their size.
SHOWN_BITS = 128
#: Decimals whose integer part has more digits are shown by their size.
SHOWN_DIGITS = 40
#: Configured values shorter than this are not masked wherever they appear (too common).
MIN_SECRET_LENGTH = 8
MASK = "***"

#: Shapes of secrets; each rule's named group is the part kept to say what was masked.
SECRET_RULES = (
    # Stripe secret, restricted, publishable and ephemeral keys, v2 meter event sessions.
    r"\b(?P<stripe_key>(?:sk|rk|pk|ek|mes)_(?:test|live)_)[A-Za-z0-9]+",
    # Webhook signing secrets.
    r"\b(?P<webhook_secret>whsec_)[A-Za-z0-9+/=]+",
    # Authorization header values.
    r"\b(?P<authorization>(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]{6,}",
    # A password in a URL (postgres://user:password@host, redis://:password@host).
    r"(?P<url_password>\b[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\s:/@]*:)[^\s@]+(?=@)",
    # key=value and key: value pairs (libpq conninfo, settings dumps, query strings).
    r"(?i:(?P<named_secret>\b(?:password|passwd|pwd|secret|client_secret|api[_-]?key|"
    r"(?:access|auth|refresh)[_-]?token)\s*[=:]\s*))"
    r"(?:\"[^\"]*\"|'[^']*'|[^\s,;&'\"]+)",
)


def redact(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` with secrets masked, cut to ``limit`` characters (ending in "…" when cut).

    Masking happens before the cut, over the first ``limit`` characters and what follows
    them, so a secret the cut runs through is masked whole; the work is bounded by ``limit``
    whatever the length of ``text``.
    """
    window = text[: limit + LOOKAHEAD]
    pieces: list[str] = []
    covered = 0
    for match in _secrets_re().finditer(window):
        if match.start() >= limit:
            break
        pieces += [window[covered : match.start()], _mask(match)]
        covered = match.end()
    if covered < limit:
        pieces.append(window[covered:limit])
        covered = min(limit, len(text))
    masked = "".join(pieces)
    if covered < len(text) or len(masked) > limit:
        return masked[: limit - 1] + "…"
    return masked


def exception_text(exc: BaseException, limit: int = MAX_MESSAGE) -> str:
    """``"Type: message"`` of an exception raised by code we don't control, redacted."""
    try:
        text = str(exc)
    except Exception:
        text = "(its message could not be read)"
    return redact(f"{type(exc).__name__}: {text}", limit)


def traceback_text(exc: BaseException) -> str:
    """The traceback of ``exc`` (causes included) as the logging module writes it, each
    frame and message redacted and capped: for logs, instead of ``exc_info``."""
    chunks = traceback.TracebackException.from_exception(exc).format()
    return "".join(_line(redact(chunk)) for chunk in chunks).rstrip("\n")


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """A quotation of a caller's text: ASCII-escaped (no control or invisible characters
    reach a log line), its start only when long, with its length."""
    text = str.__str__(text)  # a str subclass's own __repr__ is never called
    if len(text) <= limit:
        return ascii(text)
    return f"{text[:limit]!a}… ({len(text)} characters)"


def shown(value: object) -> str:
    """``value`` as bounded text for an error message, without calling a method of it: text
    quoted in part, numbers as they are or by their size, None; else only its type."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return excerpt(value)
    if isinstance(value, int):
        return _int_text(int.__int__(value))
    if isinstance(value, float):
        return repr(float.__float__(value))
    if isinstance(value, Decimal):
        return _decimal_text(Decimal(value))
    return f"{type(value).__name__} object"


def described(value: object) -> str:
    """``shown(value)`` with its type: "str '3'", "Decimal 2.5", "list object"."""
    text = shown(value)
    return text if text.endswith(" object") else f"{type(value).__name__} {text}"


def _int_text(number: int) -> str:
    bits = number.bit_length()
    if bits <= SHOWN_BITS:
        return str(number)
    # From the bit length: exact to one digit, and costs nothing whatever the size.
    return f"(a whole number of about {math.floor(bits * math.log10(2)) + 1} digits)"


def _decimal_text(number: Decimal) -> str:
    if not number.is_finite():
        return str(number)
    if not number.is_zero() and number.adjusted() >= SHOWN_DIGITS:
        return f"(a number of {number.adjusted() + 1} digits)"
    text = format(number, ".20g")
    return text if Decimal(text) == number else f"about {text}"


def _mask(match: re.Match[str]) -> str:
    kept = next((part for part in match.groupdict().values() if part is not None), "")
    return kept + MASK


def _line(chunk: str) -> str:
    return chunk if chunk.endswith("\n") else chunk + "\n"


def _secrets_re() -> re.Pattern[str]:
    return _compiled(tuple(sorted(_configured_secrets(), key=len, reverse=True)))


@functools.lru_cache(maxsize=8)
def _compiled(literals: tuple[str, ...]) -> re.Pattern[str]:
    # Configured secrets first: masked whole, even where a rule would match a part of one.
    return re.compile("|".join([*map(re.escape, literals), *SECRET_RULES]))


def _configured_secrets() -> Iterable[str]:
    """The secrets this project is configured with, masked wherever they appear whatever
    their shape (a proxy's key, a database password)."""
    try:
        from django.conf import settings

        from billflow_usage.conf import billflow_settings

        values = [
            billflow_settings.stripe_api_key,
            billflow_settings.METER_WEBHOOK_SECRET,
            getattr(settings, "SECRET_KEY", None),
            *(db.get("PASSWORD") for db in getattr(settings, "DATABASES", {}).values()),
        ]
    except Exception:
        return ()
    return {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH}
