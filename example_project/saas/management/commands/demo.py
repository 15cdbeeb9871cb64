from typing import Any

from django.core.management.base import BaseCommand

from saas import demo


class Command(BaseCommand):
    help = "Seed the example SaaS, simulate its usage and print what the ledger recorded."

    def handle(self, *args: Any, **options: Any) -> None:
        demo.seed_metrics()
        workspaces = demo.seed_workspaces(lambda workspace: f"cus_demo{workspace.pk:04d}")
        demo.simulate_traffic(workspaces)
        self.stdout.write(self.style.MIGRATE_HEADING("What the ledger recorded:"))
        for line in demo.ledger_report():
            self.stdout.write(line)
