"""``manage.py billflow_status``: is usage reaching Stripe? For a Kubernetes probe, a cron alert
or a person.

Exit codes: 0 healthy; 1 degraded (delivery lags, rows failed, the last billflow_sync run
failed); 2 broken (Stripe refuses the key, Stripe unreachable past
``STATUS_UNREACHABLE_AFTER``, meters missing, the database can't be read), and, as for every
command, options argparse refuses. The figures and the verdict come from
:mod:`billflow_usage.services.health`, as the admin index's summary does.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError

from billflow_usage.bounds import STATUS_MAX_FAILED, STATUS_SECONDS, check_options
from billflow_usage.services.health import Health, State, Thresholds, check_health

#: Each numeric option and its range (see billflow_usage.bounds).
BOUNDS = {
    "max_lag": STATUS_SECONDS,
    "max_failed": STATUS_MAX_FAILED,
    "unreachable_after": STATUS_SECONDS,
}


class Command(BaseCommand):
    help = (
        "Report delivery health: backlog, oldest pending row, failed rows by code, last "
        "delivery, credentials, the last billflow_sync's drift. Exit 0 healthy, 1 degraded, "
        "2 broken."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-lag",
            type=STATUS_SECONDS,
            metavar="SECONDS",
            help=f"Degraded when the oldest pending row waited longer, {STATUS_SECONDS.expected}"
            " (default: BILLFLOW_USAGE['STATUS_MAX_LAG']).",
        )
        parser.add_argument(
            "--max-failed",
            type=STATUS_MAX_FAILED,
            metavar="ROWS",
            help=f"Degraded with more failed rows, {STATUS_MAX_FAILED.expected} "
            "(default: BILLFLOW_USAGE['STATUS_MAX_FAILED']).",
        )
        parser.add_argument(
            "--unreachable-after",
            type=STATUS_SECONDS,
            metavar="SECONDS",
            help="Broken when pending rows kept failing this long with nothing delivered, "
            f"{STATUS_SECONDS.expected} (default: BILLFLOW_USAGE['STATUS_UNREACHABLE_AFTER']).",
        )
        parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        check_options(options, BOUNDS)
        thresholds = Thresholds.from_settings(
            max_lag=options["max_lag"],
            max_failed=options["max_failed"],
            unreachable_after=options["unreachable_after"],
        )
        try:
            health = check_health(thresholds)
        except DatabaseError as exc:
            raise CommandError(
                f"Cannot read the ledger ({type(exc).__name__}): check the database.",
                returncode=int(State.BROKEN),
            ) from exc
        if options["json"]:
            self.stdout.write(json.dumps(health.as_dict(), indent=2, cls=DjangoJSONEncoder))
        elif int(options["verbosity"]) >= 1:
            self._write(health)
        if health.state != State.HEALTHY:
            raise CommandError(
                f"{health.state.name.lower()}: " + " ".join(p.message for p in health.problems),
                returncode=int(health.state),
            )

    def _write(self, health: Health) -> None:
        figures = health.figures
        age = figures.oldest_pending_age
        sync = figures.last_sync
        lines = [
            f"Backlog: {figures.backlog} pending row(s)"
            + (f", the oldest waiting {age:.0f} s" if age is not None else ""),
            *(f"  {metric}: {n}" for metric, n in figures.backlog_by_metric.items()),
            f"Failed: {figures.failed} row(s)",
            *(f"  {code or '(no code)'}: {n}" for code, n in figures.failed_by_code.items()),
            "Last delivery: "
            + (figures.last_delivery.isoformat() if figures.last_delivery else "none yet"),
            f"Credentials: {figures.credential_code or 'ok'}",
            "Last billflow_sync: "
            + (
                "none yet"
                if sync is None
                else f"report #{sync.report_id} ({sync.status}), "
                f"{sync.drift_remaining} drift(s) remaining"
            ),
        ]
        if sync is not None:
            lines += [f"  {metric}: {n}" for metric, n in sync.drift_by_metric.items()]
        for line in lines:
            self.stdout.write(line)
        for problem in health.problems:
            style = self.style.ERROR if problem.state == State.BROKEN else self.style.WARNING
            self.stdout.write(style(f"{problem.state.name}: {problem.message}"))
        if not health.problems:
            self.stdout.write(self.style.SUCCESS("Healthy."))
