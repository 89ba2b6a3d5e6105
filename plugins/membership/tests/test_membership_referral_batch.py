"""A batch of referrals (``ReferralBatch``): each checked as ``refer_in`` checks one,
against what was there and what the batch added before it; a few statements for the
lot, however many referrals; one written meanwhile refused at the write."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from membership_helpers import club, customer, owner, sign
from recrm_membership import ReferralRow
from recrm_membership.service import ReferralBatch, refer_in
from sqlalchemy import event, select

import recrm_core.rawsql as recrm_rawsql
from recrm_core import CRM, NotFound, Refused

pytestmark = pytest.mark.recrm_plugins("membership")


def _cast(crm: CRM) -> dict[str, int]:
    member = owner(crm, "13812345678")
    other = owner(crm, "13912345678", unit="1-1-102")
    left = owner(crm, "13712345679", unit="1-1-103")
    buyer = customer(crm, "13712345678")
    sign(crm, buyer.id, "XL2")
    club(crm).leave(left.id)
    people = {"member": member.id, "other": other.id, "left": left.id, "buyer": buyer.id,
              "stranger": customer(crm, "13512345678").id}
    people |= {f"friend{i}": customer(crm, f"1361234567{i}").id for i in range(4)}
    club(crm).refer(member.id, people["friend3"], "XL2")  # referred before the batch
    return people


#: (referrer, referred): what each asks, in order, and what the club answers
_ASKS = (
    ("member", "friend0", "pending"),
    ("member", "member", "customer {member} cannot refer themselves"),
    ("member", "other", "customer {other} already owns at XL2"),
    ("member", "buyer", "customer {buyer} already signed a contract at XL2"),
    ("stranger", "friend1", "customer {stranger} is not a member"),
    ("left", "friend1", "member WK00000003 (customer {left}) has left the club and cannot refer"),
    ("other", "friend3", "customer {friend3} was already referred for XL2 by customer {member}"),
    ("other", "friend1", "pending"),
    # referred earlier in the same batch
    ("member", "friend1", "customer {friend1} was already referred for XL2 by customer {other}"),
    ("other", "friend2", "pending"),
)


def _answers(ask: Any) -> list[str]:
    answers: list[str] = []
    for referrer, referred, _ in _ASKS:
        try:
            ask(referrer, referred)
            answers.append("pending")
        except (Refused, NotFound) as exc:
            answers.append(str(exc))
    return answers


def _referrals(crm: CRM) -> list[tuple[int, int, str, str]]:
    with crm.unit_of_work() as uow:
        return [(r.referrer_id, r.referred_id, r.project, r.status) for r in uow.session.scalars(
            select(ReferralRow).order_by(ReferralRow.id))]


def test_a_batch_answers_as_one_referral_at_a_time(crm: CRM) -> None:
    people = _cast(crm)
    expected = [answer.format(**people) for _, _, answer in _ASKS]
    with crm.unit_of_work() as uow:
        batch = ReferralBatch(uow, "XL2", referrers=[people[r] for r, _, _ in _ASKS],
                              referred=[people[r] for _, r, _ in _ASKS])
        assert _answers(lambda a, b: batch.add(people[a], people[b])) == expected
        made = batch.write()
    assert [(r.referrer_id, r.referred_id, r.status, r.reward_points) for r in made] == [
        (people["member"], people["friend0"], "pending", 0),
        (people["other"], people["friend1"], "pending", 0),
        (people["other"], people["friend2"], "pending", 0),
    ]
    assert [r.id for r in made] == [r.id for r in club(crm).referrals()][1:]
    # A customer the batch was not told of at its start is read when added.
    friend = customer(crm, "13612345699").id
    with crm.unit_of_work() as uow:
        late = ReferralBatch(uow, "XL2")
        with pytest.raises(Refused, match="already referred for XL2"):
            late.add(people["member"], people["friend2"])
        late.add(people["member"], friend)
        assert [r.referred_id for r in late.write()] == [friend]


def test_one_referral_at_a_time_answers_the_same(crm: CRM) -> None:
    people = _cast(crm)
    expected = [answer.format(**people) for _, _, answer in _ASKS]

    def one(referrer: str, referred: str) -> None:
        with crm.unit_of_work() as uow:
            refer_in(uow, people[referrer], people[referred], "XL2")

    assert _answers(one) == expected
    assert [(a, b) for a, b, _, _ in _referrals(crm)] == [
        (people["member"], people["friend3"]), (people["member"], people["friend0"]),
        (people["other"], people["friend1"]), (people["other"], people["friend2"])]


@contextmanager
def _statements(crm: CRM) -> Iterator[list[str]]:
    """Every statement run inside the block, through SQLAlchemy or on the driver's
    cursor (the core's RawSelect)."""
    seen: list[str] = []
    run = recrm_rawsql._on_cursor

    def on_cursor(dbapi_connection: Any, sql: str, args: Any, fetch: bool) -> Any:
        seen.append(sql)
        return run(dbapi_connection, sql, args, fetch)

    def before(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.append(sql)

    recrm_rawsql._on_cursor = on_cursor
    event.listen(crm.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(crm.engine, "before_cursor_execute", before)
        recrm_rawsql._on_cursor = run


def test_a_batch_reads_and_writes_in_statements_not_per_referral(crm: CRM) -> None:
    members = [owner(crm, f"1381234560{i}", unit=f"1-1-10{i}").id for i in range(3)]
    friends = [customer(crm, f"136123456{i:02d}").id for i in range(24)]
    counts = []
    for part in (friends[:2], friends[2:]):
        with crm.unit_of_work() as uow, _statements(crm) as seen:
            batch = ReferralBatch(uow, "XL2", referrers=members, referred=part)
            for n, friend in enumerate(part):
                batch.add(members[n % 3], friend)
            assert len(batch.write()) == len(part)
        counts.append(len(seen))
    assert counts[1] == counts[0]  # 22 referrals cost what 2 cost
    assert len(_referrals(crm)) == 24


def test_a_referral_written_since_the_batch_read_is_refused_at_the_write(crm: CRM) -> None:
    member = owner(crm, "13812345678")
    other = owner(crm, "13912345678", unit="1-1-102")
    friends = [customer(crm, f"1361234567{i}").id for i in range(3)]
    with pytest.raises(Refused, match=f"customer {friends[1]} was already referred for XL2 "
                                      f"by customer {other.id}"), crm.unit_of_work() as uow:
        batch = ReferralBatch(uow, "XL2", referrers=[member.id], referred=friends)
        for friend in friends:
            batch.add(member.id, friend)
        # Another writer's referral, as if committed after the batch read (on
        # PostgreSQL the unique index makes a concurrent one wait and then fail).
        uow.session.add(ReferralRow(referrer_id=other.id, referred_id=friends[1],
                                    project="XL2", status="pending",
                                    created_at=member.created_at))
        uow.session.flush()
        batch.write()
    assert _referrals(crm) == []  # the operation rolled back whole
