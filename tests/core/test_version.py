"""The version is written once, in ``billflow_usage/__init__.py``; the package's metadata
reads it from there (setuptools' dynamic version), so the two can't drift apart."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import billflow_usage

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_reads_the_version_from_the_package() -> None:
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "billflow_usage.__version__"
    }


def test_the_installed_distribution_has_the_package_s_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", billflow_usage.__version__)
    assert version("billflow-usage") == billflow_usage.__version__
