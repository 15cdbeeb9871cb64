"""The dependency pins admit no Django release with a published security advisory and
nothing newer than what CI tests; the classifiers name exactly the Django series admitted;
the environment the suite runs in is within the pins."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PINS = {Requirement(spec).name.lower(): Requirement(spec) for spec in PROJECT["dependencies"]}

#: Django releases with a published security advisory, each fixed by a later release of its
#: series (Django's release notes and security archive, docs/releases/).
ADVISED = {
    "5.2.18": "CVE-2026-108147 and four more, fixed in 5.2.19 (2026-11-03)",
    "5.2": "CVE-2025-32873, fixed in 5.2.1",
    "6.0.9": "CVE-2026-108147 and five more, fixed in 6.0.10 (2026-11-03)",
    "6.1.2": "CVE-2026-108147 and five more, fixed in 6.1.3 (2026-11-03)",
    "6.1": "CVE-2026-77050 and four more, fixed in 6.1.2 (2026-10-06)",
}
PATCHED = ["5.2.19", "6.1.3"]


@pytest.mark.parametrize(("release", "advisory"), ADVISED.items())
def test_no_django_release_with_a_published_advisory(release, advisory):
    assert not PINS["django"].specifier.contains(release), advisory


@pytest.mark.parametrize("release", PATCHED)
def test_the_patched_releases_are_admitted(release):
    assert PINS["django"].specifier.contains(release)


@pytest.mark.parametrize(
    ("name", "untested"), [("django", "6.2"), ("django", "7.0"), ("dj-stripe", "2.12.0")]
)
def test_nothing_newer_than_what_ci_tests(name, untested):
    """The code imports dj-stripe internals (WEBHOOK_SIGNALS): a bound, not a hope."""
    assert not PINS[name].specifier.contains(untested)


def test_classifiers_name_the_django_series_admitted():
    claimed = {
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if c.startswith("Framework :: Django :: ")
    }
    admitted = {
        series
        for series in ("5.0", "5.1", "5.2", "6.0", "6.1", "6.2", "7.0")
        if PINS["django"].specifier.contains(f"{series}.99")
    }
    assert claimed == admitted == {"5.2", "6.1"}


@pytest.mark.parametrize("name", ["django", "dj-stripe", "stripe"])
def test_the_suite_runs_within_the_pins(name):
    assert PINS[name].specifier.contains(Version(version(name)))


def test_the_audit_tool_is_in_the_dev_extra():
    dev = [Requirement(spec).name for spec in PROJECT["optional-dependencies"]["dev"]]
    assert "pip-audit" in dev
