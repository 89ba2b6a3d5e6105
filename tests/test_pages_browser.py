"""The unsubscribe page in a real browser: headless Chromium on a phone-sized
window against a real server (uvicorn on a free port), on SQLite and PostgreSQL.
Skips without Chromium; ``RECRM_REQUIRE_BROWSER=1`` (``.ci/run``) makes that a
failure. A screenshot of the confirmation page is saved under the test's tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from recrm_core import CRM
from recrm_core.testing import ApiClients, save_screenshot, submit_and_wait
from recrm_core.unsubscribe import unsubscribe_url


@pytest.fixture
def recrm_settings(live_port: int) -> dict[str, Any]:
    return {"public_base_url": f"http://127.0.0.1:{live_port}"}


def test_a_reader_unsubscribes_on_a_phone(crm: CRM, live_server: str, browser: Any,
                                          api_client: ApiClients, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    cid = crm.customers.add({"name": "王伟", "mobile": "13812345678",
                             "email": "wang@example.com"}).customer.id
    crm.consent.grant(cid, "email", "marketing", source="office form")
    link = unsubscribe_url(crm, cid, "email")
    assert link.startswith(f"{live_server}/u/")

    browser.get(link)
    assert browser.find_element(By.TAG_NAME, "h1").text == "退订确认"
    assert "不再通过邮件向您发送营销信息" in browser.find_element(By.TAG_NAME, "body").text
    save_screenshot(browser, tmp_path / "unsubscribe-confirm.png")
    submit_and_wait(browser)
    assert browser.find_element(By.TAG_NAME, "h1").text == "已退订"
    save_screenshot(browser, tmp_path / "unsubscribe-done.png")

    key = api_client.key("admin")
    with httpx.Client(base_url=live_server,
                      headers={"Authorization": f"Bearer {key}"}) as client:
        got = client.get(f"/v1/customers/{cid}/consents")
        assert got.status_code == 200, got.text
        [email] = [c for c in got.json() if (c["channel"], c["purpose"]) == ("email",
                                                                            "marketing")]
        assert (email["granted"], email["source"]) == (False, "unsubscribe_link")
        # RFC 8058 one-click from the mail client: the same URL, no confirmation
        again = client.post(link, data={"List-Unsubscribe": "One-Click"},
                            headers={"Authorization": ""})
        assert again.status_code == 200 and "您此前已退订" in again.text

    browser.get(link)
    assert browser.find_element(By.TAG_NAME, "h1").text == "您已退订"
