"""``make bench``: the benchmarks behind the README's figures, side by side in one run.

Runs on ``BENCH_DATABASE_URL`` (default: the local PostgreSQL server, database
``billflow_bench``, created and dropped here). Figures are medians and ratios, not timed tests.
"""

from __future__ import annotations

import os
import platform
import sys

import django


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import get_runner

    from bench import delivery, hot_path

    runner = get_runner(settings)(verbosity=0, interactive=False)
    old_config = runner.setup_databases()
    try:
        machine = f"Python {platform.python_version()}, {os.cpu_count()} cores"
        print(f"billflow_usage benchmarks on {connection.vendor}, {machine}")
        figures = [*hot_path.run(), *delivery.run()]
    finally:
        runner.teardown_databases(old_config)
    for figure in figures:
        print(figure.line())
    unmet = [figure.name for figure in figures if figure.met is False]
    if unmet:
        print(f"{len(unmet)} target(s) not met: " + "; ".join(unmet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
