"""``manage.py billflow_setup``: from the declared metrics to ready, idempotently.

Creates (or checks) each metered metric's meter, checks each metric's price, links the
subscription items, runs a dry reconciliation, and prints what is missing with the command
that fixes it. ``--check`` changes nothing. Exit codes: 0 done (and, with ``--check``,
complete); 1 the run failed; 3 with ``--check``, setup is incomplete.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billflow_usage.exceptions import BillflowUsageError
from billflow_usage.services.setup import run_setup

EXIT_INCOMPLETE = 3


class Command(BaseCommand):
    help = (
        "From the declared metrics to ready: create or check meters, check prices, link "
        "subscription items, run a dry reconciliation, and print what is missing with the "
        "command that fixes it. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help=f"Change nothing; exit {EXIT_INCOMPLETE} while setup is incomplete (CI, deploys).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the findings as JSON (schema v1)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            report = run_setup(check=options["check"])
        except BillflowUsageError as exc:
            raise CommandError(str(exc)) from exc
        missing = len(report.missing)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_json(), indent=2))
        elif int(options["verbosity"]) >= 1:
            for line in report.lines():
                self.stdout.write(line)
            if report.complete:
                self.stdout.write(self.style.SUCCESS("Setup complete: nothing is missing."))
            else:
                self.stdout.write(
                    self.style.WARNING(
                        f"Setup incomplete: {missing} thing(s) missing (fix: above)."
                    )
                )
        if options["check"] and not report.complete:
            raise CommandError(
                f"Setup is incomplete: {missing} thing(s) missing.", returncode=EXIT_INCOMPLETE
            )
