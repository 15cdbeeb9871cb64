"""The browser test's fixtures: the example project running, a logged-in Chromium, and
screenshots kept under ``artifacts/e2e/`` (listed at the end of the run); RabbitMQ for the
example's Celery run."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from tests.broker import broker  # noqa: F401 (a fixture: the Celery run of the example)
from tests.e2e.browser import follow, missing_binaries, save_full_page, start_chromium
from tests.e2e.example_site import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    ROOT,
    ExampleSite,
    running_example,
)

ARTIFACTS = ROOT / "artifacts" / "e2e"
SCREENSHOTS = pytest.StashKey[list[Path]]()


@pytest.fixture(scope="module")
def chromium() -> Iterator[webdriver.Chrome]:
    missing = missing_binaries()
    if missing:
        pytest.skip(
            f"needs Debian's chromium and chromium-driver ({', '.join(map(str, missing))} "
            "missing): apt-get install chromium chromium-driver"
        )
    driver = start_chromium()
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def example_site(
    chromium: webdriver.Chrome, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExampleSite]:
    """Requests Chromium first, so a machine without it skips before anything starts."""
    with running_example(tmp_path_factory.mktemp("example_project")) as site:
        yield site


@pytest.fixture(scope="module")
def admin(chromium: webdriver.Chrome, example_site: ExampleSite) -> webdriver.Chrome:
    """Chromium logged in to the example's admin with the login the demo made."""
    chromium.get(f"{example_site.url}/admin/login/")
    chromium.find_element(By.NAME, "username").send_keys(ADMIN_USERNAME)
    chromium.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    follow(chromium, chromium.find_element(By.CSS_SELECTOR, "#login-form [type=submit]"))
    page = chromium.find_element(By.ID, "content").text
    assert chromium.find_elements(By.ID, "logout-form"), f"the login was refused: {page}"
    return chromium


@pytest.fixture
def screenshot(
    request: pytest.FixtureRequest, chromium: webdriver.Chrome, example_site: ExampleSite
) -> Callable[[str], Path]:
    """Save the whole page as ``artifacts/e2e/<name>-<database>-py<version>.png``."""

    def save(name: str) -> Path:
        python = f"py{sys.version_info.major}.{sys.version_info.minor}"
        path = save_full_page(chromium, ARTIFACTS / f"{name}-{example_site.vendor}-{python}.png")
        request.config.stash.setdefault(SCREENSHOTS, []).append(path)
        return path

    return save


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    paths = config.stash.get(SCREENSHOTS, [])
    if paths:
        terminalreporter.section("browser test screenshots")
        for path in paths:
            terminalreporter.write_line(str(path))
