"""What one customer's metered metric needs, as the pure ``decide()`` says: one row a case,
without a database, Stripe or a clock. ``test_metered.py`` runs the same decisions end to
end against the fake Stripe."""

from __future__ import annotations

import re
from typing import Any

import pytest

from billflow_usage.reconcile import report
from billflow_usage.reconcile.metered_decision import (
    MAX_COUNT_CORRECTION,
    Decision,
    MeteredAction,
    MeteredStatus,
    Observed,
    decide,
)

S, A = MeteredStatus, MeteredAction
AWAITING = "an earlier correction is not settled in Stripe yet; checked next run"
TOO_OLD = "the period is older than Stripe's 35-day meter event window"
NOTHING_TO_CANCEL = (
    "Stripe bills more than the ledger recorded and no known event can be cancelled (24 h "
    "window) or offset (count/last meter, or an invoiced period): issue a credit note"
)


def sum_(ledger: int, stripe: int | None, **facts: Any) -> Observed:
    return Observed("sum", ledger, stripe, **facts)


def count(ledger: int, stripe: int | None, **facts: Any) -> Observed:
    return Observed("count", ledger, stripe, **facts)


def last(ledger: int, stripe: int | None, **facts: Any) -> Observed:
    return Observed("last", ledger, stripe, **facts)


@pytest.mark.parametrize(
    ("observed", "decision"),
    [
        # Both sides agree: nothing else matters.
        pytest.param(sum_(12, 12), Decision(S.IN_SYNC), id="in-sync"),
        pytest.param(last(0, 0), Decision(S.IN_SYNC), id="in-sync-last-zero"),
        pytest.param(sum_(5, 5, awaiting=True), Decision(S.IN_SYNC), id="in-sync-awaiting"),
        pytest.param(sum_(5, 5, too_old=True), Decision(S.IN_SYNC), id="in-sync-too-old"),
        # Not compared.
        pytest.param(
            sum_(5, None, in_flight=2),
            Decision(
                S.SKIPPED,
                detail="2 event(s) of the period are being delivered (sent, Stripe's answer not "
                "recorded yet): compared next run, once they are marked",
            ),
            id="in-flight-not-read",
        ),
        pytest.param(
            sum_(5, None, just_sent=3, sent_seconds_ago=42),
            Decision(
                S.SKIPPED,
                detail="3 event(s) sent 42 s ago; Stripe counts it within minutes: the next "
                "billflow_sync compares it",
            ),
            id="just-sent-not-read",
        ),
        pytest.param(
            sum_(5, None, in_flight=1, read_error="never asked"),
            Decision(
                S.SKIPPED,
                detail="1 event(s) of the period are being delivered (sent, Stripe's answer not "
                "recorded yet): compared next run, once they are marked",
            ),
            id="in-flight-first",
        ),
        pytest.param(
            sum_(5, None, read_error="APIConnectionError: timed out"),
            Decision(S.ERROR, detail="APIConnectionError: timed out"),
            id="stripe-unread",
        ),
        # Stripe has less: record what it lacks.
        pytest.param(
            sum_(13, 5),
            Decision(S.MISSING_IN_STRIPE, A.CORRECT, corrections=(8,)),
            id="missing-sum",
        ),
        pytest.param(
            sum_(13, 5, open_period=True, cancellable=True),
            Decision(S.MISSING_IN_STRIPE, A.CORRECT, corrections=(8,)),
            id="missing-sum-cancellable-irrelevant",
        ),
        pytest.param(
            count(3, 1),
            Decision(S.MISSING_IN_STRIPE, A.CORRECT, corrections=(1, 1)),
            id="missing-count",
        ),
        pytest.param(
            count(MAX_COUNT_CORRECTION, 0),
            Decision(S.MISSING_IN_STRIPE, A.CORRECT, corrections=(1,) * MAX_COUNT_CORRECTION),
            id="missing-count-at-the-limit",
        ),
        pytest.param(
            count(MAX_COUNT_CORRECTION + 1, 0),
            Decision(S.MISSING_IN_STRIPE, A.NEEDS_INVOICE_ITEM, "more than 1000 events missing"),
            id="missing-count-over-the-limit",
        ),
        pytest.param(
            sum_(5, -3),
            Decision(S.MISSING_IN_STRIPE, A.CORRECT, corrections=(8,)),
            id="missing-sum-stripe-negative",
        ),
        # A last meter: its last value is corrected, whichever side is higher.
        pytest.param(
            last(9, 5), Decision(S.MISMATCH, A.CORRECT, corrections=(9,)), id="mismatch-lower"
        ),
        pytest.param(
            last(5, 9, open_period=True, cancellable=True),
            Decision(S.MISMATCH, A.CORRECT, corrections=(5,)),
            id="mismatch-higher-never-cancelled-nor-offset",
        ),
        # Stripe has more: cancel what the ledger knows of, else offset, else a credit note.
        pytest.param(
            sum_(10, 14, open_period=True, cancellable=True),
            Decision(S.SURPLUS_IN_STRIPE, A.CANCEL, to_cancel=4),
            id="surplus-cancel-first",
        ),
        pytest.param(
            count(2, 5, cancellable=True),
            Decision(S.SURPLUS_IN_STRIPE, A.CANCEL, to_cancel=3),
            id="surplus-count-cancel",
        ),
        pytest.param(
            sum_(10, 14, open_period=True),
            Decision(S.SURPLUS_IN_STRIPE, A.OFFSET, corrections=(-4,)),
            id="surplus-offset-open-period",
        ),
        pytest.param(
            sum_(10, 14),
            Decision(S.SURPLUS_IN_STRIPE, A.NEEDS_CREDIT_NOTE, NOTHING_TO_CANCEL),
            id="surplus-invoiced-period",
        ),
        pytest.param(
            count(2, 5, open_period=True),
            Decision(S.SURPLUS_IN_STRIPE, A.NEEDS_CREDIT_NOTE, NOTHING_TO_CANCEL),
            id="surplus-count-never-offset",
        ),
        # After cancelling: what the cancellations didn't cover.
        pytest.param(
            sum_(10, 16, open_period=True, cancellable=True, cancelled=6),
            Decision(
                S.SURPLUS_IN_STRIPE,
                A.CANCEL,
                "surplus events cancelled in Stripe",
                repaired=True,
            ),
            id="cancelled-all",
        ),
        pytest.param(
            sum_(10, 16, open_period=True, cancellable=True, cancelled=4),
            Decision(S.SURPLUS_IN_STRIPE, A.OFFSET, corrections=(-2,)),
            id="cancelled-part-offset-the-rest",
        ),
        pytest.param(
            sum_(10, 16, open_period=True, cancellable=True, cancelled=0),
            Decision(S.SURPLUS_IN_STRIPE, A.OFFSET, corrections=(-6,)),
            id="cancelled-none-offset-all",
        ),
        pytest.param(
            sum_(10, 16, cancellable=True, cancelled=4),
            Decision(
                S.SURPLUS_IN_STRIPE,
                A.NEEDS_CREDIT_NOTE,
                "cancelled what could be; Stripe still bills 2 more than the ledger: issue a "
                "credit note",
            ),
            id="cancelled-part-invoiced-period",
        ),
        pytest.param(
            count(2, 5, open_period=True, cancellable=True, cancelled=1),
            Decision(
                S.SURPLUS_IN_STRIPE,
                A.NEEDS_CREDIT_NOTE,
                "cancelled what could be; Stripe still bills 2 more than the ledger: issue a "
                "credit note",
            ),
            id="cancelled-part-count",
        ),
        # An earlier correction not settled yet: nothing new, whatever else holds.
        pytest.param(
            sum_(13, 5, awaiting=True),
            Decision(S.MISSING_IN_STRIPE, A.AWAITING_CORRECTION, AWAITING),
            id="awaiting-missing",
        ),
        pytest.param(
            sum_(10, 14, awaiting=True, open_period=True, cancellable=True),
            Decision(S.SURPLUS_IN_STRIPE, A.AWAITING_CORRECTION, AWAITING),
            id="awaiting-surplus",
        ),
        pytest.param(
            last(9, 5, awaiting=True, too_old=True),
            Decision(S.MISMATCH, A.AWAITING_CORRECTION, AWAITING),
            id="awaiting-before-too-old",
        ),
        # Past Stripe's 35 days: no event can repair it any more.
        pytest.param(
            sum_(13, 5, too_old=True),
            Decision(S.MISSING_IN_STRIPE, A.NEEDS_INVOICE_ITEM, TOO_OLD),
            id="too-old-missing",
        ),
        pytest.param(
            last(9, 5, too_old=True),
            Decision(S.MISMATCH, A.NEEDS_INVOICE_ITEM, TOO_OLD),
            id="too-old-mismatch",
        ),
        pytest.param(
            sum_(10, 14, too_old=True, open_period=True, cancellable=True),
            Decision(S.SURPLUS_IN_STRIPE, A.NEEDS_CREDIT_NOTE, TOO_OLD),
            id="too-old-surplus",
        ),
        pytest.param(
            count(MAX_COUNT_CORRECTION + 1, 0, too_old=True),
            Decision(S.MISSING_IN_STRIPE, A.NEEDS_INVOICE_ITEM, TOO_OLD),
            id="too-old-before-the-count-limit",
        ),
    ],
)
def test_decide(observed: Observed, decision: Decision) -> None:
    assert decide(observed) == decision


def test_the_report_documents_every_status_and_action_it_can_show() -> None:
    """The enums are the JSON's values (``in_sync`` pairs are only counted, never listed)."""
    schema = report.__doc__ or ""
    documented = re.search(r"``status`` \(([^)]*)\), ``action`` \(([^)]*)\)", schema)
    assert documented is not None
    statuses, actions = (set(re.findall(r"\w+", group)) for group in documented.groups())
    assert statuses == {s.value for s in MeteredStatus} - {"in_sync"}
    assert actions == {a.value for a in MeteredAction}
