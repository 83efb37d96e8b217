"""Headless Chromium driving the studio against a real daemon on loopback.

Debian's `chromium` and `chromium-driver` packages (`.ci/run` installs them); Selenium talks
to /usr/bin/chromedriver, so nothing is downloaded. Without them the browser tests skip with
a message, except under CI, where a missing browser is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage", "--mute-audio",
         "--autoplay-policy=no-user-gesture-required"]
SHOTS = Path(os.environ.get("STUDIO_SHOTS", "/tmp/studio-shots"))
PHONE, DESKTOP = (375, 812), (1280, 900)


def need_chromium() -> None:
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER))
               if not path or not os.access(path, os.X_OK)]
    if not missing:
        return
    message = (f"{' and '.join(missing)} not installed: apt-get install chromium chromium-driver "
               "to run the web studio's browser tests")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def start_browser(downloads: Path):
    """A headless Chromium at desktop width that saves downloads into `downloads`."""
    need_chromium()
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


def page_ready(driver) -> bool:
    """The studio's script has wired the page. Asked mid-reload, the new document may have no
    body yet (its head still parsing): that is "not yet", not a JavaScript error."""
    return driver.execute_script("return document.body?.dataset.ready === 'true'")


class Studio:
    """One browser on one daemon, with the few moves every test makes."""

    def __init__(self, driver, base_url: str, loop: asyncio.AbstractEventLoop, daemon: Any, downloads: Path):
        self.driver, self.base_url, self.loop, self.daemon, self.downloads = driver, base_url, loop, daemon, downloads

    def run(self, coro) -> Any:
        """Run a coroutine on the daemon's own event loop (its store belongs to that loop)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, condition: Callable[[Any], Any], timeout: float = 30, what: str = "the condition"):
        from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:  # the page redraws its lists: an element found a moment ago may be gone, so look again
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1,
                                 ignored_exceptions=[StaleElementReferenceException]).until(condition)
        except TimeoutException:
            flash = self.driver.execute_script("return document.getElementById('flash')?.textContent")
            raise AssertionError(f"timed out waiting for {what}; the page says {flash!r}; "
                                 f"console: {self.console()}") from None

    def visible(self, css: str, timeout: float = 30):
        return self.wait(lambda d: next((e for e in self.all(css) if e.is_displayed()), False), timeout, css)

    def go(self, hash_: str) -> None:
        self.driver.execute_script("location.hash = arguments[0]", hash_)

    def sign_in(self, token: str, page: str = "make") -> None:
        """Signed in on `page`: opening it directly spares the daemon drawing previews nobody looks at."""
        self.driver.get(f"{self.base_url}/#{page}")
        self.wait(page_ready, what="the page")
        self.sign_out()  # the cookie of whoever signed in last
        field = self.find("#token")
        field.clear()
        field.send_keys(token)
        self.find("#signin-form button[type=submit]").click()
        self.visible("#nav")

    def sign_out(self) -> None:
        """Signing out loads a fresh page: wait for the old one to go, then for the new one."""
        from selenium.common.exceptions import WebDriverException

        def gone(_driver) -> bool:
            try:
                old.is_enabled()
                return False
            except WebDriverException:  # stale, or chromedriver's "node does not belong to the document"
                return True

        if self.find("#sign-out").is_displayed():
            old = self.find("body")
            self.find("#sign-out").click()
            self.wait(gone, what="the page to reload")
            self.wait(page_ready, what="the page")
            self.visible("#view-signin")

    def console(self) -> list[str]:
        try:
            return [e["message"] for e in self.driver.get_log("browser")]
        except Exception:  # a driver without the log endpoint
            return []

    def screenshot(self, name: str) -> None:
        """The current page at phone and desktop widths, whole, under /tmp/studio-shots/."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        for label, (width, height) in (("phone", PHONE), ("desktop", DESKTOP)):
            self.driver.set_window_size(width, height)
            full = self.driver.execute_script("return document.documentElement.scrollHeight")
            self.driver.set_window_size(width, min(max(height, full + 140), 6000))
            self.driver.save_screenshot(str(SHOTS / f"{name}-{label}.png"))
            if label == "phone":
                scroll = self.driver.execute_script(
                    "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert scroll <= 0, f"{name}: the page scrolls sideways by {scroll} px at {width} px"
        self.driver.set_window_size(*DESKTOP)
