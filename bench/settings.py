"""Benchmark settings: the test settings on ``BENCH_DATABASE_URL`` (default: the local
PostgreSQL server), tables created directly, plus the benchmark's own models."""

import environ

from tests.settings import *  # noqa: F403

env = environ.Env()
DATABASES = {
    "default": env.db(
        "BENCH_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/billflow_bench"
    )
}
if (
    DATABASES["default"]["ENGINE"].endswith("sqlite3")
    and DATABASES["default"]["NAME"] != ":memory:"
):
    # A file, as users have it (commits reach the disk), not the test runner's in-memory one.
    DATABASES["default"]["TEST"] = {"NAME": DATABASES["default"]["NAME"] + ".bench"}
INSTALLED_APPS = [*INSTALLED_APPS, "bench.benchapp"]  # noqa: F405
MIGRATION_MODULES = {app.rsplit(".", 1)[-1]: None for app in INSTALLED_APPS}
BILLFLOW_USAGE = {"BACKEND": "billflow_usage.backends.locmem.LocMemBackend", "DELIVERY": "worker"}
