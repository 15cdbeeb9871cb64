"""Run the quickstart as written, in a new project: CI's proof that the page works.

    .venv/bin/python .ci/quickstart.py                # docs/quickstart.md (nox -s quickstart)
    .venv/bin/python .ci/quickstart.py --keep         # keep the project afterwards, to look at
    .venv/bin/python .ci/quickstart.py --wheel dist/billflow_usage-0.1.0-py3-none-any.whl

It installs a wheel (``--wheel``, else the newest ``dist/*.whl`` that ``make dist`` left if no
source changed since, else one built now with ``pip wheel``) into a new virtualenv in a
temporary folder, not editable, as a user would; makes a project there with the page's own
``django-admin startproject``; runs the page's marked blocks in order; and checks the result:
every ledger row sent, Stripe's (the fake's) total per customer equal to the ledger's, and
``billflow_sync`` finding the usage in sync with nothing left over. Any failure prints the
command's output and exits 1.

How the page marks what is run (the rules this script reads, and the only liberties it takes):

- A block is run when the line before its opening fence is ``<!-- quickstart -->``; the others
  (the install commands, production advice) are for reading.
- A block whose fence says ``title="PATH"`` is a file: it is written to PATH in the project.
  ``title="PATH (add at the end)"`` appends it to PATH instead.
- Any other block is a ``console`` block: each line starting with ``$ `` is a command, run with
  bash in the project folder, with the virtualenv first on PATH. ``export NAME=VALUE`` sets
  NAME for the commands after it. A command ending in ``# in another terminal`` is started in
  the background (the script waits for its first line of output) and stopped at the end.
- The fake Stripe's port, 12111 on the page, becomes a free port in every command, so the
  check runs beside anything that uses 12111 (the demo).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "quickstart.md"
MARKER = "<!-- quickstart -->"
#: The port the page gives the fake Stripe; replaced by a free one.
PAGE_PORT = "12111"
APPEND = " (add at the end)"
BACKGROUND = "# in another terminal"
#: Seconds one command may take (migrate takes about two minutes).
COMMAND_TIMEOUT = 900
FENCE = re.compile(r"^```(?P<info>\S*)(?P<rest>.*)$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
#: Variables of the caller's environment that would change what the page does.
LEAKY = ("STRIPE_", "BILLFLOW_", "DJANGO_", "DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV")


@dataclass(frozen=True)
class Block:
    """A marked block: a file (``path``) or console commands (``path`` None)."""

    line: int
    language: str
    text: str
    path: str | None = None
    append: bool = False

    @property
    def commands(self) -> list[str]:
        return [line[2:] for line in self.text.splitlines() if line.startswith("$ ")]


def marked_blocks(markdown: str) -> list[Block]:
    """The blocks of ``markdown`` marked to be run, in page order."""
    lines = markdown.splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = lines.index("```", index + 1)
        if index > 0 and lines[index - 1].strip() == MARKER:
            blocks.append(_block(index + 1, opening, "\n".join(lines[index + 1 : end]) + "\n"))
        index = end + 1
    return blocks


def _block(line: int, fence: re.Match[str], text: str) -> Block:
    title = TITLE.search(fence["rest"])
    if title is None:
        if fence["info"] != "console":
            raise ValueError(f"line {line}: a marked block is a console block or has a title")
        return Block(line, "console", text)
    path = title["title"]
    append = path.endswith(APPEND)
    return Block(line, fence["info"], text, path.removesuffix(APPEND), append)


class Failed(Exception):
    """A step of the quickstart did not work."""


class Project:
    """A new project in a temporary folder, its virtualenv, and what runs in the background."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.venv = folder / "venv"
        self.path = folder / "project"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY)}
        self.env["VIRTUAL_ENV"] = str(self.venv)
        self.env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"
        self.background: list[subprocess.Popen[str]] = []

    def install(self, wheel: Path) -> None:
        step(f"virtualenv with {wheel.name}")
        run([sys.executable, "-m", "venv", str(self.venv)], ROOT, self.env)
        pip = [str(self.venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        run([*pip, str(wheel)], ROOT, self.env)
        self.path.mkdir()

    def apply(self, block: Block) -> None:
        if block.path is not None:
            self.write(block)
        else:
            for command in block.commands:
                self.command(command.replace(PAGE_PORT, str(self.port)))

    def write(self, block: Block) -> None:
        step(f"{'append to' if block.append else 'write'} {block.path}  (line {block.line})")
        target = self.path / block.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a" if block.append else "w") as file:
            file.write(("\n" if block.append else "") + block.text)

    def command(self, command: str) -> None:
        step(f"$ {command}")
        exported = re.fullmatch(r"export (\w+)=(\S+)", command)
        if exported:
            self.env[exported[1]] = exported[2]
        elif command.rstrip().endswith(BACKGROUND):
            self.start(command.rstrip().removesuffix(BACKGROUND).rstrip())
        else:
            run(["bash", "-c", command], self.path, self.env)

    def start(self, command: str) -> None:
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=self.path,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.background.append(process)
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first:
            raise Failed(f"{command!r} ended before printing anything (exit {process.wait()})")
        print(f"    {first.strip()}")

    def stop(self) -> None:
        for process in self.background:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)

    def manage(self, *arguments: str) -> str:
        return run(["python", "manage.py", *arguments], self.path, self.env)


def step(title: str) -> None:
    print(f"::: {title}", flush=True)


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """What ``command`` printed; raises ``Failed`` with its output if it failed."""
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise Failed(f"{shlex.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    print(f"    ok in {time.monotonic() - started:.1f} s")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_wheel(given: Path | None, folder: Path) -> Path:
    """``given``, else the newest ``dist/*.whl`` if no source changed since, else a wheel
    built from this checkout now."""
    if given is not None:
        return given.resolve()
    built = sorted((ROOT / "dist").glob("billflow_usage-*.whl"), key=lambda p: p.stat().st_mtime)
    sources = [ROOT / "pyproject.toml", *(ROOT / "billflow_usage").rglob("*")]
    if built and built[-1].stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        print(f"::: using {built[-1].relative_to(ROOT)} (built by make dist)")
        return built[-1]
    step("build a wheel (no dist/*.whl newer than the sources)")
    wheels = folder / "wheels"
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir"]
    run([*pip, str(wheels), str(ROOT)], ROOT, dict(os.environ))
    return next(wheels.glob("billflow_usage-*.whl"))


LEDGER = """
import json
from django.db.models import Sum
from billflow_usage.models import UsageEvent
rows = UsageEvent.objects.all()
print(json.dumps({
    "statuses": sorted(set(rows.values_list("status", flat=True))),
    "totals": {row["customer_id"]: row["total"] for row in
               rows.values("customer_id").annotate(total=Sum("value"))},
}))
"""


def dry_sync(project: Project) -> dict[str, int]:
    """A dry ``billflow_sync``'s summary, comparing usage sent seconds ago."""
    command = ("billflow_sync", "--dry-run", "--settling-window", "0", "--json")
    summary: dict[str, int] = json.loads(project.manage(*command))["summary"]
    return summary


def check_billed(project: Project) -> str:
    """Every row sent, the fake's totals equal to the ledger's, and a sync in step."""
    step("check: the ledger, the fake Stripe and billflow_sync agree")
    ledger = json.loads(project.manage("shell", "-v", "0", "-c", LEDGER).splitlines()[-1])
    url = f"http://127.0.0.1:{project.port}/_fake/state"
    with urllib.request.urlopen(url, timeout=10) as answer:
        state = json.load(answer)
    stripe = {row["customer"]: row["total"] for row in state["meter_totals"]}
    if not ledger["totals"] or ledger["statuses"] != ["sent"]:
        raise Failed(f"the ledger holds no delivered usage: {ledger}")
    if stripe != ledger["totals"]:
        raise Failed(f"Stripe holds {stripe}, the ledger {ledger['totals']}")
    summary = dry_sync(project)
    checked, in_sync = summary["metered_checked"], summary["metered_in_sync"]
    if checked < len(stripe) or in_sync != checked or summary["drift_remaining"]:
        raise Failed(f"billflow_sync does not find the usage in sync: {summary}")
    units = sum(stripe.values())
    return f"{units} units delivered to {len(stripe)} customer(s); billflow_sync: in sync"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, default=PAGE, help="default: docs/quickstart.md")
    parser.add_argument("--wheel", type=Path, help="default: dist/*.whl, else one built now")
    parser.add_argument("--keep", action="store_true", help="keep the project folder")
    args = parser.parse_args(argv)
    blocks = marked_blocks(args.page.read_text())
    folder = Path(tempfile.mkdtemp(prefix="billflow-quickstart-"))
    project = Project(folder, free_port())
    started = time.monotonic()
    try:
        project.install(find_wheel(args.wheel, folder))
        for block in blocks:
            project.apply(block)
        outcome = check_billed(project)
    except (Failed, subprocess.TimeoutExpired) as exc:
        print(f"The quickstart failed: {exc}", file=sys.stderr)
        return 1
    finally:
        project.stop()
        if args.keep:
            print(f"The project is kept in {project.path}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    took = time.monotonic() - started
    print(f"The quickstart works: {len(blocks)} blocks run; {outcome} ({took:.0f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
