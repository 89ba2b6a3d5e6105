"""The SMS provider's reply callback and the send report over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from newsletter_testkit import add_customers
from recrm_newsletter import service

from recrm_core import CRM, ConfigError
from recrm_core.testing import ApiClients, problem_of

pytestmark = [pytest.mark.recrm_plugins("newsletter"),
              pytest.mark.recrm_settings(newsletter={"inbound_secret": "cb-s3cret-4f9Qx2Lm"})]


def test_an_sms_reply_td_withdraws_sms_marketing(crm: CRM, api_client: ApiClients) -> None:
    [cid] = add_customers(crm, 1, channel="sms")
    public = api_client(None)
    assert public.post("/nl/sms/wrong", json={"from": "13812340000", "text": "TD"}
                       ).status_code == 404
    hello = public.post("/nl/sms/cb-s3cret-4f9Qx2Lm",
                        json={"from": "13812340000", "text": "你好"})
    assert hello.json() == {"unsubscribed": 0} and crm.consent.allowed(cid, "sms")
    td = public.post("/nl/sms/cb-s3cret-4f9Qx2Lm",
                     json={"from": "+86 138 1234 0000", "text": " td "})
    assert td.json() == {"unsubscribed": 1}
    assert not crm.consent.allowed(cid, "sms")
    assert crm.consent.current(cid)[-1].source == "sms_reply"


def test_the_reply_n_withdraws_too(crm: CRM, api_client: ApiClients) -> None:
    """``N`` (as some providers' "reply N to refuse" reads) withdraws as ``T`` does; the
    README now says so."""
    [cid] = add_customers(crm, 1, channel="sms")
    got = api_client(None).post("/nl/sms/cb-s3cret-4f9Qx2Lm",
                                json={"from": "13812340000", "text": "n"})
    assert got.json() == {"unsubscribed": 1} and not crm.consent.allowed(cid, "sms")


@pytest.mark.parametrize("secret", ["", "x", "cb-s3cret", "a" * 15, "a" * 101,
                                    "a/b" + "c" * 20, "有" * 16, "a b" + "c" * 20])
def test_a_short_or_unsafe_inbound_secret_is_refused(crm_factory: Any, secret: str) -> None:
    """Found by a new user's probe: any secret was taken, ``x`` too, though it is all
    that stands between the public route and withdrawing anyone's consent. It needs
    the length of a webhook's shared secret (16 to 100), in characters a URL path
    carries as themselves."""
    with pytest.raises(ConfigError, match=r"inbound_secret: .*must be 16 to 100 letters"):
        crm = crm_factory(plugins=["newsletter"],
                          settings={"newsletter": {"inbound_secret": secret}})
        service(crm).conf  # noqa: B018 - settings may be read lazily
    made = "Xy3_" + "-" * 8 + "a.b~c"
    assert service(crm_factory(plugins=["newsletter"], settings={"newsletter": {
        "inbound_secret": made}})).conf.inbound_secret == made


def test_send_report_route(crm: CRM, api_client: ApiClients) -> None:
    from newsletter_testkit import HTML, SEGMENT
    from recrm_newsletter import service

    news = service(crm)
    news.save_segment("p", SEGMENT)
    news.create_campaign("launch", channel="email", segment="p", subject="s", html=HTML)
    got = api_client("admin").get("/v1/newsletter/sends/launch")
    assert got.status_code == 200 and got.json()["send"]["state"] == "draft"
    assert api_client("admin").get("/v1/newsletter/sends/nope").status_code == 404


def test_the_state_machine_over_http(crm: CRM, api_client: ApiClients) -> None:
    import io

    from newsletter_testkit import HTML, SEGMENT
    from recrm_newsletter import service

    crm.console_stream = io.StringIO()
    add_customers(crm, 2)
    news = service(crm)
    news.save_segment("p", SEGMENT)
    news.create_campaign("launch", channel="email", segment="p", subject="s", html=HTML)
    admin = api_client("admin")
    assert admin.post("/v1/newsletter/sends/launch/pause").status_code == 409
    got = admin.post("/v1/newsletter/sends/launch/schedule", json={})
    assert got.status_code == 200 and got.json()["state"] == "scheduled"
    assert admin.post("/v1/newsletter/sends/launch/pause").json()["state"] == "paused"
    assert admin.post("/v1/newsletter/sends/launch/resume").json()["state"] == "scheduled"
    ran = admin.post("/v1/newsletter/run")
    assert ran.json()["sent"] == 2
    assert [s["state"] for s in admin.get("/v1/newsletter/sends").json()] == ["sent"]
    assert api_client("sales", staff="s1").post("/v1/newsletter/run").status_code == 403


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_a_schedule_time_with_no_utc_time_is_a_422_naming_at(
        crm: CRM, api_client: ApiClients, at: str) -> None:
    """Year 9999 west of UTC (year 1 east of it) has no UTC time: before, converting it
    raised OverflowError, a 500. (Both are outside the range of entered days, which
    refuses them first.)"""
    from newsletter_testkit import HTML, SEGMENT
    from recrm_newsletter import service

    news = service(crm)
    news.save_segment("p", SEGMENT)
    news.create_campaign("launch", channel="email", segment="p", subject="s", html=HTML)
    got = problem_of(api_client("admin").post("/v1/newsletter/sends/launch/schedule",
                                              json={"at": at}), 422)
    assert got["field"] == "at" and "is out of range (1900-01-01 to 9998-12-31)" in got["detail"]
    assert news.get("launch").state == "draft"
