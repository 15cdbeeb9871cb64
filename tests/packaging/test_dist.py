"""The sdist and the wheel, built as ``make dist`` builds them (``python -m build``): the
wheel holds the package and its data files only; the sdist is what MANIFEST.in lists, and
its own test suite collects and runs from the unpacked archive."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import billflow_usage

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "billflow_usage"
NAME = f"billflow_usage-{billflow_usage.__version__}"
#: Never in an archive: caches, local databases, the demo's saved fake Stripe.
LEFT_OUT = ("__pycache__", ".pyc", ".sqlite3", "fake_stripe_state.json", ".venv", "artifacts/")
#: What the sdist's own tests and docs need besides the package.
SDIST_NEEDS = [
    "pyproject.toml",
    "MANIFEST.in",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "mkdocs.yml",
    ".ci/quickstart.py",
    "tests/conftest.py",
    "tests/settings.py",
    "tests/e2e/conftest.py",
    "example_project/manage.py",
    "example_project/saas/management/commands/demo.py",
    "docs/quickstart.md",
]

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Dist:
    wheel: list[str]
    sdist: list[str]
    sdist_path: Path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    if importlib.util.find_spec("build") is None:
        pytest.skip("needs the 'build' package (pip install build), which `make dist` uses")
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [wheel] = out.glob(f"{NAME}-*.whl")
    [sdist] = out.glob(f"{NAME}.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        wheel_names = archive.namelist()
    with tarfile.open(sdist) as archive:
        sdist_names = [name.removeprefix(f"{NAME}/") for name in archive.getnames() if name != NAME]
    return Dist(wheel_names, sdist_names, sdist)


def package_files() -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for path in PACKAGE.rglob("*")
        if path.is_file() and not any(part in str(path) for part in LEFT_OUT)
    }


def test_the_wheel_holds_the_package_and_its_data_only(dist: Dist) -> None:
    files = {name for name in dist.wheel if not name.startswith(f"{NAME}.dist-info/")}
    assert files == package_files()
    assert "billflow_usage/py.typed" in files
    assert "billflow_usage/templates/admin/billflow_usage/customer_usage.html" in files
    assert f"{NAME}.dist-info/entry_points.txt" in dist.wheel  # the pytest plugin


def test_the_sdist_holds_what_manifest_in_lists(dist: Dist) -> None:
    names = set(dist.sdist)
    assert package_files() <= names
    assert set(SDIST_NEEDS) <= names
    tests = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")}
    assert {t for t in tests if "__pycache__" not in t} <= names
    assert not [name for name in names if any(part in name for part in LEFT_OUT)]


def test_the_sdists_own_tests_run_and_skip_cleanly(dist: Dist, tmp_path: Path) -> None:
    with tarfile.open(dist.sdist_path) as archive:
        archive.extractall(tmp_path, filter="data")
    unpacked = tmp_path / NAME
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "BILLFLOW_"))},
        "PYTHONPATH": str(unpacked),
    }
    pytest_command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]

    collected = run([*pytest_command, "--collect-only"], unpacked, env)
    assert "error" not in collected.splitlines()[-1], collected[-2000:]
    run([*pytest_command, "tests/core", "tests/docs"], unpacked, env)

    shutil.rmtree(unpacked / "example_project")
    skipped = run([*pytest_command, "-m", "browser", "-rs", "tests/e2e"], unpacked, env)
    assert "needs the example project" in skipped


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout
