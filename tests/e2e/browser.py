"""Headless Chromium from Debian's ``chromium`` and ``chromium-driver`` packages.

Selenium is given both binaries, so Selenium Manager never runs and nothing is downloaded.
"""

from __future__ import annotations

import base64
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1280,900",
)
PAGE_TIMEOUT = 15.0  # seconds for a clicked link or button to bring the next page


def missing_binaries() -> list[Path]:
    """The binaries this machine lacks (apt-get install chromium chromium-driver)."""
    return [path for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]


def start_chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    return webdriver.Chrome(
        service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options
    )


def follow(driver: webdriver.Chrome, element: WebElement) -> None:
    """Click a link or submit button and wait until the page it leads to has replaced this one
    (a click returns as soon as it is sent, so the old page would otherwise still be read)."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, PAGE_TIMEOUT).until(staleness_of(page))


def save_full_page(driver: webdriver.Chrome, path: Path) -> Path:
    """A PNG of the whole page, below the window's bottom edge too (Chromium's DevTools)."""
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
