"""Every attack the security suite tries: what the library does, what is left unchanged, and
the tests that prove it. ``python -m tests.security.attacks --markdown`` prints the table of
docs/security.md (``--write`` writes it there); ``test_attacks_table.py`` checks that every
test it names exists, so the table can't claim what no test proves.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from tests.docs.generated import DOCS, write_table

#: The page whose table ``markdown()`` is.
PAGE = DOCS / "security.md"


@dataclass(frozen=True)
class Attack:
    area: str
    attack: str
    defence: str
    unchanged: str
    #: ``file.py::test_name`` under tests/security/ (or another tests/ folder, with its path).
    tests: tuple[str, ...]


ATTACKS = (
    # -- the meter error webhook ---------------------------------------------------------------
    Attack(
        "webhook",
        "replay a signed meter error request captured long ago",
        "400 before any work: the signature is older than `METER_WEBHOOK_TOLERANCE` (300 s)",
        "every row; no Stripe request, no query",
        (
            "test_webhook_replay.py::test_a_signed_request_a_year_old_is_refused_before_any_work",
            "test_webhook_replay.py::test_the_tolerance_is_a_setting",
        ),
    ),
    Attack(
        "webhook",
        "replay within the tolerance, or Stripe delivering an event twice",
        "200 'already processed' after one SELECT on the processed event ID",
        "rows, including those retried and sent since; no Stripe request",
        ("test_webhook_replay.py::test_a_replayed_event_marks_nothing_and_costs_one_select",),
    ),
    Attack(
        "webhook",
        "two deliveries of one event at once",
        "the unique event ID lets one of them mark; the other answers 'already processed'",
        "rows are marked once",
        (
            "test_webhook_concurrency.py::test_two_deliveries_at_once_mark_once",
            "test_webhook_concurrency.py::test_a_delivery_overtaken_by_another_marks_nothing",
        ),
    ),
    Attack(
        "webhook",
        "a late (retried) report about rows sent again since, being sent, or retried since",
        "only rows whose last attempt is the one Stripe refused become failed",
        "sent usage: no failed-then-retried double bill",
        (
            "test_webhook_replay.py::test_rows_delivered_after_the_event_was_created_stay_sent",
            "test_webhook_replay.py::test_a_pending_row_is_failed_only_if_not_retried_since_the_event",
            "test_webhook_replay.py::test_a_row_a_worker_is_sending_is_left_to_it",
            "test_webhook_replay.py::test_aggregated_rows_go_with_their_group",
        ),
    ),
    Attack(
        "webhook",
        "a forged or unsigned request",
        "400; a WARNING without the secret, the signature or the body",
        "every row; no Stripe request, no query",
        (
            "test_webhook_signature.py::test_a_forged_request_costs_nothing_and_logs_no_secret",
            "test_webhook_signature.py::test_signatures_are_compared_in_constant_time",
        ),
    ),
    Attack(
        "webhook",
        "the endpoint deployed without a secret, or with a tolerance of 0",
        "503, nothing accepted (fails closed); a system check reports a bad tolerance",
        "every row",
        ("test_webhook_signature.py::test_without_a_secret_nothing_is_accepted",),
    ),
    Attack(
        "webhook",
        "a signed body of the wrong shape (`error_types: 5`, a bad id or created)",
        "400 naming the field; an event Stripe returns in the wrong shape is a 502, recorded "
        "nowhere",
        "every row; no query, no Stripe request",
        (
            "test_webhook_shape.py::test_a_signed_body_of_the_wrong_shape_is_a_400_before_any_work",
            "test_webhook_shape.py::test_an_event_stripe_returns_in_the_wrong_shape_is_a_502",
        ),
    ),
    Attack(
        "webhook",
        "a secret being rotated (old and new both sign)",
        "any matching `v1` signature is accepted",
        "-",
        ("test_webhook_signature.py::test_any_of_several_v1_signatures_is_enough",),
    ),
    # -- values and identifiers ----------------------------------------------------------------
    Attack(
        "values",
        '`record_usage(..., Decimal("1e1000000"))`, and 200,000-digit Decimals',
        "`InvalidUsage` naming the number by its digit count, in microseconds",
        "nothing recorded",
        ("test_values_magnitude.py::test_hostile_values_are_refused_fast_in_a_child_process",),
    ),
    Attack(
        "values",
        "an int over 4,300 digits (`10**5000`, `2**4_000_000`)",
        "`InvalidUsage`, never Python's `ValueError`",
        "nothing recorded",
        ("test_values_magnitude.py::test_a_number_too_large_is_named_by_its_size",),
    ),
    Attack(
        "values",
        "objects with hostile `__int__`, `__index__` or `__repr__`; number subclasses",
        "non-numbers refused without calling any of their methods; subclasses read through "
        "their base type",
        "nothing recorded",
        (
            "test_values_magnitude.py::"
            "test_an_object_that_is_not_a_number_is_refused_without_calling_its_methods",
        ),
    ),
    Attack(
        "values",
        "any value whatever (Hypothesis)",
        "an int within ±(10^15-1), or `InvalidUsage` with a short message, fast",
        "-",
        ("test_values_magnitude.py::test_any_value_is_a_bounded_int_or_refused_fast",),
    ),
    Attack(
        "values",
        "huge values through `record_usage_bulk`, `set_quantity` and a tracker's value",
        "`InvalidUsage` naming the item or quantity; a tracker keeps a failed row saying why",
        "nothing recorded; the seat link; the host's save succeeds",
        (
            "test_values_magnitude.py::test_record_usage_bulk_and_set_quantity_refuse_them",
            "test_values_magnitude.py::test_a_trackers_value_keeps_a_failed_row_saying_why",
        ),
    ),
    Attack(
        "identifiers",
        "an identifier with `€`, U+2028, control characters, spaces, quotes, `<script>`",
        "`InvalidUsage` naming the character, its position and the characters allowed",
        "nothing recorded",
        ("test_identifiers_charset.py::test_record_usage_bulk_names_the_item",),
    ),
    Attack(
        "identifiers",
        "NUL in an identifier, a customer ID or a metric key (PostgreSQL can't store it)",
        "refused before the database; the host's transaction goes on",
        "the host's transaction",
        (
            "test_identifiers_charset.py::"
            "test_a_nul_is_refused_before_the_database_and_the_transaction_goes_on",
        ),
    ),
    Attack(
        "identifiers",
        "a tracker's `identifier=` returning `€7`",
        "a failed row (`tracker_error`); the host's save succeeds",
        "the host's row",
        (
            "test_identifiers_charset.py::"
            "test_a_trackers_own_key_with_other_characters_keeps_a_failed_row",
        ),
    ),
    Attack(
        "identifiers",
        "a str subclass whose `__str__` changes after the check",
        "the text checked is the text stored",
        "-",
        ("test_identifiers_charset.py::test_what_is_checked_is_what_is_stored",),
    ),
    # -- secrets -------------------------------------------------------------------------------
    Attack(
        "secrets",
        "a tracker's resolver raising with `sk_live_...`, `whsec_...`, `Bearer ...`, "
        "`postgres://u:pw@`, `password=` in its message",
        "masked and capped on the failed row and in every log line, traceback included",
        "the advice to record it again",
        ("test_redaction_trackers.py",),
    ),
    Attack(
        "secrets",
        "a configured API key or webhook secret (kept)",
        "never in rows, sync reports, sync output, log records or the fake's saved state",
        "Stripe's own mask (first 8 and last 4 characters)",
        ("test_kept_secrets.py",),
    ),
    Attack(
        "secrets",
        "`STRIPE_API_BASE` plain `http://` to another host with a live key",
        "`billflow_usage.E008` (`W002` with a test key); the key is never shown",
        "`https://` anywhere, and `http://` to this machine",
        ("test_checks_api_base.py",),
    ),
    Attack(
        "secrets",
        "a `STRIPE_API_BASE` parsers read differently (`http://127.0.0.1@evil`, a backslash, "
        "`user:password@`)",
        "`billflow_usage.E005`; a password is masked",
        "-",
        ("test_checks_api_base.py::test_ambiguous_bases_are_malformed",),
    ),
    # -- operators' tools ----------------------------------------------------------------------
    Attack(
        "commands",
        "`billflow_worker --idle-sleep nan` (a busy loop) or `inf`, `--batch-size 0`",
        "refused before the worker starts: exit 2, or `CommandError`, naming the range",
        "nothing claimed or sent",
        (
            "test_cli_numeric_options.py::test_call_command_refuses_out_of_range_values",
            "test_cli_numeric_options.py::test_the_real_command_line_exits_2_with_the_reason",
        ),
    ),
    Attack(
        "commands",
        "`billflow_sync --settling-window nan` (NaN stored in a report), `--rate-limit -1` "
        "(throttling off)",
        "refused with the accepted range; `0` still means no limit",
        "no report row is written",
        ("test_cli_numeric_options.py::test_values_given_as_keywords_are_checked_too",),
    ),
    Attack(
        "settings",
        "`SETTLING_WINDOW=inf`, `SYNC_RATE_LIMIT=nan`, `BATCH_SIZE=10**9`, `CLAIM_LEASE=inf`",
        "`billflow_usage.E005`, one rule shared with the command options",
        "valid settings",
        ("test_checks_settings.py::test_numbers_are_finite_and_in_range",),
    ),
    Attack(
        "settings",
        "`BILLFLOW_USEAGE = {...}` (a project aimed at a fake silently calls Stripe)",
        "`billflow_usage.W003`: did you mean `BILLFLOW_USAGE`?",
        "the misspelt dict is still not read",
        ("test_checks_settings.py::test_misspelt_settings_dict_warns",),
    ),
    Attack(
        "settings",
        "`djstripe` missing from `INSTALLED_APPS`",
        "`billflow_usage.E009`: `check` and `billflow_sync` stop with the hint",
        "-",
        ("test_checks_settings.py::test_dj_stripe_missing_from_installed_apps_stops_the_project",),
    ),
    Attack(
        "reports",
        "a run finding thousands of entries, or 50,000-character messages",
        "a stored report keeps 500 entries per list (what needs someone first) and 1,000 "
        "characters per text; `left_out` counts the rest",
        "`--json` prints the whole run; `summary` keeps full counts",
        ("reports/test_reports_capped.py",),
    ),
    Attack(
        "admin",
        "a report page with thousands of entries, or HTML in a detail",
        "50 escaped entries a page; the list of reports doesn't load their bodies",
        "reports stay read-only",
        ("test_admin_sync_report_pages.py",),
    ),
    Attack(
        "admin",
        "staff without a permission, view-only staff running actions, POSTs without a CSRF token",
        "403, or the action is not run",
        "view, change and reconcile permissions as documented",
        ("test_admin_permissions.py",),
    ),
    Attack(
        "admin",
        "markup in stored customer IDs, metric names, errors and reports (kept)",
        "escaped on every admin page, the usage page and its SVG chart",
        "-",
        ("test_kept_escaping.py",),
    ),
    Attack(
        "delivery",
        "a worker marking with a stale claim token (kept)",
        "changes nothing, for events and seat links",
        "the rows",
        ("test_kept_claims.py",),
    ),
    Attack(
        "dependencies",
        "installing a Django release with published advisories, or an untested Django or dj-stripe",
        "the pins refuse them; `make audit` (and CI, where an advisory service answers) fails "
        "on a known vulnerability",
        "stripe `<16`",
        ("test_dependencies_pins.py",),
    ),
)


def markdown() -> str:
    lines = [
        "| area | attack | what the library does | left unchanged | tests (`tests/security/`) |",
        "|---|---|---|---|---|",
    ]
    for a in ATTACKS:
        tests = "<br>".join(f"`{test}`" for test in a.tests)
        lines.append(f"| {a.area} | {a.attack} | {a.defence} | {a.unchanged} | {tests} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--markdown", action="store_true", help="print the docs' table")
    parser.add_argument("--write", action="store_true", help="and write it into " + str(PAGE))
    arguments = parser.parse_args()
    if arguments.markdown:
        print(markdown())
        if arguments.write:
            write_table(PAGE, "tests.security.attacks", markdown())
