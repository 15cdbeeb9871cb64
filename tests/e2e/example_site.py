"""The example project running as a developer runs it after ``make demo``: its database, the
demo's data, ``runserver`` and ``billflow_worker`` in their own processes, and the demo's
fake Stripe loaded from its saved state (here in the test's process, to be inspected)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import environ
import psycopg
from psycopg import sql

from billflow_usage.testing.fake_stripe import FakeStripe

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_project"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "e2e-admin-password"
STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class ExampleSite:
    url: str
    stripe: FakeStripe
    vendor: str  # the database's: "sqlite" or "postgresql"
    #: The environment its processes run in, for more ``manage(...)`` calls.
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def example_database(workdir: Path) -> Iterator[tuple[str, str]]:
    """(DATABASE_URL, vendor): on PostgreSQL when ``DATABASE_URL`` says so, a database named
    after the suite's with ``_e2e`` appended, created and dropped here; else an SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if not url or "postgresql" not in environ.Env.db_url_config(url)["ENGINE"]:
        yield f"sqlite:///{workdir / 'example.sqlite3'}", "sqlite"
        return
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/')}_e2e"
    server = urlunsplit(parts._replace(path="/postgres"))
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(drop)
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}")), "postgresql"
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(drop)


def example_environment(database_url: str, workdir: Path) -> dict[str, str]:
    """The example's settings (tables made without migrations), never a real Stripe key."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.e2e.example_settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "DATABASE_URL": database_url,
        "DEBUG": "true",  # runserver serves the admin's CSS and JavaScript
        "STRIPE_SECRET_KEY": "",
        "FAKE_STRIPE_STATE": str(workdir / "fake_stripe_state.json"),
        "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
    }


def manage(env: dict[str, str], *args: str) -> str:
    """Run ``manage.py`` to completion; its output, or an error carrying it."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode:
        raise AssertionError(
            f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        )
    return done.stdout


@contextmanager
def background(env: dict[str, str], log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``manage.py`` running until the block ends, its output in ``log``."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=EXAMPLE,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_serving(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"runserver exited {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/admin/login/", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"runserver did not answer in {STARTUP_TIMEOUT:.0f} s:\n{log.read_text()}")


@contextmanager
def running_example(workdir: Path) -> Iterator[ExampleSite]:
    """``make demo`` then ``make serve``, on a fresh database and free ports."""
    with ExitStack() as stack:
        database_url, vendor = stack.enter_context(example_database(workdir))
        env = example_environment(database_url, workdir)
        manage(env, "migrate", "--run-syncdb", "--noinput", "--verbosity", "0")
        demo = manage({**env, "FAKE_STRIPE_URL": f"http://127.0.0.1:{free_port()}"}, "demo")
        if f"log in as {ADMIN_USERNAME!r}" not in demo:
            raise AssertionError(f"the demo made no admin login:\n{demo}")
        stripe = stack.enter_context(FakeStripe())
        stripe.load_state(env["FAKE_STRIPE_STATE"])
        env["FAKE_STRIPE_URL"] = stripe.url
        url = f"http://127.0.0.1:{free_port()}"
        server_log = workdir / "runserver.log"
        server = stack.enter_context(
            background(env, server_log, "runserver", urlsplit(url).netloc, "--noreload")
        )
        stack.enter_context(
            background(env, workdir / "worker.log", "billflow_worker", "--idle-sleep", "0.2")
        )
        wait_until_serving(url, server, server_log)
        yield ExampleSite(url, stripe, vendor, env)
