"""Campaign names are cleaned as the core cleans codes: ``spring``, ``ｓｐｒｉｎｇ`` and
``spr\\u200bing`` are one campaign, not three that print alike; a control character is
refused; a campaign stored before names were cleaned stays findable by its name."""

from __future__ import annotations

import pytest
from newsletter_testkit import HTML, SEGMENT
from recrm_newsletter import service
from recrm_newsletter.tables import SendRow
from sqlalchemy import update

from recrm_core import CRM, InvalidInput, Refused
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("newsletter")


def _create(crm: CRM, name: str) -> str:
    news = service(crm)
    if "prospects" not in news.segments():
        news.save_segment("prospects", SEGMENT)
    return news.create_campaign(name, channel="email", segment="prospects",
                                subject="开盘", html=HTML).name


def test_spellings_that_print_alike_are_one_campaign(crm: CRM) -> None:
    assert _create(crm, "ｓｐｒｉｎｇ") == "spring"
    for twin in ("spring", "spr\u200bing", " spring\ufeff"):
        with pytest.raises(Refused, match="exists"):
            _create(crm, twin)
    news = service(crm)
    assert [s.name for s in news.sends()] == ["spring"]
    assert news.get("spr\u200bing").name == "spring"
    news.schedule("ｓｐｒｉｎｇ")
    assert news.get("spring").state == "scheduled"


def test_a_control_character_in_a_campaign_name_is_refused(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match=r"control character \(U\+001B\)"):
        _create(crm, "spring\x1b[2J")
    with pytest.raises(InvalidInput, match="campaign name"):
        _create(crm, "\u200b")


def test_a_campaign_stored_before_names_were_cleaned_stays_findable(
        crm: CRM, cli_runner: RecrmCliRunner) -> None:
    _create(crm, "autumn")
    with crm.unit_of_work() as uow:  # as an older version stored it
        uow.session.execute(update(SendRow).where(SendRow.name == "autumn")
                            .values(name="ａｕｔｕｍｎ"))
    news = service(crm)
    assert news.get("ａｕｔｕｍｎ").name == "ａｕｔｕｍｎ"
    result = cli_runner.invoke("newsletter", "campaign", "status", "ａｕｔｕｍｎ", "--json")
    assert result.exit_code == 0, result.stderr


def test_campaign_send_finds_the_campaign_by_any_spelling(
        crm: CRM, cli_runner: RecrmCliRunner) -> None:
    _create(crm, "spring")
    result = cli_runner.invoke("newsletter", "campaign", "send", "ｓｐｒｉｎｇ", "--json")
    assert result.exit_code == 0, result.stderr
    assert service(crm).get("spring").state == "sent"
