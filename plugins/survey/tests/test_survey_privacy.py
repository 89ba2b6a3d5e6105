"""Privacy requests: a respondent's export, and their erasure — invitations and free
text gone, link tokens dead, the scores (NPS, CSAT, L3, drivers) exactly as before."""

from __future__ import annotations

import json
from typing import Any

import pytest
from recrm_survey import answer, drivers, invite, scores
from recrm_survey import recrm_customer_erase as survey_erase
from recrm_survey import recrm_customer_export as survey_export
from recrm_survey.tables import SurveyAnswer, SurveyInvitation, SurveyScore
from sqlalchemy import select
from survey_testkit import ago, answered, checkin_values, customer, utc

from recrm_core import CRM, RecrmError

pytestmark = pytest.mark.recrm_plugins("survey")

MOBILE = "13812345678"
NAME = "王伟"
EMAIL = "wangwei@example.com"
TABLES = (SurveyInvitation, SurveyAnswer, SurveyScore)


def panel(crm: CRM) -> dict[str, int]:
    """王伟 answered twice (text answers about himself, a low score that opened a case),
    has a pending invitation; two others answered, one naming his mobile."""
    wang = customer(crm, MOBILE, NAME, email=EMAIL)
    li = customer(crm, "13900001111", "李娜")
    zhao = customer(crm, "13700002222", "赵敏")
    answered(crm, wang, utc(2025, 4, 2, 4), checkin_values(
        3, 2, 3, 3, comment=f"我是{NAME}, 电话 {MOBILE}, 邮件 {EMAIL}"))
    answered(crm, wang, utc(2025, 5, 2, 4), checkin_values(10, 5, 5, 5, issues=["渗漏"]))
    answered(crm, li, utc(2025, 4, 3, 4), checkin_values(
        9, 5, 5, 5, comment="邻居 138-1234-5678 晚上很吵"))
    answered(crm, zhao, utc(2025, 5, 3, 4), checkin_values(6, 3, 4, 4))
    invite(crm, wang, "csat", due_at=ago(1))
    return {"wang": wang, "li": li, "zhao": zhao}


def rows_of(crm: CRM) -> list[dict[str, Any]]:
    with crm.unit_of_work() as uow:
        return [
            {"table": t.__tablename__, **{c.key: getattr(r, c.key) for c in t.__table__.c}}
            for t in TABLES for r in uow.session.scalars(select(t)).all()
        ]


def holds_person(row: dict[str, Any]) -> bool:
    text = json.dumps(row, default=str, ensure_ascii=False)
    digits = "".join(ch for ch in text if ch.isdigit())
    return MOBILE in digits or EMAIL in text or NAME in text


def test_survey_export_lists_invitations_answers_and_scores(crm: CRM) -> None:
    ids = panel(crm)
    with crm.unit_of_work(readonly=True) as uow:
        wang = crm.customers.get_in(uow, ids["wang"])
        direct = survey_export(uow=uow, customer=wang)
        through = crm.hooks.customer_export(uow, wang)
    assert through == {"survey": direct}
    assert direct is not None and json.loads(json.dumps(direct)) == direct
    assert [i["status"] for i in direct["invitations"]] == ["answered", "answered", "pending"]
    # the link token is a secret that answers as the person: not in a file they take away
    assert all("token" not in i and "dedupe_key" not in i for i in direct["invitations"])
    first, second = direct["answers"]
    assert first["answers"]["comment"].startswith(f"我是{NAME}")
    assert first["case_id"] is not None  # NPS 3 opened a case
    assert {s["role"]: s["value"] for s in first["scores"]}["nps"] == 3
    assert second["answered_at"] == "2025-05-02T04:00:00+00:00"


def test_survey_erase_keeps_the_scores_and_nothing_about_the_person(crm: CRM) -> None:
    ids = panel(crm)
    before_scores = scores(crm, period="all")
    before_drivers = drivers(crm)
    with crm.unit_of_work(readonly=True) as uow:
        tokens = list(uow.session.scalars(select(SurveyInvitation.token).where(
            SurveyInvitation.customer_id == ids["wang"])))
    with crm.unit_of_work() as uow:
        wang = crm.customers.get_in(uow, ids["wang"])
        steps = survey_erase(uow=uow, customer=wang, merged_ids=[])
    assert steps is not None
    by_table = {s.table: s for s in steps}
    assert (by_table["survey_invitations"].deleted,
            by_table["survey_invitations"].anonymised) == (1, 2)
    assert by_table["survey_answers"].anonymised == 2 + 1  # his two, li's redacted comment
    assert by_table["survey_scores"].retained == 8 and by_table["survey_scores"].basis

    assert [r for r in rows_of(crm) if holds_person(r)] == []
    # the scores are what they were: every answer still counts, L3 per respondent
    assert scores(crm, period="all") == before_scores
    assert drivers(crm) == before_drivers
    with crm.unit_of_work() as uow:
        s = uow.session
        kept = s.scalars(select(SurveyAnswer).where(SurveyAnswer.customer_id == ids["wang"])
                         .order_by(SurveyAnswer.id)).all()
        assert [a.answers for a in kept] == [
            {"nps": 3, "overall": 2, "repurchase": 3, "referral": 3},
            {"nps": 10, "overall": 5, "repurchase": 5, "referral": 5},
        ]
        assert all(a.case_id is None for a in kept)
        invitations = s.scalars(select(SurveyInvitation).where(
            SurveyInvitation.customer_id == ids["wang"])).all()
        assert all(i.status == "answered" and i.unit is None and i.detail is None
                   and i.token not in tokens and i.dedupe_key == f"erased:{i.id}"
                   for i in invitations)
        li = s.scalars(select(SurveyAnswer).where(SurveyAnswer.customer_id == ids["li"])).one()
        assert li.answers["comment"] == "(redacted)" and li.answers["nps"] == 9
    # an old link answers nothing
    for token in tokens:
        with pytest.raises(RecrmError):
            answer(crm, token, checkin_values(10, 5, 5, 5), answered_at=ago(0))


def test_survey_erase_through_the_hook_facade(crm: CRM) -> None:
    """The facade the core calls: one (plugin, steps) pair, and a second round deletes
    nothing more (the dry run of the core runs exactly this)."""
    ids = panel(crm)
    for _ in range(2):
        with crm.unit_of_work() as uow:
            wang = crm.customers.get_in(uow, ids["wang"])
            [(plugin, steps)] = crm.hooks.customer_erase(uow, wang, [])
        assert plugin == "survey"
    assert sum(s.deleted for s in steps) == 0
    assert [r for r in rows_of(crm) if holds_person(r)] == []


def test_survey_erase_follows_merged_records(crm: CRM) -> None:
    a = customer(crm, MOBILE, NAME)
    b = customer(crm, "13912340000", NAME)
    answered(crm, b, utc(2025, 4, 2, 4), checkin_values(8, 4, 4, 4, comment=f"{NAME} here"))
    crm.customers.merge(a, b)
    before = scores(crm, period="all")
    with crm.unit_of_work() as uow:
        steps = survey_erase(uow=uow, customer=crm.customers.get_in(uow, a), merged_ids=[b])
    assert steps is not None
    assert [r for r in rows_of(crm) if holds_person(r)] == []
    assert scores(crm, period="all") == before


def test_survey_erase_of_a_stranger_touches_nothing(crm: CRM) -> None:
    panel(crm)
    rows = rows_of(crm)
    stranger = customer(crm, "13600003333", "陈晨")
    with crm.unit_of_work() as uow:
        steps = survey_erase(uow=uow, customer=crm.customers.get_in(uow, stranger),
                             merged_ids=[])
    assert steps is not None
    assert all(s.deleted == s.anonymised == s.retained == 0 for s in steps)
    assert rows_of(crm) == rows


def test_survey_erasure_through_the_core_passes_its_scan(crm: CRM) -> None:
    ids = panel(crm)
    before = scores(crm, period="all")
    assert crm.privacy.erase(ids["wang"], dry_run=True).verified
    assert len(rows_of(crm)) > 0 and any(holds_person(r) for r in rows_of(crm))
    done = crm.privacy.erase(ids["wang"])
    assert done.verified
    assert {s["table"] for s in done.steps if s["source"] == "survey"} == {
        "survey_invitations", "survey_answers", "survey_scores"}
    assert [r for r in rows_of(crm) if holds_person(r)] == []
    assert scores(crm, period="all") == before
