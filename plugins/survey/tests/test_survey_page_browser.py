"""The survey page in a real browser: headless Chromium on a phone-sized window,
against a real server (uvicorn on a free port), on SQLite and PostgreSQL.

An owner opens the link of the message they were sent, taps scores, ticks two
problems, types a comment in Chinese and submits; the answer is then read back
through the HTTP API (the 360 view's timeline and the scores). Screenshots of the
filled-in form and of the thanks page are saved under the test's tmp_path (the path
is printed: ``pytest -s`` shows it). Skips without Chromium; ``RECRM_REQUIRE_BROWSER=1``
(``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from recrm_survey import answers, send_due
from survey_testkit import Capture, ago, owner

from recrm_core import CRM
from recrm_core.testing import ApiClients, save_screenshot, submit_and_wait

pytestmark = pytest.mark.recrm_plugins("survey")

COMMENT = "小区绿化很好，希望电梯维修再快一点。"


@pytest.fixture
def recrm_settings(live_port: int) -> dict[str, Any]:
    # The links in the messages point at the live server.
    return {"public_base_url": f"http://127.0.0.1:{live_port}"}


def _link(crm: CRM, register_plugin: Callable[..., str], mobile: str) -> tuple[int, str]:
    """An owner handed over 100 days ago, the 3-month check-in sent: their id and
    the link in the message."""
    capture = Capture()
    register_plugin(capture)
    cid = owner(crm, mobile, handed_over=ago(100), name="王伟")
    assert send_due(crm).sent == 1
    [message] = capture.messages
    found = re.search(r"https?://\S+/s/[A-Za-z0-9_-]+", message.body)
    assert found, message.body
    return cid, found.group(0)


def _tap(browser: Any, question: str, label: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(
        By.XPATH, f"//div[@id='q-{question}']//label[span[normalize-space()='{label}']]"
    ).click()


def _submit(browser: Any) -> None:
    """Tap the submit button and wait for the next page."""
    submit_and_wait(browser)


def test_owner_fills_in_the_survey_on_a_phone(
        crm: CRM, live_server: str, browser: Any, api_client: ApiClients,
        register_plugin: Callable[..., str], tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    cid, link = _link(crm, register_plugin, "13812345678")
    assert link.startswith(f"{live_server}/s/")
    browser.get(link)
    assert browser.find_element(By.TAG_NAME, "h1").text == "业主入住回访"
    assert browser.execute_script("return document.documentElement.lang") == "zh-CN"
    # the page fits the phone: nothing wider than the window
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")

    # First a careless submit: the required questions are named, nothing is stored
    _tap(browser, "nps", "9")
    _submit(browser)
    errors = browser.find_elements(By.CSS_SELECTOR, ".error")
    assert [e.text for e in errors] == ["这道题必须回答。"] * 3
    assert answers(crm) == []
    # the score tapped before is still chosen
    assert browser.find_element(By.CSS_SELECTOR, "input[name=nps][value='9']").is_selected()

    for question, score in (("overall", "5"), ("repurchase", "4"), ("referral", "5"),
                            ("quality", "4")):
        _tap(browser, question, score)
    _tap(browser, "issues", "渗漏")
    _tap(browser, "issues", "噪音")
    browser.find_element(By.CSS_SELECTOR, "textarea[name=comment]").send_keys(COMMENT)
    shot = save_screenshot(browser, tmp_path / "survey-form.png")
    assert shot.stat().st_size > 10_000
    _submit(browser)

    assert browser.find_element(By.TAG_NAME, "h1").text == "提交成功"
    assert "感谢您的宝贵意见" in browser.find_element(By.TAG_NAME, "body").text
    save_screenshot(browser, tmp_path / "survey-thanks.png")

    # Read back through the HTTP API of the same server, with a key
    key = api_client.key("manager")
    with httpx.Client(base_url=live_server,
                      headers={"Authorization": f"Bearer {key}"}) as client:
        view = client.get(f"/v1/customers/{cid}")
        assert view.status_code == 200, view.text
        [entry] = [e for e in view.json()["timeline"] if e["kind"] == "survey_answer"]
        assert entry["title"] == "answered 业主入住回访: NPS 9, satisfaction 5/5"
        assert entry["data"]["scores"] == {"nps": 9, "overall_satisfaction": 5,
                                           "repurchase_intent": 4, "referral_intent": 5,
                                           "quality": 4}
        scores = client.get("/v1/survey/scores", params={"period": "all"})
        assert scores.status_code == 200, scores.text
        [score] = scores.json()
        assert (score["answers"], score["promoters"], score["nps"]) == (1, 1, 100)
    [stored] = answers(crm)
    assert stored.answers["comment"] == COMMENT
    assert stored.answers["issues"] == ["渗漏", "噪音"]

    # The link again: answered, said politely; no second answer
    browser.get(link)
    assert browser.find_element(By.TAG_NAME, "h1").text == "您已提交过问卷"
    assert len(answers(crm)) == 1


def test_a_wrong_link_is_a_plain_404_page(live_server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server}/s/not-a-token-of-ours")
    assert browser.find_element(By.TAG_NAME, "h1").text == "页面不存在"
    with httpx.Client(base_url=live_server) as client:
        got = client.get("/s/not-a-token-of-ours")
    assert got.status_code == 404 and got.headers["content-type"].startswith("text/html")
