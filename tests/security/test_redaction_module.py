"""The one redaction every stored or logged message goes through: secrets masked, then
capped, in time bounded by the cap."""

from __future__ import annotations

import time

import pytest

from billflow_usage import redaction
from billflow_usage.backends.stripe import errors as stripe_errors
from billflow_usage.redaction import MAX_MESSAGE, redact

#: What a host's exception may carry, and the part of each that must never be shown.
SECRETS = {
    "a Stripe secret key": ("sk_live_51HcX9aLkT0pSecretPart", "51HcX9aLkT0pSecretPart"),
    "a restricted key": ("rk_test_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
    "a webhook secret": (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ),
    "a bearer token": (
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",
        "eyJhbGciOiJIUzI1NiJ9",
    ),
    "a DSN password": ("postgres://billing:hunter2-pw@db.internal:5432/app", "hunter2-pw"),
    "a conninfo password": ("host=db user=billing password=s3cr3t-pw dbname=app", "s3cr3t-pw"),
}


@pytest.mark.parametrize("name", list(SECRETS))
def test_each_kind_of_secret_is_masked(name: str) -> None:
    secret, hidden = SECRETS[name]

    masked = redact(f"before {secret} after")

    assert hidden not in masked
    assert masked.startswith("before ")
    assert masked.endswith(" after")


def test_what_is_not_a_secret_is_left_alone() -> None:
    text = (
        "No such customer: 'cus_NffrFeUfNV2Hib' (Stripe request req_123); see "
        "https://docs.stripe.com/api and http://localhost:8000/path; pk_test key mentioned"
    )
    assert redact(text) == text


def test_configured_secrets_are_masked_whatever_their_shape(settings) -> None:
    settings.BILLFLOW_USAGE = {
        **settings.BILLFLOW_USAGE,
        "STRIPE_API_KEY": "proxy-key-7f3a9c2e1b",
        "METER_WEBHOOK_SECRET": "hook-secret-55aa77bb",
    }
    settings.SECRET_KEY = "django-insecure-abcdefgh12345678"

    masked = redact(
        "keys proxy-key-7f3a9c2e1b, hook-secret-55aa77bb, django-insecure-abcdefgh12345678"
    )

    for secret in ("proxy-key-7f3a9c2e1b", "hook-secret-55aa77bb", "abcdefgh12345678"):
        assert secret not in masked


def test_long_text_is_capped_after_masking_and_fast() -> None:
    """A secret straddling the cap is masked whole, not cut into a piece that no longer looks
    like one; megabytes of text cost no more than the cap's worth."""
    filler = "x " * ((MAX_MESSAGE - 20) // 2)
    text = filler + "postgres://u:hunter2-pw@db/app " + "y" * 5_000_000

    started = time.process_time()
    masked = redact(text)

    assert time.process_time() - started < 0.05
    assert len(masked) <= MAX_MESSAGE
    assert masked.endswith("…")
    assert "hunter2" not in masked
    assert "hunter" not in masked


def test_the_stripe_backend_redacts_with_the_same_function() -> None:
    assert stripe_errors.redact is redaction.redact
