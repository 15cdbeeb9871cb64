"""Audit the locked dependency set for known vulnerabilities (``make audit``; CI runs it).

The lock is what this virtualenv resolved: ``pip freeze`` without the project itself,
written to ``artifacts/requirements-lock-py3XX.txt`` so that a run's exact set can be read
afterwards. pip-audit then checks every pinned release, exactly as pinned (``--no-deps
--disable-pip``), against the first advisory service that answers from here: PyPI's
per-release JSON API (fed by the Python advisory database), else OSV's API. It fails on any
known vulnerability and, with ``--strict``, on any package it could not check.

When neither service answers, no audit is possible: this says so and fails, or with
``--skip-if-unreachable`` (CI) says so and succeeds, since a missing service is not a
vulnerability. Run it with the virtualenv's Python (pip-audit is in the dev extra).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Where pip-audit's services read a release's advisories.
PYPI_RELEASE = "https://pypi.org/pypi/{name}/{version}/json"
OSV_QUERY = "https://api.osv.dev/v1/query"
TIMEOUT = 15  # seconds for each reachability probe


def write_lock(path: Path) -> list[str]:
    """The installed set as ``name==version`` lines (the editable project left out)."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = sorted(
        line for line in frozen.splitlines() if "==" in line and not line.startswith(("#", "-"))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{pin}\n" for pin in pins))
    return pins


def pypi_unreachable(name: str, version: str) -> str | None:
    """Why PyPI's advisories of this release cannot be read from here, or None."""
    url = PYPI_RELEASE.format(name=name, version=version)
    return _unanswered(urllib.request.Request(url), "vulnerabilities")


def osv_unreachable(name: str, version: str) -> str | None:
    """Why OSV's advisories of this release cannot be read from here, or None."""
    query = {"package": {"name": name, "ecosystem": "PyPI"}, "version": version}
    request = urllib.request.Request(
        OSV_QUERY, data=json.dumps(query).encode(), headers={"Content-Type": "application/json"}
    )
    return _unanswered(request, None)


def _unanswered(request: urllib.request.Request, key: str | None) -> str | None:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            document = json.load(response)
    except urllib.error.HTTPError as exc:
        return f"{request.full_url} answered HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return f"{request.full_url}: {exc}"
    if not isinstance(document, dict) or (key is not None and key not in document):
        return f"{request.full_url} carries no vulnerability data"
    return None


SERVICES = {"pypi": pypi_unreachable, "osv": osv_unreachable}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--skip-if-unreachable",
        action="store_true",
        help="Succeed, saying so, when no vulnerability database answers (CI).",
    )
    args = parser.parse_args()
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    lock = ROOT / "artifacts" / f"requirements-lock-{python}.txt"
    pins = write_lock(lock)
    print(f"{len(pins)} locked packages in {lock.relative_to(ROOT)}")
    probe = next((p for p in pins if p.lower().startswith("django==")), pins[0])
    reasons = []
    for service, unreachable in SERVICES.items():
        reason = unreachable(*probe.split("==", 1))
        if reason is None:
            audit = [sys.executable, "-m", "pip_audit", "--requirement", str(lock), "--no-deps"]
            audit += ["--disable-pip", "--strict", "--vulnerability-service", service]
            audit += ["--desc", "on", "--progress-spinner", "off"]
            print(f"Auditing against {service}")
            return subprocess.run(audit, check=False).returncode
        reasons.append(reason)
    print(
        f"No vulnerability database is reachable from here ({'; '.join(reasons)}), so "
        f"{lock.name} was NOT audited. Run `make audit` on a machine that reaches pypi.org "
        "or api.osv.dev.",
        file=sys.stderr,
    )
    return 0 if args.skip_if_unreachable else 1


if __name__ == "__main__":
    sys.exit(main())
