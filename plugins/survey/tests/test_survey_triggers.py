"""Triggers (case closed, handover, yearly), consent, due dates and expiry,
merge, timeline and segment fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from recrm_survey import answer, due, invitations, invite, trigger_yearly
from recrm_survey.service import add_months
from survey_testkit import ago, checkin_values, customer, owner, utc

from recrm_core import CRM, NotFound, PluginError, Refused, hookimpl, utcnow

pytestmark = pytest.mark.recrm_plugins("survey")

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def closed_case(crm: CRM, customer_id: int, project: str | None = "XL2") -> int:
    case = crm.cases.open({"customer_id": customer_id, "category": "repair",
                           "subject": "厨房漏水", "project": project})
    crm.cases.resolve(case.id)
    crm.cases.close(case.id)
    return case.id


# -- case closed -> CSAT -----------------------------------------------------------------------


def test_closing_a_case_invites_to_csat(crm: CRM) -> None:
    cid = customer(crm, "13812345678")
    case = crm.cases.open({"customer_id": cid, "category": "repair", "subject": "漏水",
                           "project": "XL2"})
    crm.cases.resolve(case.id)
    assert invitations(crm) == []  # resolved is not closed
    closed = crm.cases.close(case.id)
    [inv] = invitations(crm)
    assert (inv.survey, inv.trigger, inv.customer_id, inv.case_id, inv.project, inv.status) == (
        "csat", "case", cid, case.id, "XL2", "pending")
    assert closed.closed_at is not None
    assert inv.due_at == closed.closed_at  # invitation_due_days = 0
    assert inv.expires_at == inv.due_at + dt.timedelta(days=30)


def test_one_csat_per_case_even_when_closed_twice(crm: CRM) -> None:
    cid = customer(crm, "13812345678")
    case_id = closed_case(crm, cid)
    crm.cases.reopen(case_id)
    crm.cases.resolve(case_id)
    crm.cases.close(case_id)
    assert len(invitations(crm)) == 1


@pytest.mark.recrm_settings(survey={"invitation_due_days": 2, "invitation_expiry_days": 7})
def test_due_and_expiry_days_come_from_settings(crm: CRM) -> None:
    cid = customer(crm, "13812345678")
    case_id = closed_case(crm, cid)
    [inv] = invitations(crm)
    closed_at = crm.cases.get(case_id).closed_at
    assert closed_at is not None
    assert inv.due_at == closed_at + dt.timedelta(days=2)
    assert inv.expires_at == inv.due_at + dt.timedelta(days=7)
    assert due(crm) == []  # not yet
    assert [i.id for i in due(crm, now=inv.due_at)] == [inv.id]
    assert due(crm, now=inv.expires_at) == []  # expired


@pytest.mark.recrm_settings(survey={"csat_survey": None})
def test_csat_can_be_switched_off(crm: CRM) -> None:
    closed_case(crm, customer(crm, "13812345678"))
    assert invitations(crm) == []


@pytest.mark.recrm_settings(survey={"csat_survey": "service_check", "definitions": {
    "service_check": {"title": "维修回访", "questions": [
        {"id": "ok", "type": "rating", "text": "满意吗", "role": "overall_satisfaction"}]}}})
def test_a_configured_survey_for_a_trigger(crm: CRM) -> None:
    closed_case(crm, customer(crm, "13812345678"))
    [inv] = invitations(crm)
    assert inv.survey == "service_check"


def test_csat_rolls_back_with_the_case_transition(crm: CRM,
                                                  register_plugin: Callable[..., str]) -> None:
    cid = customer(crm, "13812345678")
    case = crm.cases.open({"customer_id": cid, "category": "repair", "subject": "漏水"})
    crm.cases.resolve(case.id)

    class NoClosing:
        @hookimpl(trylast=True)
        def recrm_case_status_changed(self, new_status: str) -> None:
            if new_status == "closed":
                raise RuntimeError("supervisor must close")

    register_plugin(NoClosing(), name="noclosing")
    with pytest.raises(PluginError, match="noclosing"):
        crm.cases.close(case.id)
    assert crm.cases.get(case.id).status == "resolved"
    assert invitations(crm) == []  # written in the same transaction, rolled back


# -- handover -> check-ins -----------------------------------------------------------------------


def test_handover_schedules_checkins(crm: CRM) -> None:
    handed = dt.datetime(2025, 3, 10, 10, 0, tzinfo=SHANGHAI)
    cid = owner(crm, "13812345678", project="XL2", unit="3-1-1201", handed_over=handed)
    found = invitations(crm)
    assert [i.months_after for i in found] == [3, 11, 23, 35]
    assert {(i.survey, i.trigger, i.project, i.unit, i.customer_id) for i in found} == {
        ("handover_checkin", "handover", "XL2", "3-1-1201", cid)}
    # due at the same local day and time, months later (from the handover, not now)
    assert [i.due_at.astimezone(SHANGHAI) for i in found] == [
        dt.datetime(2025, 6, 10, 10, 0, tzinfo=SHANGHAI),
        dt.datetime(2026, 2, 10, 10, 0, tzinfo=SHANGHAI),
        dt.datetime(2027, 2, 10, 10, 0, tzinfo=SHANGHAI),
        dt.datetime(2028, 2, 10, 10, 0, tzinfo=SHANGHAI),
    ]


def test_months_are_calendar_months_clamped_to_the_month_end(crm: CRM) -> None:
    # 30 Nov + 3 months is 28 Feb (no 30 Feb), in the business time zone: in UTC the
    # handover is still 29 Nov.
    at = dt.datetime(2024, 11, 30, 1, 0, tzinfo=SHANGHAI)
    assert add_months(at, 3, crm).astimezone(SHANGHAI) == dt.datetime(
        2025, 2, 28, 1, 0, tzinfo=SHANGHAI)
    assert add_months(at, 15, crm).astimezone(SHANGHAI) == dt.datetime(
        2026, 2, 28, 1, 0, tzinfo=SHANGHAI)
    leap = dt.datetime(2023, 11, 30, 12, 0, tzinfo=SHANGHAI)
    assert add_months(leap, 3, crm).astimezone(SHANGHAI).date() == dt.date(2024, 2, 29)


def test_only_the_step_to_owner_schedules(crm: CRM) -> None:
    cid = customer(crm, "13812345678")
    crm.customers.set_stage(cid, "buyer", "XL2", unit="1-101", amount=2_000_000)
    assert invitations(crm) == []
    crm.customers.set_stage(cid, "owner", "XL2", unit="1-101")
    assert len(invitations(crm)) == 4
    # a forced step back and forward again schedules nothing twice
    crm.customers.set_stage(cid, "buyer", "XL2", force=True)
    crm.customers.set_stage(cid, "owner", "XL2", unit="1-101")
    assert len(invitations(crm)) == 4
    # a handover at a second project has its own schedule
    crm.customers.set_stage(cid, "owner", "YH1", unit="8-2-301")
    assert {i.project for i in invitations(crm)} == {"XL2", "YH1"}
    assert len(invitations(crm)) == 8


@pytest.mark.recrm_settings(survey={"handover_schedule_months": [18, 6]})
def test_schedule_comes_from_settings(crm: CRM) -> None:
    owner(crm, "13812345678")
    assert [i.months_after for i in invitations(crm)] == [6, 18]


@pytest.mark.recrm_settings(survey={"handover_schedule_months": []})
def test_empty_schedule_means_no_checkins(crm: CRM) -> None:
    owner(crm, "13812345678")
    assert invitations(crm) == []


def test_checkins_roll_back_with_the_handover(crm: CRM,
                                              register_plugin: Callable[..., str]) -> None:
    cid = customer(crm, "13812345678")

    class Refuse:
        @hookimpl(trylast=True)
        def recrm_stage_changed(self) -> None:
            raise RuntimeError("keys not ready")

    register_plugin(Refuse(), name="refuse")
    with pytest.raises(PluginError, match="refuse"):
        crm.customers.set_stage(cid, "owner", "XL2")
    assert invitations(crm) == []
    assert crm.customers.get(cid).stage == "prospect"


def test_a_back_dated_handover_has_due_checkins(crm: CRM) -> None:
    owner(crm, "13812345678", handed_over=ago(100))
    [first] = due(crm)
    assert first.months_after == 3
    assert first.due_at < utcnow() < first.expires_at


# -- consent -----------------------------------------------------------------------------------


def test_withdrawn_consent_means_no_invitation(crm: CRM) -> None:
    cid = customer(crm, "13812345678")
    crm.consent.withdraw(cid, "sms", "surveys")
    crm.customers.set_stage(cid, "owner", "XL2")
    closed_case(crm, cid)
    assert invitations(crm) == []
    with pytest.raises(Refused, match="does not consent to surveys by sms"):
        invite(crm, cid, "csat")


def test_the_newest_record_for_the_invitation_channel_decides(crm: CRM) -> None:
    again = customer(crm, "13812345678")
    crm.consent.withdraw(again, "sms", "surveys")
    crm.consent.grant(again, "sms", "surveys")  # changed their mind
    other_channel = customer(crm, "13912345678")
    crm.consent.withdraw(other_channel, "email", "surveys")  # invitations go by sms
    marketing = customer(crm, "13712345678")
    crm.consent.withdraw(marketing, "sms", "marketing")  # surveys are another purpose
    for cid in (again, other_channel, marketing):
        closed_case(crm, cid)
    assert sorted(i.customer_id for i in invitations(crm)) == [again, other_channel, marketing]


@pytest.mark.recrm_settings(survey={"channel": "email"})
def test_the_channel_setting_picks_the_consent_record(crm: CRM) -> None:
    cid = customer(crm, "13812345678", email="wang@example.com")
    crm.consent.withdraw(cid, "email", "surveys")
    closed_case(crm, cid)
    assert invitations(crm) == []


def test_no_record_is_legitimate_interest_by_default(crm: CRM) -> None:
    closed_case(crm, customer(crm, "13812345678"))
    assert len(invitations(crm)) == 1


@pytest.mark.recrm_settings(survey={"require_opt_in": True})
def test_require_opt_in(crm: CRM) -> None:
    silent = customer(crm, "13812345678")
    opted_in = customer(crm, "13912345678")
    crm.consent.grant(opted_in, "sms", "surveys")
    closed_case(crm, silent)
    closed_case(crm, opted_in)
    assert [i.customer_id for i in invitations(crm)] == [opted_in]
    result = trigger_yearly(crm)
    assert (result.invited, result.no_consent) == (0, 0)  # nobody is an owner yet


@pytest.mark.recrm_settings(survey={"require_opt_in": True})
def test_yearly_with_require_opt_in_invites_only_granting_owners(crm: CRM) -> None:
    silent = owner(crm, "13812345678")
    opted_in = owner(crm, "13912345678")
    crm.consent.grant(opted_in, "sms", "surveys")
    changed_mind = owner(crm, "13712345678")
    crm.consent.grant(changed_mind, "sms", "surveys")
    crm.consent.withdraw(changed_mind, "sms", "surveys")
    by_email = owner(crm, "13612345678")
    crm.consent.grant(by_email, "email", "surveys")  # invitations go by sms
    result = trigger_yearly(crm)
    assert (result.invited, result.already, result.no_consent) == (1, 0, 3)
    assert [i.customer_id for i in invitations(crm, survey="yearly")] == [opted_in]
    assert silent not in {i.customer_id for i in invitations(crm)}


def test_yearly_the_newest_record_for_the_channel_decides(crm: CRM) -> None:
    back = owner(crm, "13812345678")
    crm.consent.withdraw(back, "sms", "surveys")
    crm.consent.grant(back, "sms", "surveys")  # changed their mind
    gone = owner(crm, "13912345678")
    crm.consent.grant(gone, "sms", "surveys")
    crm.consent.withdraw(gone, "sms", "surveys")
    other_channel = owner(crm, "13712345678")
    crm.consent.withdraw(other_channel, "email", "surveys")
    marketing = owner(crm, "13612345678")
    crm.consent.withdraw(marketing, "sms", "marketing")
    result = trigger_yearly(crm)
    assert (result.invited, result.already, result.no_consent) == (3, 0, 1)
    assert sorted(i.customer_id for i in invitations(crm, survey="yearly")) == sorted(
        [back, other_channel, marketing])


# -- yearly --------------------------------------------------------------------------------------


def test_yearly_invites_every_owner_once_a_year(crm: CRM) -> None:
    a = owner(crm, "13812345678", project="XL2")
    b = owner(crm, "13912345678", project="YH1")
    customer(crm, "13712345678")  # a prospect: not an owner
    visitor = customer(crm, "13612345678")
    crm.customers.set_stage(visitor, "visitor", "XL2")
    withdrawn = owner(crm, "13512345678")
    crm.consent.withdraw(withdrawn, "sms", "surveys")
    now = utc(2025, 6, 1, 2)
    first = trigger_yearly(crm, now=now)
    assert (first.survey, first.invited, first.already, first.no_consent) == ("yearly", 2, 0, 1)
    yearly = invitations(crm, survey="yearly")
    assert {(i.customer_id, i.project, i.year, i.due_at) for i in yearly} == {
        (a, "XL2", 2025, now), (b, "YH1", 2025, now)}
    again = trigger_yearly(crm, now=now + dt.timedelta(days=100))
    assert (again.invited, again.already) == (0, 2)
    next_year = trigger_yearly(crm, year=2026, now=now)
    assert next_year.invited == 2
    assert len(invitations(crm, survey="yearly")) == 4


def test_yearly_picks_the_newest_owned_project(crm: CRM) -> None:
    cid = owner(crm, "13812345678", project="XL2")
    crm.customers.set_stage(cid, "owner", "YH1")
    trigger_yearly(crm)
    [inv] = invitations(crm, survey="yearly")
    assert inv.project == "YH1"


@pytest.mark.recrm_settings(survey={"yearly_survey": None})
def test_yearly_switched_off(crm: CRM) -> None:
    with pytest.raises(Refused, match="switched off"):
        trigger_yearly(crm)
    owner(crm, "13812345678")
    assert trigger_yearly(crm, survey="csat").invited == 1  # an explicit survey still works


def test_unknown_survey(crm: CRM) -> None:
    cid = customer(crm, "13812345678")
    with pytest.raises(NotFound, match="no survey 'nope'"):
        trigger_yearly(crm, survey="nope")
    with pytest.raises(NotFound, match="no survey 'nope'"):
        invite(crm, cid, "nope")
    with pytest.raises(NotFound, match="no such project 'ZZ'"):
        invite(crm, cid, "csat", project="ZZ")
    with pytest.raises(NotFound):
        invite(crm, 999, "csat")


# -- merge, timeline, segments -------------------------------------------------------------------


def test_merge_moves_invitations_and_answers(crm: CRM) -> None:
    keep = owner(crm, "13812345678", handed_over=ago(100))
    dup = owner(crm, "13912345678", handed_over=ago(100), project="YH1")
    trigger_yearly(crm)
    [dup_due] = [i for i in due(crm) if i.customer_id == dup and i.trigger == "handover"]
    answer(crm, dup_due.id, checkin_values(9, 5, 5, 5))
    crm.customers.merge(keep, dup)
    assert {i.customer_id for i in invitations(crm)} == {keep}
    from recrm_survey import answers

    assert [a.customer_id for a in answers(crm)] == [keep]
    # the survivor now holds a yearly invitation for this year from each side; a
    # re-run invites nobody again
    assert trigger_yearly(crm).invited == 0


def test_timeline_shows_invitations_and_answers(crm: CRM) -> None:
    cid = owner(crm, "13812345678", handed_over=ago(100), name="王伟")
    [inv] = due(crm)
    answer(crm, inv.id, checkin_values(3, 2, 2, 2, comment="漏水"))
    timeline = crm.customers.view(cid).timeline
    mine = [e for e in timeline if e.source == "survey"]
    assert sorted(e.kind for e in mine) == ["survey_answer"] + ["survey_invitation"] * 4
    [entry] = [e for e in mine if e.kind == "survey_answer"]
    assert entry.title == "answered 业主入住回访: NPS 3, satisfaction 2/5"
    assert entry.data["invitation_id"] == inv.id and entry.data["case_id"] is not None
    assert entry.data["scores"]["nps"] == 3
    titles = {e.title for e in mine if e.kind == "survey_invitation"}
    assert titles == {"survey invitation: 业主入住回访 (answered)",
                      "survey invitation: 业主入住回访 (pending)"}


def test_segment_fields(crm: CRM) -> None:
    promoter = owner(crm, "13812345678", handed_over=ago(340))
    detractor = owner(crm, "13912345678", handed_over=ago(100))
    customer(crm, "13712345678")  # never answered
    by_month = {i.months_after: i for i in invitations(crm, customer_id=promoter)}
    # the 3-month check-in, answered back then; the 11-month one is open now
    answer(crm, by_month[3].id, checkin_values(2, 1, 1, 1),
           answered_at=by_month[3].due_at + dt.timedelta(days=1))
    answer(crm, by_month[11].id, checkin_values(10, 5, 4, 5))  # newer: a promoter now
    [d] = [i for i in due(crm) if i.customer_id == detractor]
    answer(crm, d.id, checkin_values(6, 3, 3, 3))

    def count(field: str, op: str, value: object) -> int:
        return crm.segments.count({"field": field, "op": op, "value": value})

    assert count("survey.last_nps", "gte", 9) == 1
    assert count("survey.last_nps", "lte", 6) == 1
    assert count("survey.last_nps", "is_null", True) == 1
    assert count("survey.last_csat", "eq", 5) == 1
    assert count("survey.last_csat", "eq", 3) == 1
    assert count("survey.answers", "eq", 2) == 1
    assert count("survey.answers", "eq", 0) == 1
