"""The web console for tests: a real `debar serve console` process on a free port, in front of a real sanction
service, and a real Chromium (Debian's, driven by Selenium through /usr/bin/chromedriver)."""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.support.servers import ServiceProcess, start_service, wait_for

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Known passwords for the tests' two reviewers (the accounts file holds only their argon2 hashes).
REVIEWERS = {"li": "li-password-for-tests", "zhang": "zhang-password-for-tests"}


def write_accounts(path: Path) -> Path:
    from debar.console.accounts import add_reviewer

    for login, password in REVIEWERS.items():
        add_reviewer(path, login, password, f"Reviewer {login.title()}")
    return path


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def start_console(env: dict[str, str], log_dir: Path) -> tuple[ServiceProcess, str]:
    """The console process and its base URL, once GET /healthz answers."""
    console = start_service("console", env, log_dir, wait_serving=False)
    url = f"http://127.0.0.1:{console.port}"
    if not wait_for(lambda: _healthy(url) or console.process.poll() is not None):
        console.stop()
        raise RuntimeError(f"the console did not start:\n{console.log()}")
    if console.process.poll() is not None:
        raise RuntimeError(f"the console exited at start:\n{console.log()}")
    return console, url


def chromium():  # type: ignore[no-untyped-def]
    """A headless Chromium with a fresh profile; fails (never skips) when the browser is missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Chromium is missing: scripts/system-tools installs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="debar-chromium-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(0)
    driver.profile_dir = profile
    return driver


def close(driver) -> None:  # type: ignore[no-untyped-def]
    driver.quit()
    shutil.rmtree(driver.profile_dir, ignore_errors=True)
