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
    EXAMPLE,
    ROOT,
    ExampleSite,
    running_example,
)

ARTIFACTS = ROOT / "artifacts" / "e2e"
SCREENSHOTS = pytest.StashKey[list[Path]]()


@pytest.fixture(scope="module")
def chromium() -> Iterator[webdriver.Chrome]:
    """Checks first that there is an example project to drive (an unpacked sdist may lack it)."""
    if not (EXAMPLE / "manage.py").is_file():
        pytest.skip(f"needs the example project, and {EXAMPLE} has none (an archive without it?)")
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
) -> Callable[..., Path]:
    """Save the page as ``artifacts/e2e/<name>-<database>-py<version>.png``: the whole page,
    or what the window shows (a long list's first screen)."""

    def save(name: str, *, full_page: bool = True) -> Path:
        python = f"py{sys.version_info.major}.{sys.version_info.minor}"
        path = ARTIFACTS / f"{name}-{example_site.vendor}-{python}.png"
        if full_page:
            save_full_page(chromium, path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            chromium.save_screenshot(str(path))
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
