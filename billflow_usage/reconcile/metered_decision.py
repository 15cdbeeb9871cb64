"""What one customer's metered metric needs, decided in one place: :func:`decide`.

A pure function from what was observed (:class:`Observed`: both totals and the facts around
them) to a :class:`Decision`: the pair's status and action in the report, and the correcting
events to record. ``billflow_sync`` observes, decides and reports; with ``--apply`` it carries
the decision out, and after cancelling surplus events it asks again, saying how much the
cancellations covered, for what to do with the rest.

The statuses and actions are the values of the report's JSON (``metered[].status`` and
``metered[].action``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from billflow_usage.models import Metric
from billflow_usage.validation import STRIPE_HISTORY

#: Count meters: at most this many correcting events in one go.
MAX_COUNT_CORRECTION = 1000


class MeteredStatus(StrEnum):
    #: Both totals agree: counted, not listed.
    IN_SYNC = "in_sync"
    #: Stripe has less than the ledger.
    MISSING_IN_STRIPE = "missing_in_stripe"
    #: Stripe has more than the ledger.
    SURPLUS_IN_STRIPE = "surplus_in_stripe"
    #: A ``last`` meter whose value differs (more or less is no matter: the last value counts).
    MISMATCH = "mismatch"
    #: Not compared (events in flight or sent too recently for Stripe to count them yet; and
    #: for reasons found before counting, see ``metered.plan_pairs``).
    SKIPPED = "skipped"
    #: Stripe's total could not be read.
    ERROR = "error"


class MeteredAction(StrEnum):
    NONE = "none"
    #: Record correcting events for what Stripe is missing.
    CORRECT = "correct"
    #: Record a negative correction for Stripe's surplus (``sum`` meters, open period).
    OFFSET = "offset"
    #: Cancel events the ledger knows Stripe may count and the ledger doesn't (24 h window).
    CANCEL = "cancel"
    NEEDS_CREDIT_NOTE = "needs_credit_note"
    NEEDS_INVOICE_ITEM = "needs_invoice_item"
    #: An earlier correction is not settled in Stripe yet: nothing new until it is.
    AWAITING_CORRECTION = "awaiting_correction"


@dataclass(frozen=True)
class Observed:
    """What is known of one customer's metric over the compared period."""

    formula: str
    #: The ledger's usage Stripe accepted, by the formula.
    ledger: int
    #: Stripe's total; None when it wasn't read (``read_error`` says why, unless in flight).
    stripe: int | None
    read_error: str = ""
    #: Rows sent but not marked yet: nobody knows whether Stripe counts them.
    in_flight: int = 0
    #: Rows Stripe accepted within the settling window (or since the run began, its own
    #: delivery step's included): Stripe counts them asynchronously, maybe not yet.
    just_sent: int = 0
    #: How long ago the most recent of ``just_sent`` was sent, in whole seconds.
    sent_seconds_ago: int = 0
    #: An earlier correction of the pair is pending, or sent within the settling window.
    awaiting: bool = False
    #: A correction stamped in the period would be past Stripe's window by the time it's sent.
    too_old: bool = False
    #: The billing period is not invoiced yet: a negative offset still lowers the bill.
    open_period: bool = False
    #: The ledger knows events of the period Stripe may count and the ledger doesn't, still
    #: within Stripe's 24 h cancellation window.
    cancellable: bool = False
    #: How much of Stripe's surplus cancelling those events covered, once tried.
    cancelled: int | None = None


@dataclass(frozen=True)
class Decision:
    status: MeteredStatus
    action: MeteredAction = MeteredAction.NONE
    detail: str = ""
    #: ``CORRECT`` and ``OFFSET``: the value of each correcting event to record.
    corrections: tuple[int, ...] = ()
    #: ``CANCEL``: how much of Stripe's total the cancellations may take away, at most.
    to_cancel: int = 0
    #: Cancelling repaired the whole surplus: nothing is left to do.
    repaired: bool = False


def decide(observed: Observed) -> Decision:
    """The status of one customer's metric and what repairs it."""
    if observed.in_flight:
        return Decision(
            MeteredStatus.SKIPPED,
            detail=f"{observed.in_flight} event(s) of the period are being delivered (sent, "
            "Stripe's answer not recorded yet): compared next run, once they are marked",
        )
    if observed.just_sent:
        return Decision(
            MeteredStatus.SKIPPED,
            detail=f"{observed.just_sent} event(s) sent {observed.sent_seconds_ago} s ago; "
            "Stripe counts it within minutes: the next billflow_sync compares it",
        )
    if observed.stripe is None:
        return Decision(MeteredStatus.ERROR, detail=observed.read_error)
    difference = observed.stripe - observed.ledger
    if difference == 0:
        return Decision(MeteredStatus.IN_SYNC)
    status = _status(observed.formula, difference)
    if observed.awaiting:
        return Decision(
            status,
            MeteredAction.AWAITING_CORRECTION,
            "an earlier correction is not settled in Stripe yet; checked next run",
        )
    if observed.too_old:
        return Decision(
            status,
            MeteredAction.NEEDS_CREDIT_NOTE
            if status == MeteredStatus.SURPLUS_IN_STRIPE
            else MeteredAction.NEEDS_INVOICE_ITEM,
            f"the period is older than Stripe's {STRIPE_HISTORY.days}-day meter event window",
        )
    if status == MeteredStatus.SURPLUS_IN_STRIPE:
        return _remove_surplus(observed, difference)
    return _correct(observed, status, -difference)


def _status(formula: str, difference: int) -> MeteredStatus:
    if formula == Metric.Aggregation.LAST:
        return MeteredStatus.MISMATCH
    if difference < 0:
        return MeteredStatus.MISSING_IN_STRIPE
    return MeteredStatus.SURPLUS_IN_STRIPE


def _correct(observed: Observed, status: MeteredStatus, missing: int) -> Decision:
    """Stripe has less (or another last value): record what it lacks."""
    if observed.formula == Metric.Aggregation.LAST:
        return Decision(status, MeteredAction.CORRECT, corrections=(observed.ledger,))
    if observed.formula == Metric.Aggregation.COUNT:
        if missing > MAX_COUNT_CORRECTION:
            return Decision(
                status,
                MeteredAction.NEEDS_INVOICE_ITEM,
                f"more than {MAX_COUNT_CORRECTION} events missing",
            )
        return Decision(status, MeteredAction.CORRECT, corrections=(1,) * missing)
    return Decision(status, MeteredAction.CORRECT, corrections=(missing,))


def _remove_surplus(observed: Observed, surplus: int) -> Decision:
    """Stripe has more: cancel what the ledger knows of, offset the rest on a ``sum`` meter
    in an open period, else a credit note."""
    status = MeteredStatus.SURPLUS_IN_STRIPE
    offsettable = observed.open_period and observed.formula == Metric.Aggregation.SUM
    if observed.cancelled is not None:
        remaining = surplus - observed.cancelled
        if remaining <= 0:
            return Decision(
                status, MeteredAction.CANCEL, "surplus events cancelled in Stripe", repaired=True
            )
        if offsettable:
            return Decision(status, MeteredAction.OFFSET, corrections=(-remaining,))
        return Decision(
            status,
            MeteredAction.NEEDS_CREDIT_NOTE,
            f"cancelled what could be; Stripe still bills {remaining} more than the ledger: "
            "issue a credit note",
        )
    if observed.cancellable:
        return Decision(status, MeteredAction.CANCEL, to_cancel=surplus)
    if offsettable:
        return Decision(status, MeteredAction.OFFSET, corrections=(-surplus,))
    return Decision(
        status,
        MeteredAction.NEEDS_CREDIT_NOTE,
        "Stripe bills more than the ledger recorded and no known event can be cancelled (24 h "
        "window) or offset (count/last meter, or an invoiced period): issue a credit note",
    )
