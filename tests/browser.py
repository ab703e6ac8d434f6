"""Debian's chromium + chromium-driver under selenium, for the console's browser tests.

Missing browser or driver: the test skips saying what to install, except under CI (CI=true),
where the browser tests must run and a missing browser fails them."""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1100")


def need_browser() -> tuple[str, str]:
    """(chromium, chromedriver) paths, or skip (fail under CI) naming what is missing."""
    browser = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        selenium = None
    missing = [name for name, found in (("chromium", browser), ("chromium-driver", driver),
                                        ("selenium (pip, the test extra)", selenium)) if not found]
    if missing:
        message = f"browser tests need {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(message + "; CI is set, so they must run")
        pytest.skip(message)
    return browser, driver


def start_chromium(profile_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    browser, driver = need_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(dir=profile_dir)}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def console_errors(driver) -> list[str]:
    """Messages the page logged at SEVERE level (JavaScript errors, failed requests)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
