"""Pages in a real browser, for plugin authors' tests of their HTML pages: the ``crm``
fixture's API served by uvicorn (``live_server``) and headless Chromium (``browser``).
Registered with the other fixtures of :mod:`recrm_core.testing`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..crm import CRM

#: Debian's Chromium and its driver (apt-get install chromium chromium-driver)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: set to 1 (``.ci/run`` does) to make a missing browser fail the browser tests
REQUIRE_BROWSER_ENV = "RECRM_REQUIRE_BROWSER"
#: a phone's window (an iPhone 12-15 in CSS pixels)
PHONE = (390, 844)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return "no Chromium: apt-get install chromium chromium-driver"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "no selenium: pip install 'recrm[test]'"
    return None


@pytest.fixture
def live_port() -> int:
    """A free TCP port on 127.0.0.1 for :func:`live_server`. To make the CRM's links
    point at the live server, override ``recrm_settings`` in the test module::

        @pytest.fixture
        def recrm_settings(live_port):
            return {"public_base_url": f"http://127.0.0.1:{live_port}"}
    """
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def live_server(crm: CRM, live_port: int) -> Iterator[str]:
    """The HTTP API of ``crm`` served by uvicorn on ``live_port`` in a thread (a real
    server: sockets, HTTP parsing, client addresses); its base URL."""
    import threading
    import time

    import uvicorn

    from ..api import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(crm), host="127.0.0.1", port=live_port,
                                           log_level="warning", proxy_headers=False))
    thread = threading.Thread(target=server.run, name="recrm-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the live server did not start on port {live_port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{live_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium in a phone-sized window, driven by selenium through
    ``/usr/bin/chromedriver`` (nothing downloads a driver). Skips with one line
    without Chromium, fails instead when ``RECRM_REQUIRE_BROWSER=1``."""
    why = browser_missing()
    if why is not None:
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{why} ({REQUIRE_BROWSER_ENV}=1)")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", f"--window-size={PHONE[0]},{PHONE[1]}",
                 "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--lang=zh-CN",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def save_screenshot(driver: Any, path: Path) -> Path:
    """A screenshot of the whole page (the window grown to its height) at ``path``;
    prints the path, so a person can look at the page."""
    width = driver.execute_script("return window.outerWidth")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    size = driver.get_window_size()
    driver.set_window_size(width, max(size["height"], int(height) + 120))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    print(f"screenshot: {path}")
    return path


def submit_and_wait(driver: Any, selector: str = "button[type=submit]",
                    timeout: float = 20) -> None:
    """Click ``selector`` and wait until the browser has replaced the page.

    Selenium's ``staleness_of`` expects a stale-element error; while Chromium swaps the
    document it may instead answer "Node with given id does not belong to the
    document", which means the same thing (and made page tests flaky)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, selector).click()

    def replaced(_driver: Any) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc) or "No node" in str(exc):
                return True
            raise
        return False

    WebDriverWait(driver, timeout).until(replaced)
