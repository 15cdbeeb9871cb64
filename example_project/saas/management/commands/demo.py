from typing import Any

from django.core.management.base import BaseCommand

from saas import demo


class Command(BaseCommand):
    help = (
        "Create meters, prices, customers and subscriptions in Stripe (the embedded fake when "
        "no STRIPE_SECRET_KEY is set), simulate usage, deliver it, and print what the ledger "
        "holds next to what Stripe holds. With the embedded fake, save its objects for "
        "`make serve` and create an admin login."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        demo.run(self.stdout.write)
