"""The survey page ``/s/<token>`` and the link to it, through httpx against the app
on SQLite and PostgreSQL (the same page in a real browser:
test_survey_page_browser.py)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from recrm_survey import answers, invitations, invite
from recrm_survey.service import survey_link
from sqlalchemy import update
from survey_testkit import ago, customer, owner

from recrm_core import CRM, ConfigError
from recrm_core.testing import ApiClients

pytestmark = pytest.mark.recrm_plugins("survey")

CHECKIN = {"token": "", "nps": "9", "overall": "5", "repurchase": "4", "referral": "5",
           "issues": ["渗漏", "噪音"], "comment": "电梯维修希望再快一点"}


def _open_invitation(crm: CRM, survey: str = "handover_checkin", **kw: Any) -> Any:
    cid = customer(crm, kw.pop("mobile", "13812345678"), name="王伟")
    crm.projects.ensure("XL2")
    return invite(crm, cid, survey, project="XL2", due_at=kw.pop("due_at", ago(1)))


def _form(token: str, **values: Any) -> dict[str, Any]:
    return {**CHECKIN, "token": token, **values}


def _page(response: Any, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text[-800:])
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    assert '<html lang="zh-CN">' in response.text and "<script" not in response.text
    return str(response.text)


def _error_of(page: str, qid: str) -> str | None:
    block = page.split(f'id="q-{qid}"', 1)[1].split('<div class="card"', 1)[0]
    found = re.search(r'<p class="error">([^<]*)</p>', block)
    return found.group(1) if found else None


def test_the_link_is_the_page_on_public_base_url(crm_factory: Callable[..., CRM]) -> None:
    crm = crm_factory(plugins=["survey"], settings={"public_base_url": "https://crm.example.cn"})
    inv = _open_invitation(crm)
    assert survey_link(crm, inv.token) == f"https://crm.example.cn/s/{inv.token}"


@pytest.mark.parametrize("template, expected", [
    ("{base}/survey/{token}?from=sms", "http://127.0.0.1:8000/survey/{token}?from=sms"),
    ("https://survey.example.com/s/{token}", "https://survey.example.com/s/{token}"),
])
def test_link_templates_with_and_without_base(crm_factory: Callable[..., CRM], template: str,
                                              expected: str) -> None:
    # a template of one's own survey site (without {base}) keeps working
    crm = crm_factory(plugins=["survey"], settings={"survey": {"link_template": template}})
    inv = _open_invitation(crm)
    assert survey_link(crm, inv.token) == expected.format(token=inv.token)


@pytest.mark.parametrize("template", ["{base}/s/", "{base}/s/{token}/{other}", "{token}{"])
def test_bad_link_templates_are_config_errors(crm_factory: Callable[..., CRM],
                                              template: str) -> None:
    with pytest.raises(ConfigError, match="link_template"):
        crm_factory(plugins=["survey"], settings={"survey": {"link_template": template}})


def test_the_form_shows_every_question(crm: CRM, api_client: ApiClients) -> None:
    inv = _open_invitation(crm)
    page = _page(api_client(None).get(f"/s/{inv.token}"), 200)
    assert "<h1>业主入住回访</h1>" in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert f'<input type="hidden" name="token" value="{inv.token}">' in page
    for n in range(11):
        assert f'name="nps" value="{n}"' in page
    assert page.count('type="radio" name="overall"') == 5
    assert 'type="checkbox" name="issues" value="渗漏"' in page
    assert '<textarea name="comment" maxlength="2000"' in page
    assert "您有多大可能向亲友推荐我们？" in page and "入住后遇到过哪些问题？" in page


def test_a_valid_form_is_the_sdks_answer_once(crm: CRM, api_client: ApiClients) -> None:
    inv = _open_invitation(crm)
    client = api_client(None)
    done = _page(client.post(f"/s/{inv.token}", data=_form(inv.token)), 200)
    assert "提交成功" in done and "感谢您的宝贵意见" in done
    [stored] = answers(crm)
    assert stored.invitation_id == inv.id and stored.case_id is None
    assert stored.answers == {"nps": 9, "overall": 5, "repurchase": 4, "referral": 5,
                              "issues": ["渗漏", "噪音"], "comment": "电梯维修希望再快一点"}
    # again (a reload, a second tab): polite, and no second answer
    again = _page(client.post(f"/s/{inv.token}", data=_form(inv.token, nps="0")), 409)
    assert "您已提交过问卷" in again
    assert "您已提交过问卷" in _page(client.get(f"/s/{inv.token}"), 200)
    assert len(answers(crm)) == 1
    [after] = invitations(crm)
    assert after.status == "answered"


def test_a_detractor_on_the_page_opens_a_case(crm: CRM, api_client: ApiClients) -> None:
    # the same path as the SDK: closing the loop comes with it
    inv = _open_invitation(crm)
    _page(api_client(None).post(f"/s/{inv.token}", data=_form(inv.token, nps="3")), 200)
    [stored] = answers(crm)
    assert stored.case_id is not None
    assert crm.cases.get(stored.case_id).subject == "业主入住回访: NPS 3"


def test_invalid_answers_come_back_with_messages_and_kept(crm: CRM,
                                                          api_client: ApiClients) -> None:
    inv = _open_invitation(crm)
    form = _form(inv.token, nps="11", overall="", issues=["漏水"],
                 comment="<script>alert(1)</script>")
    form.pop("repurchase")
    page = _page(api_client(None).post(f"/s/{inv.token}", data=form), 422)
    assert "有 4 道题需要修改" in page
    assert _error_of(page, "nps") == "请选择 0–10 之间的分数。"
    assert _error_of(page, "overall") == "这道题必须回答。"
    assert _error_of(page, "repurchase") == "这道题必须回答。"
    assert _error_of(page, "issues") == "请从给出的选项中选择。"
    assert _error_of(page, "referral") is None and _error_of(page, "comment") is None
    # kept: the valid choice checked, the text back in its box, escaped
    assert 'name="referral" value="5" checked' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</textarea>" in page
    assert answers(crm) == []


def test_a_too_long_comment_is_said_in_chinese(crm: CRM, api_client: ApiClients) -> None:
    inv = _open_invitation(crm)
    page = _page(api_client(None).post(f"/s/{inv.token}",
                                       data=_form(inv.token, comment="长" * 2001)), 422)
    assert _error_of(page, "comment") == "内容不能超过 2000 个字。"


def test_a_post_without_the_token_is_refused(crm: CRM, api_client: ApiClients) -> None:
    inv = _open_invitation(crm)
    client = api_client(None)
    form = _form(inv.token)
    form.pop("token")
    _page(client.post(f"/s/{inv.token}", data=form), 400)
    _page(client.post(f"/s/{inv.token}", data=_form("someone-elses")), 400)
    assert answers(crm) == []


def test_wrong_tokens_are_a_plain_404_page(crm: CRM, api_client: ApiClients) -> None:
    inv = _open_invitation(crm)
    client = api_client(None)
    # an invitation's id is no token: the page never reads one as the other
    for wrong in (str(inv.id), inv.token[:-1], inv.token + "x", "x" * 100, "%00"):
        assert "页面不存在" in _page(client.get(f"/s/{wrong}"), 404)
        _page(client.post(f"/s/{wrong}", data=_form(wrong)), 404)
    assert answers(crm) == []


def _set(crm: CRM, invitation_id: int, **values: Any) -> None:
    from recrm_survey.tables import SurveyInvitation

    with crm.unit_of_work() as uow:
        uow.session.execute(update(SurveyInvitation)
                            .where(SurveyInvitation.id == invitation_id).values(**values))


def test_closed_links_say_so_politely(crm: CRM, api_client: ApiClients) -> None:
    client = api_client(None)
    expired = _open_invitation(crm, due_at=ago(40))  # expires 30 days after its due date
    page = _page(client.get(f"/s/{expired.token}"), 410)
    assert "问卷已过期" in page
    local = expired.expires_at.astimezone(crm.config.zone)
    assert f"{local.year}年{local.month}月{local.day}日截止" in page
    _page(client.post(f"/s/{expired.token}", data=_form(expired.token)), 410)

    cancelled = _open_invitation(crm, mobile="13812345679")
    _set(crm, cancelled.id, status="cancelled", detail="consent withdrawn before sending")
    assert "问卷已取消" in _page(client.get(f"/s/{cancelled.token}"), 410)
    _page(client.post(f"/s/{cancelled.token}", data=_form(cancelled.token)), 410)

    later = _open_invitation(crm, mobile="13812345670",
                             due_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    assert "问卷尚未开始" in _page(client.get(f"/s/{later.token}"), 200)
    _page(client.post(f"/s/{later.token}", data=_form(later.token)), 409)
    assert answers(crm) == []


def test_an_erased_customers_link_is_gone(crm: CRM, api_client: ApiClients) -> None:
    cid = owner(crm, "13812345678", handed_over=ago(100))
    [checkin] = [i for i in invitations(crm, customer_id=cid) if i.months_after == 3]
    crm.privacy.erase(cid, "asked")
    _page(api_client(None).get(f"/s/{checkin.token}"), 404)


@pytest.mark.recrm_settings(api={"public_rate_limit_per_minute": 2})
def test_the_page_is_limited_per_client_address(crm: CRM, api_client: ApiClients) -> None:
    from fastapi.testclient import TestClient

    inv = _open_invitation(crm)
    client = TestClient(api_client.app, client=("203.0.113.9", 4000))
    _page(client.get(f"/s/{inv.token}"), 200)
    _page(client.get(f"/s/{inv.token}"), 200)
    limited = client.post(f"/s/{inv.token}", data=_form(inv.token))
    assert "请求过于频繁" in _page(limited, 429) and int(limited.headers["retry-after"]) >= 1
    assert answers(crm) == []
    client.close()
