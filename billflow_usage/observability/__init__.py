"""Prometheus metrics, with the ``metrics`` extra (``pip install 'billflow-usage[metrics]'``).

:mod:`~billflow_usage.observability.recorder` is what delivery, the Stripe backend and the
ledger's signal call; it imports ``prometheus_client`` only when it is installed, and without
it every call returns at once. :mod:`~billflow_usage.observability.views` serves the
metrics, with the gauges read from the database at scrape time
(:mod:`~billflow_usage.observability.collector`). Importing this package imports neither.
"""
