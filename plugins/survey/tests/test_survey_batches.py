"""The batch paths: ``recrm_stages_changed`` (a batch of handovers) gives the same
check-ins as the same changes one at a time, and ``answer_many`` records what
``answer`` would, all or none; the counts the demo's summary reads."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from recrm_survey import AnswerItem, answer, answer_many, answers, invitations, service
from recrm_survey.service import loop_cases, status_counts
from recrm_survey.tables import SurveyInvitation, SurveyScore
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from survey_testkit import ago, checkin_values, customer, owner

from recrm_core import CRM, Actor, InvalidInput, NotFound, Refused, upserting

pytestmark = pytest.mark.recrm_plugins("survey")

HANDED = ago(100)
PARTNER = Actor(staff_id="li.agency", role="partner")
#: when the other changes happened (fixed, so both runs compute the same due dates)
LATER = ago(60)


def _moves(cids: list[int]) -> list[tuple[int, str, str, dict[str, Any]]]:
    """Stage changes of five customers: a back-dated handover; one without consent;
    buyer then owner (two changes of one customer), then a second project; owner,
    forced back and owner again (idempotent); a step that schedules nothing."""
    a, b, c, d, e = cids
    moves: list[tuple[int, str, str, dict[str, Any]]] = [
        (a, "owner", "XL2", {"unit": "1-101", "occurred_at": HANDED}),
        (b, "owner", "XL2", {"unit": "1-102"}),
        (c, "buyer", "XL2", {"unit": "2-201", "amount": 2_000_000}),
        (c, "owner", "XL2", {"unit": "2-201"}),
        (d, "owner", "XL2", {"unit": "3-301", "occurred_at": HANDED}),
        (c, "owner", "YH1", {"unit": "8-2-301"}),
        (d, "buyer", "XL2", {"force": True}),
        (d, "owner", "XL2", {"unit": "3-301"}),
        (e, "buyer", "XL2", {"unit": "4-401", "amount": 1_000_000}),
    ]
    return [(cid, stage, project, {"occurred_at": LATER, **extra})
            for cid, stage, project, extra in moves]


def _customers(crm: CRM, prefix: str) -> list[int]:
    cids = [customer(crm, f"{prefix}{i:04d}") for i in range(5)]
    crm.consent.withdraw(cids[1], "sms", "surveys")
    return cids


def _schedule(crm: CRM, cids: list[int]) -> list[tuple[Any, ...]]:
    """The check-ins of ``cids``, by the customer's place in the list."""
    place = {cid: n for n, cid in enumerate(cids)}
    return sorted(
        (place[i.customer_id], i.project, i.unit, i.months_after, i.due_at, i.expires_at,
         i.survey, i.trigger, i.status)
        for i in invitations(crm) if i.customer_id in place
    )


def test_a_batch_of_stage_changes_schedules_as_one_at_a_time(crm: CRM) -> None:
    crm.projects.ensure("YH1")
    one_by_one = _customers(crm, "1381234")
    for cid, stage, project, extra in _moves(one_by_one):
        crm.customers.set_stage(cid, stage, project, **extra)
    batched = _customers(crm, "1391234")
    with crm.unit_of_work() as uow, crm.hooks.batched(uow):
        for cid, stage, project, extra in _moves(batched):
            crm.customers.set_stage_in(uow, cid, stage, project, **extra)
    expected = _schedule(crm, one_by_one)
    assert _schedule(crm, batched) == expected
    # a: 4, b: none (consent), c: 4 at XL2 and 4 at YH1, d: 4 once, e: none
    assert [n for n, *_ in expected] == [0] * 4 + [2] * 8 + [3] * 4
    # in id order, as the changes came (the demo answers in id order)
    place = {cid: n for n, cid in enumerate(batched)}
    made = [(place[i.customer_id], i.project, i.months_after)
            for i in sorted(invitations(crm), key=lambda i: i.id) if i.customer_id in place]
    assert made == [(0, "XL2", m) for m in (3, 11, 23, 35)] + [
        (2, "XL2", m) for m in (3, 11, 23, 35)] + [(3, "XL2", m) for m in (3, 11, 23, 35)] + [
        (2, "YH1", m) for m in (3, 11, 23, 35)]


def test_a_batch_that_schedules_nothing_reads_nothing(crm: CRM) -> None:
    cid = customer(crm, "13812345678")
    with crm.unit_of_work() as uow, crm.hooks.batched(uow):
        crm.customers.set_stage_in(uow, cid, "visitor", "XL2")
        crm.customers.set_stage_in(uow, cid, "buyer", "XL2", unit="1-101", amount=1)
    assert invitations(crm) == []


# -- answer_many -------------------------------------------------------------------------------


def _due_checkins(crm: CRM, n: int, prefix: str) -> list[int]:
    ids = []
    for i in range(n):
        cid = owner(crm, f"{prefix}{i:04d}", unit=f"1-{i}", handed_over=ago(100))
        [inv] = [i for i in invitations(crm, customer_id=cid) if i.months_after == 3]
        ids.append(inv.id)
    return ids


VALUES = [checkin_values(9, 5, 4, 5, quality=4), checkin_values(2, 1, 2, 1, comment="漏水"),
          checkin_values(7, 4, 4, 4)]


def _stored(crm: CRM, ids: list[int]) -> list[tuple[Any, ...]]:
    place = {inv: n for n, inv in enumerate(ids)}
    with crm.unit_of_work(readonly=True) as uow:
        scores = {a: n for a, n in uow.session.execute(
            select(SurveyScore.answer_id, func.count()).group_by(SurveyScore.answer_id))}
    return sorted((place[a.invitation_id], a.answers, a.project, a.case_id is not None,
                   scores.get(a.id, 0), a.answered_at)
                  for a in answers(crm) if a.invitation_id in place)


def test_answer_many_records_what_answer_would(crm: CRM) -> None:
    at = ago(1).replace(microsecond=0)
    singles = _due_checkins(crm, 3, "1381234")
    for inv, values in zip(singles, VALUES, strict=True):
        answer(crm, inv, values, answered_at=at)
    batch = _due_checkins(crm, 3, "1391234")
    found = answer_many(crm, [AnswerItem(inv, values, at)
                              for inv, values in zip(batch, VALUES, strict=True)])
    assert [a.invitation_id for a in found] == batch
    assert _stored(crm, batch) == _stored(crm, singles)
    # the detractor's case, linked both ways, with the answer's id in its description
    [unhappy] = [a for a in found if a.case_id is not None]
    assert unhappy.invitation_id == batch[1] and unhappy.case_id is not None
    case = crm.cases.get(unhappy.case_id)
    assert f"survey answer {unhappy.id} (invitation {batch[1]}" in (case.description or "")
    assert {i.id: i.status for i in invitations(crm) if i.id in batch} == dict.fromkeys(
        batch, "answered")


def test_answer_many_by_link_token(crm: CRM) -> None:
    [inv] = _due_checkins(crm, 1, "1381234")
    [token] = [i.token for i in invitations(crm) if i.id == inv]
    [found] = answer_many(crm, [AnswerItem(token, VALUES[0])])
    assert found.invitation_id == inv


@pytest.mark.parametrize(("bad", "error", "message"), [
    ("twice", Refused, "was answered already"),
    ("invalid", InvalidInput, "nps"),
    ("missing", NotFound, "no survey invitation 999999"),
    ("future", InvalidInput, "answered_at is in the future"),
])
def test_answer_many_is_all_or_none(crm: CRM, bad: str, error: type[Exception],
                                    message: str) -> None:
    first, second, third = _due_checkins(crm, 3, "1381234")
    items = [AnswerItem(first, VALUES[1]), AnswerItem(second, VALUES[0])]
    if bad == "twice":
        items.append(AnswerItem(first, VALUES[2]))
    elif bad == "invalid":
        items.append(AnswerItem(third, {"nps": 11}))
    elif bad == "missing":
        items.append(AnswerItem(999999, VALUES[0]))
    else:
        items.append(AnswerItem(third, VALUES[0], dt.datetime.now(dt.UTC) + dt.timedelta(days=1)))
    cases_before = len(crm.cases.list())
    with pytest.raises(error, match=message):
        answer_many(crm, items)
    assert answers(crm) == []
    assert len(crm.cases.list()) == cases_before  # the detractor's case rolled back
    assert {i.status for i in invitations(crm)
            if i.id in (first, second, third)} == {"pending"}


def test_answer_many_of_nothing(crm: CRM) -> None:
    assert answer_many(crm, []) == []


# -- the demo's counts -------------------------------------------------------------------------


def test_status_counts_and_loop_cases(crm: CRM) -> None:
    first, second, third = _due_checkins(crm, 3, "1381234")
    at = ago(2)
    answer_many(crm, [AnswerItem(first, VALUES[1], at), AnswerItem(second, VALUES[0]),
                      AnswerItem(third, VALUES[1])])
    assert status_counts(crm) == {"pending": 9, "answered": 3}
    assert status_counts(crm, actor=PARTNER) == status_counts(crm)  # an aggregate
    opened = [(a.case_id, a.answered_at) for a in answers(crm) if a.case_id is not None]
    assert loop_cases(crm) == opened and len(opened) == 2 and opened[0][1] == at
    with pytest.raises(Refused, match="see survey answers"):
        loop_cases(crm, actor=PARTNER)


# -- invitations in one executemany ----------------------------------------------------------


@pytest.mark.parametrize("path", ["per_row", "executemany"])
def test_many_handovers_insert_each_key_once(crm: CRM, monkeypatch: pytest.MonkeyPatch,
                                             path: str) -> None:
    # The invitations go through the core's insert_or_ignore_many (its race and
    # repeated-key rules are tested in tests/test_upsert.py): the same outcome whether
    # it writes the batch row by row or as one statement.
    known, twice, new = (customer(crm, f"1381234{i:04d}") for i in range(3))
    crm.customers.set_stage(known, "owner", "XL2", unit="1-101", occurred_at=HANDED)
    before = {i.id for i in invitations(crm)}
    one_by_one: list[str] = []
    single = upserting.insert_or_ignore

    def counted(session: Session, table: Any, values: dict[str, Any], **kw: Any) -> Any:
        if table is SurveyInvitation:
            one_by_one.append(values["dedupe_key"])
        return single(session, table, values, **kw)

    monkeypatch.setattr(upserting, "insert_or_ignore", counted)
    monkeypatch.setattr(upserting, "FEW_ROWS", 100 if path == "per_row" else 2)
    with crm.unit_of_work() as uow:
        result = service.schedule_handovers_in(uow, [
            service.Handover(known, "XL2", "1-101", HANDED),
            service.Handover(twice, "XL2", "2-201", LATER),
            service.Handover(new, "XL2", "3-301", LATER),
            service.Handover(twice, "XL2", "2-201", LATER),
        ])
    assert result is not None
    assert (result.invited, result.already, result.no_consent) == (8, 8, 0)
    assert len(one_by_one) == {"per_row": 16, "executemany": 0}[path]
    made = [i for i in invitations(crm) if i.id not in before]
    assert sorted(i.id for i in made) == result.invitation_ids
    assert sorted((i.customer_id, i.months_after) for i in made) == sorted(
        (cid, m) for cid in (twice, new) for m in (3, 11, 23, 35))
