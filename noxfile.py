"""The matrix CI runs (``.ci/run`` calls these sessions), for contributors to run the same way.

Each session drives a Makefile target, so an environment is built one way everywhere: one
virtualenv per Python and Django series, with the ``dev`` and ``celery`` extras (``.venv``,
the one ``make test`` uses, for the oldest pair). Sessions need no virtualenv of nox's own::

    .venv/bin/nox -l                                  # the sessions
    .venv/bin/nox                                     # all of them
    .venv/bin/nox -s lint migrations
    .venv/bin/nox -s "tests(py3.13-django6.1-postgresql)"
    .venv/bin/nox -k py3.13                           # every session on Python 3.13
    .venv/bin/nox -s "tests(py3.11-django5.2-sqlite)" -- tests/ledger -x   # pytest's arguments

PostgreSQL sessions use ``BILLFLOW_POSTGRES_URL`` (default below): pytest-django makes and
drops ``test_<name>`` beside it, and the migrations session migrates ``<name>`` itself, which
must exist. A Python that isn't installed skips its sessions, except under CI (``CI`` set),
where it fails them.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass

import nox

nox.options.default_venv_backend = "none"

POSTGRES_URL = os.environ.get(
    "BILLFLOW_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/billflow_usage"
)
#: The oldest Python and Django series supported: they use ``.venv``, ``make test``'s.
OLDEST = ("3.11", "5.2")
#: What runs at a calendar boundary: not the slow runs, nor processes that can't be moved in
#: time, nor the model-based test (it runs once, at the suite's instant).
CALENDAR_TESTS = "-m 'not slow and not soak and not wall_clock and not browser'"
#: Prints the Python and Django versions of a virtualenv, checked before it is used.
VERSIONS = "import sys, django; print('%d.%d' % sys.version_info[:2], django.get_version())"


@dataclass(frozen=True)
class Cell:
    """A Python and a Django series on one database."""

    python: str
    django: str
    database: str = "sqlite"

    @property
    def environment(self) -> str:
        return f"py{self.python}-django{self.django}"

    @property
    def name(self) -> str:
        return f"{self.environment}-{self.database}"

    @property
    def venv(self) -> str:
        return ".venv" if (self.python, self.django) == OLDEST else f".venv-{self.environment}"

    @property
    def database_url(self) -> str:
        return POSTGRES_URL if self.database == "postgresql" else "sqlite:///:memory:"


#: Every Python the classifiers claim, each Django series they claim, both databases.
CELLS = [
    Cell("3.11", "5.2"),
    Cell("3.11", "5.2", "postgresql"),
    Cell("3.12", "6.1"),
    Cell("3.13", "6.1", "postgresql"),
]
PRIMARY = CELLS[0]
#: One cell per virtualenv, for what doesn't depend on the database.
ENVIRONMENTS = list({cell.environment: cell for cell in reversed(CELLS)}.values())[::-1]


def interpreter(session: nox.Session, version: str) -> str:
    """``python3.13`` from PATH, or pyenv's newest 3.13 release (CI's machine keeps them
    there, behind shims that fail for any version but the global one)."""
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    releases = glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}")
    newest_first = sorted(
        (path for path in releases if re.fullmatch(r"\d+\.\d+\.\d+", _release(path))),
        key=lambda path: [int(part) for part in _release(path).split(".")],
        reverse=True,
    )
    for candidate in filter(None, [shutil.which(f"python{version}"), *newest_first]):
        if _output(candidate, "-c", "print('runs')") == "runs":
            return candidate
    message = f"no Python {version} on PATH nor in pyenv"
    if os.environ.get("CI"):
        session.error(message)
    session.skip(message)


def _release(path: str) -> str:
    """``3.13.0`` for ``~/.pyenv/versions/3.13.0/bin/python3.13``."""
    return os.path.basename(os.path.dirname(os.path.dirname(path)))


def _output(*command: str) -> str:
    """What the command printed, stripped; empty when it could not run or failed."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def install(session: nox.Session, cell: Cell) -> list[str]:
    """Build ``cell``'s virtualenv if need be and check it holds the cell's versions; the
    make variables naming it."""
    variables = [
        f"PYTHON={interpreter(session, cell.python)}",
        f"VENV={cell.venv}",
        f"DJANGO={cell.django}",
    ]
    session.run("make", "install", *variables, external=True)
    found = _output(f"{cell.venv}/bin/python", "-c", VERSIONS).split() or ["no", "no"]
    if found[0] != cell.python or not found[1].startswith(f"{cell.django}."):
        session.error(
            f"{cell.venv} has Python {found[0]} and Django {found[1]}, not {cell.python} and "
            f"{cell.django}: remove it and run the session again"
        )
    return variables


def run_tests(session: nox.Session, cell: Cell, *pytest_args: str) -> None:
    """``make test`` in ``cell``, with ``pytest_args`` and the session's own arguments."""
    variables = install(session, cell)
    selection = " ".join(filter(None, [*pytest_args, shlex.join(session.posargs)]))
    session.run(
        "make",
        "test",
        *variables,
        f"PYTEST_ARGS={selection}",
        env={"DATABASE_URL": cell.database_url},
        external=True,
    )


def each(cells: list[Cell], label: str = "name") -> list[nox.param]:
    return [nox.param(cell, id=getattr(cell, label)) for cell in cells]


@nox.session
def lint(session: nox.Session) -> None:
    """``make lint``: ruff, ruff format and mypy (strict)."""
    session.run("make", "lint", *install(session, PRIMARY), external=True)


@nox.session
def migrations(session: nox.Session) -> None:
    """The migrations match the models, and apply and reverse on PostgreSQL."""
    install(session, PRIMARY)
    python = os.path.abspath(f"{PRIMARY.venv}/bin/python")
    django = [python, "-m", "django"]
    tests = {"DJANGO_SETTINGS_MODULE": "tests.settings"}
    session.run(*django, "makemigrations", "--check", "--dry-run", env=tests, external=True)
    with session.chdir("example_project"):
        session.run(python, "manage.py", "makemigrations", "--check", "--dry-run", external=True)
    postgresql = {**tests, "DATABASE_URL": POSTGRES_URL}
    quiet = ["--noinput", "--verbosity", "0"]
    session.run(*django, "migrate", *quiet, env=postgresql, external=True)
    session.run(*django, "migrate", "billflow_usage", "zero", *quiet, env=postgresql, external=True)


@nox.session
@nox.parametrize("cell", each(CELLS))
def tests(session: nox.Session, cell: Cell) -> None:
    """The suite as ``make test`` runs it: all but the slow and soak runs."""
    run_tests(session, cell)


@nox.session
@nox.parametrize("cell", each(CELLS))
def slow(session: nox.Session, cell: Cell) -> None:
    """The slow runs: the browser test, the long fault-injection runs, the scale test."""
    run_tests(session, cell, "-m slow")


@nox.session
@nox.parametrize("boundary", [nox.param(name, id=name) for name in ("month", "year")])
def calendar(session: nox.Session, boundary: str) -> None:
    """The suite again in a month's first minutes or a year's first seconds, so no test
    depends on where in the calendar it runs (tests/clock.py)."""
    install(session, PRIMARY)
    read = f"from tests.clock import BOUNDARIES; print(BOUNDARIES[{boundary!r}])"
    session.env["BILLFLOW_TEST_NOW"] = _output(f"{PRIMARY.venv}/bin/python", "-c", read)
    run_tests(session, PRIMARY, "-q", CALENDAR_TESTS, "--ignore=tests/model")


@nox.session
@nox.parametrize("cell", each(ENVIRONMENTS, "environment"))
def audit(session: nox.Session, cell: Cell) -> None:
    """``make audit``: known vulnerabilities in what the virtualenv resolved. Pass
    ``-- --skip-if-unreachable`` where no advisory service may answer."""
    variables = install(session, cell)
    arguments = f"AUDIT_ARGS={shlex.join(session.posargs)}"
    session.run("make", "audit", *variables, arguments, external=True)


@nox.session
def demo(session: nox.Session) -> None:
    """``make demo`` on a fresh SQLite database."""
    database = "example_project/db.sqlite3"
    if os.path.exists(database):
        os.remove(database)
    session.run("make", "demo", *install(session, PRIMARY), external=True)


@nox.session
def docs(session: nox.Session) -> None:
    """``make docs``: the docs site built with ``mkdocs build --strict`` (a broken link, a page
    left out of the nav or a docstring mkdocstrings can't read fails it)."""
    session.run("make", "docs", *install(session, PRIMARY), external=True)


@nox.session
def quickstart(session: nox.Session) -> None:
    """``make quickstart``: docs/quickstart.md run as written in a project made by
    ``django-admin startproject``, with the wheel installed (not editable) and the fake Stripe,
    until the usage is delivered and ``billflow_sync`` finds it in step (.ci/quickstart.py)."""
    session.run("make", "quickstart", *install(session, PRIMARY), external=True)
