"""The ledger's business rules behind the admin's pages and actions: what may be cancelled or
retried and how, a customer's usage figures, whether a metric's meter is right, and calling
Stripe while someone waits for the answer.

The admin (``billflow_usage.admin``) only renders what these return and records who did it;
nothing here imports the admin.
"""
