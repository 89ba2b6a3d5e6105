"""The unsubscribe page ``/u/<token>`` and what every public page shares (HTML in
Chinese, no key, a budget per client address), through httpx against the app on
SQLite and PostgreSQL. The same page in a real browser: test_pages_browser.py."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest

from recrm_core import CRM, ConfigError, InvalidInput
from recrm_core.testing import ApiClients
from recrm_core.unsubscribe import (
    SOURCE,
    make_unsubscribe_token,
    read_unsubscribe_token,
    unsubscribe_url,
)

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _customer(crm: CRM, mobile: str = "13812345678") -> int:
    return crm.customers.add({"mobile": mobile, "name": "王伟",
                              "email": "wang@example.com"}).customer.id


def _path(crm: CRM, customer_id: int, channel: str = "email",
          purpose: str = "marketing") -> str:
    return unsubscribe_url(crm, customer_id, channel, purpose).removeprefix(
        crm.config.public_base_url)


def _withdrawals(crm: CRM, customer_id: int) -> list[Any]:
    from sqlalchemy import select

    from recrm_core.tables import ConsentRow

    with crm.unit_of_work(readonly=True) as uow:
        return list(uow.session.scalars(select(ConsentRow).where(
            ConsentRow.customer_id == customer_id, ConsentRow.granted.is_(False))))


def _deciding(crm: CRM, customer_id: int, channel: str, purpose: str) -> Any:
    found = [c for c in crm.consent.current(customer_id)
             if (c.channel, c.purpose) == (channel, purpose)]
    return found[0] if found else None


def _is_page(response: Any, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("text/html"), response.headers
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src" not in response.headers["content-security-policy"]
    assert '<html lang="zh-CN">' in response.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in response.text
    assert "<script" not in response.text
    return str(response.text)


def test_the_link_confirms_then_withdraws_once(crm: CRM, api_client: ApiClients) -> None:
    cid = _customer(crm)
    crm.consent.grant(cid, "email", "marketing", source="office form")
    path = _path(crm, cid)
    assert unsubscribe_url(crm, cid, "email").startswith("http://127.0.0.1:8000/u/")
    client = api_client(None)  # no key: a public page

    page = _is_page(client.get(path), 200)
    assert "确认退订" in page and "不再通过邮件向您发送营销信息" in page
    assert _deciding(crm, cid, "email", "marketing").granted  # a GET changes nothing

    token = path.removeprefix("/u/")
    done = _is_page(client.post(path, data={"token": token}), 200)
    assert "已退订" in done and "您已成功退订" in done
    deciding = _deciding(crm, cid, "email", "marketing")
    assert (deciding.granted, deciding.source) == (False, SOURCE)
    # SMS marketing and email surveys are other consents: untouched
    assert _deciding(crm, cid, "sms", "marketing") is None

    # idempotent: the page and a second POST say it is done, nothing more is recorded
    assert "您此前已退订" in _is_page(client.get(path), 200)
    assert "您此前已退订" in _is_page(client.post(path, data={"token": token}), 200)
    assert len(_withdrawals(crm, cid)) == 1
    # audited by the consent service, with no staff actor
    [entry] = [e for e in crm.audit.entries() if e.action == "consent"
               and e.details.get("granted") is False]
    assert entry.customer_id == cid


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_at_once(crm: CRM, api_client: ApiClients,
                                             encoding: str) -> None:
    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click, as a form either way
    cid = _customer(crm)
    path = _path(crm, cid, "email", "marketing")
    client = api_client(None)
    if encoding == "urlencoded":
        got = client.post(path, content=b"List-Unsubscribe=One-Click",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    else:
        got = client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert "已退订" in _is_page(got, 200)
    assert _deciding(crm, cid, "email", "marketing").granted is False


def test_a_post_with_neither_token_nor_one_click_changes_nothing(
        crm: CRM, api_client: ApiClients) -> None:
    cid = _customer(crm)
    path = _path(crm, cid)
    client = api_client(None)
    for body in ({}, {"token": "another"}, {"List-Unsubscribe": "yes"}):
        _is_page(client.post(path, data=body), 400)
    _is_page(client.post(path, content=b"\xff\xfe", headers={"Content-Type": "text/plain"}),
             400)
    assert _withdrawals(crm, cid) == []


def _flip(text: str, at: int) -> str:
    swapped = "A" if text[at] != "A" else "B"
    return text[:at] + swapped + text[at + 1:]


def test_a_changed_or_foreign_token_is_a_404_page(
        crm: CRM, api_client: ApiClients, crm_factory: Callable[..., CRM],
        tmp_path: Any) -> None:
    cid = _customer(crm)
    other = _customer(crm, "13912345678")
    token = make_unsubscribe_token(crm, cid, "email")
    payload, mac = token.split(".")
    # someone else's id with the first customer's signature
    forged = base64.urlsafe_b64encode(f"{other}:email:marketing".encode()).rstrip(b"=").decode()
    wrong = [
        _flip(token, 0), _flip(token, len(token) - 1), payload, f"{payload}.", f".{mac}",
        f"{forged}.{mac}", "x" * 500, "%00", f"{token}.x", token.replace(".", "!"),
    ]
    client = api_client(None)
    for bad in wrong:
        page = _is_page(client.get(f"/u/{bad}"), 404)
        assert "页面不存在" in page
        _is_page(client.post(f"/u/{bad}", data=ONE_CLICK), 404)
    # signed, but for a customer who does not exist
    missing = make_unsubscribe_token(crm, 999_999, "sms")
    _is_page(client.get(f"/u/{missing}"), 404)
    _is_page(client.post(f"/u/{missing}", data=ONE_CLICK), 404)
    assert _withdrawals(crm, cid) == [] and _withdrawals(crm, other) == []


def test_token_maker_refuses_what_consent_does_not_know(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match="channel"):
        make_unsubscribe_token(crm, 1, "fax")
    with pytest.raises(InvalidInput, match="purpose"):
        make_unsubscribe_token(crm, 1, "sms", "spam")
    with pytest.raises(InvalidInput, match="customer_id"):
        make_unsubscribe_token(crm, 0, "sms")
    link = read_unsubscribe_token(crm, make_unsubscribe_token(crm, 7, "wechat", "surveys"))
    assert (link.customer_id, link.channel, link.purpose) == (7, "wechat", "surveys")


def test_a_merged_customers_link_withdraws_the_survivors_consent(
        crm: CRM, api_client: ApiClients) -> None:
    survivor = _customer(crm)
    duplicate = crm.customers.add({"mobile": "13912345678"}).customer.id
    path = _path(crm, duplicate, "sms")
    crm.customers.merge(survivor, duplicate)
    _is_page(api_client(None).post(path, data=ONE_CLICK), 200)
    assert _deciding(crm, survivor, "sms", "marketing").granted is False


def test_an_erased_customers_link_says_so_politely(crm: CRM, api_client: ApiClients) -> None:
    cid = _customer(crm)
    path = _path(crm, cid)
    crm.privacy.erase(cid, "the person asked")
    client = api_client(None)
    assert "个人信息已按要求删除" in _is_page(client.get(path), 200)
    assert "个人信息已按要求删除" in _is_page(client.post(path, data=ONE_CLICK), 200)
    assert _withdrawals(crm, cid) == []


@pytest.mark.recrm_settings(api={"public_rate_limit_per_minute": 3})
def test_pages_are_limited_per_client_address(crm: CRM, api_client: ApiClients) -> None:
    from fastapi.testclient import TestClient

    cid = _customer(crm)
    path = _path(crm, cid)
    one = TestClient(api_client.app, client=("198.51.100.7", 5000))
    for _ in range(3):
        _is_page(one.get(path), 200)
    limited = one.get(path)
    assert "请求过于频繁" in _is_page(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 20
    _is_page(one.get("/u/wrong"), 429)  # the budget is counted before the token is looked at
    # another address has its own budget; an IPv6 address counts by its /64
    _is_page(TestClient(api_client.app, client=("198.51.100.8", 5000)).get(path), 200)
    six = [TestClient(api_client.app, client=(f"2001:db8::{n}", 5000)) for n in (1, 2, 3, 4)]
    for client in six[:3]:
        _is_page(client.get(path), 200)
    _is_page(six[3].get(path), 429)
    # the API's keys keep their own budget
    assert api_client("admin").get(f"/v1/customers/{cid}").status_code == 200
    one.close()


def test_public_base_url_is_checked(crm_factory: Callable[..., CRM]) -> None:
    for bad in ("https://crm.example.com/", "ftp://crm.example.com", "crm.example.com",
                "https://", "https://crm.example.com/?a=1", "https://crm.example.com:x"):
        with pytest.raises(ConfigError, match="public_base_url"):
            crm_factory(settings={"public_base_url": bad})
    crm = crm_factory(settings={"public_base_url": "https://crm.example.com/app"})
    assert unsubscribe_url(crm, 1, "sms").startswith("https://crm.example.com/app/u/")
