"""``manage.py billflow_prune``: compact old delivered usage into daily rollups.

Safe to run beside workers and ``billflow_sync``, as often as you like (from cron or Celery
beat): see :mod:`billflow_usage.services.pruning` for what is compacted and what never is.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billflow_usage.bounds import PRUNE_AGE, PRUNE_BATCH_SIZE, check_options
from billflow_usage.services.pruning import DEFAULT_BATCH_SIZE, prune

#: Each numeric option and its range (see billflow_usage.bounds).
BOUNDS = {"older_than": PRUNE_AGE, "batch_size": PRUNE_BATCH_SIZE}


class Command(BaseCommand):
    help = (
        "Compact sent and cancelled usage events of closed billing periods older than "
        "--older-than days into daily rollups, and delete them. Figures stay the same."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=PRUNE_AGE,
            metavar="DAYS",
            help=f"Required: compact UTC days that ended at least this long ago, "
            f"{PRUNE_AGE.expected} (Stripe's window: younger usage can still be sent, "
            "cancelled or corrected).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be compacted; change nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=PRUNE_BATCH_SIZE,
            default=DEFAULT_BATCH_SIZE,
            help=f"Rows compacted per transaction, {PRUNE_BATCH_SIZE.expected} "
            f"(default: {DEFAULT_BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("older_than") is None:
            raise CommandError(f"--older-than is required: {PRUNE_AGE.expected}.")
        check_options(options, BOUNDS)
        dry_run = bool(options["dry_run"])
        result = prune(options["older_than"], batch_size=options["batch_size"], dry_run=dry_run)
        done = "would compact" if dry_run else "compacted"
        message = (
            f"billflow_prune: {done} {result.rows:,} rows of {result.days:,} "
            f"customer-metric days before {result.cutoff.date()} into daily rollups"
        )
        if result.days_left:
            message += (
                f"; left {result.days_left:,} days alone (rows pending, failed or claimed, "
                "a billflow_sync correction, or the billing period still open)"
            )
        self.stdout.write(self.style.SUCCESS(message + "."))
