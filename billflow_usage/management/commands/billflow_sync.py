"""``manage.py billflow_sync``: reconcile the ledger and stored subscription items with Stripe.

Exit codes: 0 done; 1 bad options or the run failed (``CommandError``); with
``--fail-on-drift`` 3 when drift remains after the run (unrepaired metered or seat drift,
unbilled usage, metered metrics without a Stripe meter, or failed events of subscribed
customers) and 4 when Stripe errors left part of it unchecked.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from billflow_usage.bounds import RATE_LIMIT, SETTLING_WINDOW, check_options
from billflow_usage.customers import CUSTOMER_ID_RE
from billflow_usage.exceptions import BillflowUsageError
from billflow_usage.reconcile import SyncOptions, run_sync
from billflow_usage.reconcile.report import render_table

EXIT_DRIFT = 3
EXIT_INCOMPLETE = 4
BAR = 30
#: Each numeric option and its range (see billflow_usage.bounds).
BOUNDS = {"settling_window": SETTLING_WINDOW, "rate_limit": RATE_LIMIT}


def moment(value: str) -> datetime:
    """An ISO date (midnight UTC) or date-time (UTC when naive)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO date (2026-11-01) or date-time (2026-11-01T12:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def customer_id(value: str) -> str:
    if not CUSTOMER_ID_RE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a Stripe customer ID ('cus_...')")
    return value


class Command(BaseCommand):
    help = (
        "Reconcile usage with Stripe: refresh subscription item links, deliver pending usage, "
        "compare the ledger with Stripe's meter event summaries and seat quantities, list "
        "unbilled usage; --apply repairs what can be repaired. Every run is kept as a "
        "SyncReport."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--dry-run",
            action="store_true",
            help="Read only: no link, meter, ledger or Stripe change (the report row is kept).",
        )
        mode.add_argument(
            "--apply",
            action="store_true",
            help="Repair drift: correcting events, cancellations, seat pushes.",
        )
        parser.add_argument(
            "--metric",
            action="append",
            default=[],
            metavar="KEY",
            help="Only this metric (repeatable).",
        )
        parser.add_argument(
            "--customer",
            action="append",
            default=[],
            type=customer_id,
            metavar="CUS_ID",
            help="Only this customer (repeatable).",
        )
        parser.add_argument(
            "--since",
            type=moment,
            help="Compare from this ISO date/date-time (default: each item's period start).",
        )
        parser.add_argument(
            "--until",
            type=moment,
            help="Compare until this ISO date/date-time, exclusive (default: period end).",
        )
        parser.add_argument(
            "--create-meters",
            action="store_true",
            help="Create missing Stripe meters for metered metrics and store their IDs.",
        )
        parser.add_argument(
            "--items-from",
            choices=["auto", "stripe", "djstripe"],
            default="auto",
            help="Where subscription items come from: dj-stripe's synced rows when fresh "
            "(auto, DJSTRIPE_MAX_AGE), always Stripe, or only dj-stripe.",
        )
        parser.add_argument(
            "--settling-window",
            type=SETTLING_WINDOW,
            metavar="SECONDS",
            help=f"Leave out the most recent SECONDS, {SETTLING_WINDOW.expected} "
            "(default: BILLFLOW_USAGE['SETTLING_WINDOW']).",
        )
        parser.add_argument(
            "--rate-limit",
            type=RATE_LIMIT,
            metavar="PER_SECOND",
            help=f"Stripe requests per second at most, {RATE_LIMIT.expected} "
            "(default: BILLFLOW_USAGE['SYNC_RATE_LIMIT']).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the machine-readable report (schema v1)."
        )
        parser.add_argument(
            "--fail-on-drift",
            action=argparse.BooleanOptionalAction,
            default=False,
            help=f"Exit {EXIT_DRIFT} when drift remains after the run (unrepaired drift, "
            "unbilled usage, missing meters, failed events of subscribed customers), "
            f"{EXIT_INCOMPLETE} when Stripe errors left part of it unchecked.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        check_options(options, BOUNDS)
        since, until = options["since"], options["until"]
        if since and until and until <= since:
            raise CommandError("--until must be after --since.")
        sync = SyncOptions(
            apply=options["apply"],
            dry_run=options["dry_run"],
            metrics=options["metric"],
            customers=options["customer"],
            since=since,
            until=until,
            create_meters=options["create_meters"],
            items_from=options["items_from"],
            settling_window=options["settling_window"],
            rate_limit=options["rate_limit"],
        )
        verbosity = int(options["verbosity"])
        show_progress = not options["json"] and verbosity >= 1 and self.stdout.isatty()
        try:
            report = run_sync(sync, progress=self._progress if show_progress else None)
        except BillflowUsageError as exc:
            raise CommandError(str(exc)) from exc
        if show_progress:
            self.stdout.write("")
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2, cls=DjangoJSONEncoder))
        elif verbosity >= 1:
            for line in render_table(report, verbosity=verbosity):
                self.stdout.write(line)
            summary = report.summary()
            style = self.style.SUCCESS if not summary["drift_remaining"] else self.style.WARNING
            self.stdout.write(style(f"Report #{report.report_id} stored."))
        if options["fail_on_drift"]:
            summary = report.summary()
            if summary["drift_remaining"]:
                raise CommandError(
                    f"{summary['drift_remaining']} drift(s) remain after the run "
                    f"(report #{report.report_id}).",
                    returncode=EXIT_DRIFT,
                )
            if summary["errors"]:
                raise CommandError(
                    f"{summary['errors']} error(s) left part of the comparison unchecked "
                    f"(report #{report.report_id}).",
                    returncode=EXIT_INCOMPLETE,
                )

    def _progress(self, step: str, done: int, total: int) -> None:
        filled = BAR if not total else int(BAR * done / total)
        bar = "#" * filled + "-" * (BAR - filled)
        self.stdout.write(f"\r{step:<9} [{bar}] {done}/{total}", ending="")
        self.stdout.flush()
