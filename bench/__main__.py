"""``make bench``: the benchmarks behind the README's figures, side by side in one run.

Runs on ``BENCH_DATABASE_URL`` (default: the local PostgreSQL server, database
``billflow_bench``, created and dropped here). Figures are medians and ratios, not timed tests.
``python -m bench hot_path seats`` runs only the named benchmarks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from datetime import date

import django

#: Every benchmark module, in the order they run; each has ``run() -> list[Figure]``.
BENCHMARKS = [
    "hot_path",
    "delivery",
    "scale_out",
    "seats",
    "reconciliation",
    "memory",
    "scale",
    "limits",
]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    names = parser.parse_args().names or BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {BENCHMARKS}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import get_runner

    modules = [importlib.import_module(f"bench.{name}") for name in names]
    runner = get_runner(settings)(verbosity=0, interactive=False)
    old_config = runner.setup_databases()
    figures = []
    try:
        machine = f"Python {platform.python_version()}, {os.cpu_count()} cores"
        print(f"billflow_usage benchmarks, {date.today()}, on {connection.vendor}, {machine}")
        for module in modules:
            for figure in module.run():
                print(figure.line(), flush=True)
                figures.append(figure)
            call_command("flush", interactive=False, verbosity=0)  # the next starts afresh
    finally:
        runner.teardown_databases(old_config)
    unmet = [figure.name for figure in figures if figure.met is False]
    if unmet:
        print(f"{len(unmet)} target(s) not met: " + "; ".join(unmet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
