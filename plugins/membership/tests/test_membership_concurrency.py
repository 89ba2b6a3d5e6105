"""The two guarantees under concurrent writers: an event never awards twice, and a
balance never goes negative.

Writers are released together by a barrier, each with its own CRM (own engine and
connections): first threads, then separate processes, on SQLite and PostgreSQL.
On PostgreSQL the member row lock (``SELECT ... FOR UPDATE``) and the UNIQUE award
key decide; on SQLite ``BEGIN IMMEDIATE`` serialises the writers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from membership_helpers import club, customer, ledger, owner
from recrm_membership import service
from recrm_membership.service import ReferralBatch

from recrm_core import CRM, Refused
from recrm_core.testing import StartLine, run_together

pytestmark = pytest.mark.recrm_plugins("membership")

ROUNDS = 5


def race(crms: list[CRM], action: Callable[[CRM, int], str], rounds: int) -> list[list[str]]:
    """Run ``action(crm, round)`` in one thread per CRM, all released together each
    round; returns each thread's outcomes."""
    barrier = threading.Barrier(len(crms))
    outcomes: list[list[str]] = [[] for _ in crms]
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait(timeout=60)
                outcomes[i].append(action(crms[i], r))
        except BaseException as exc:  # surfaced below: a thread's failure fails the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(crms))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert not errors, errors
    return outcomes


def redeem_700(crm: CRM, customer_id: int) -> str:
    try:
        service(crm).redeem(customer_id, 700, reason="兑换家电")
    except Refused:
        return "refused"
    return "redeemed"


def earn_event(crm: CRM, customer_id: int, ref: str) -> str:
    return "awarded" if service(crm).earn(customer_id, "event", ref).awarded else "duplicate"


def members_with_1000(crm: CRM, n: int) -> list[int]:
    ids = []
    for i in range(n):
        c = owner(crm, f"1381234{i:04d}", unit=f"1-1-{i:02d}01")
        service(crm).earn(c.id, "gift", "welcome", points=1000)
        ids.append(c.id)
    return ids


def test_two_redeemers_never_overdraw(crm: CRM, crm_factory: Callable[..., CRM]) -> None:
    ids = members_with_1000(crm, ROUNDS)
    writers = [crm_factory(plugins=["membership"]) for _ in range(2)]
    outcomes = race(writers, lambda w, r: redeem_700(w, ids[r]), ROUNDS)
    for r in range(ROUNDS):
        assert sorted(o[r] for o in outcomes) == ["redeemed", "refused"]
        assert club(crm).balance(ids[r]).balance == 300


def test_two_writers_award_an_event_once(crm: CRM, crm_factory: Callable[..., CRM]) -> None:
    [cid] = members_with_1000(crm, 1)
    writers = [crm_factory(plugins=["membership"]) for _ in range(2)]
    outcomes = race(writers, lambda w, r: earn_event(w, cid, f"owners-day-{r}"), ROUNDS)
    for r in range(ROUNDS):
        assert sorted(o[r] for o in outcomes) == ["awarded", "duplicate"]
    assert club(crm).balance(cid).balance == 1000 + ROUNDS * 50


def test_the_same_contract_from_two_offices_awards_once(
    crm: CRM, crm_factory: Callable[..., CRM]
) -> None:
    members = [owner(crm, f"1391234{i:04d}", unit=f"2-1-{i:02d}01") for i in range(ROUNDS)]
    for m in members:
        crm.customers.set_stage(m.id, "visitor", "YH1")
    writers = [crm_factory(plugins=["membership"]) for _ in range(2)]

    def record(w: CRM, r: int) -> str:
        w.customers.set_stage(members[r].id, "buyer", "YH1", unit="8-8-0808")
        return "done"

    race(writers, record, ROUNDS)
    for m in members:
        awards = [p for cid, kind, p, _ in ledger(crm) if cid == m.id and kind == "earn"]
        assert awards == [1000]


# -- separate processes ------------------------------------------------------------------------


def _process(url: str, op: str, ids: list[int], start: StartLine) -> list[str]:
    """One writer process: its own interpreter, CRM, engine and connections."""
    outcomes: list[str] = []
    with CRM(database_url=url, plugins=["membership"]) as crm:
        for r, cid in enumerate(ids):
            start.wait()
            outcomes.append(redeem_700(crm, cid) if op == "redeem"
                            else earn_event(crm, cid, f"gala-{r}"))
    return outcomes


def run_processes(url: str, op: str, ids: list[int]) -> list[list[str]]:
    return run_together(_process, [(url, op, ids)] * 2)


def test_two_processes_never_overdraw(crm: CRM, recrm_database_url: str) -> None:
    ids = members_with_1000(crm, ROUNDS)
    outcomes = run_processes(recrm_database_url, "redeem", ids)
    for r, cid in enumerate(ids):
        assert sorted(o[r] for o in outcomes) == ["redeemed", "refused"]
        assert club(crm).balance(cid).balance == 300
    assert all(club(crm).balance(cid).balance >= 0 for cid in ids)


def test_two_processes_award_an_event_once(crm: CRM, recrm_database_url: str) -> None:
    c = customer(crm, "13712345678")
    club(crm).enroll(c.id)
    outcomes = run_processes(recrm_database_url, "earn", [c.id] * ROUNDS)
    for r in range(ROUNDS):
        assert sorted(o[r] for o in outcomes) == ["awarded", "duplicate"]
    assert [p for _, _, p, _ in ledger(crm)] == [50] * ROUNDS


def _refer_process(url: str, referrer: int, friends: list[int], start: StartLine) -> list[str]:
    """A writer process referring each of ``friends`` for XL2 as a ReferralBatch of its
    own, released with the other writer (another referrer) each round."""
    outcomes: list[str] = []
    with CRM(database_url=url, plugins=["membership"]) as crm:
        for friend in friends:
            start.wait()
            try:
                with crm.unit_of_work() as uow:
                    batch = ReferralBatch(uow, "XL2", referrers=[referrer],
                                          referred=[friend])
                    batch.add(referrer, friend)
                    batch.write()
                outcomes.append("referred")
            except Refused:
                outcomes.append("refused")
    return outcomes


def test_two_processes_refer_a_customer_once(crm: CRM, recrm_database_url: str) -> None:
    # Two referrers (so neither waits for the other's member lock) refer the same
    # friend at once: each batch reads no referral of theirs, and the live referrals'
    # unique index decides at the write; the loser is refused, nothing of it written.
    referrers = [owner(crm, f"1381234{i:04d}", unit=f"1-1-{i:02d}01").id for i in range(2)]
    friends = [customer(crm, f"1371234{i:04d}").id for i in range(ROUNDS)]
    outcomes = run_together(_refer_process, [(recrm_database_url, referrer, friends)
                                             for referrer in referrers])
    for r in range(ROUNDS):
        assert sorted(o[r] for o in outcomes) == ["referred", "refused"]
    made = club(crm).referrals()
    assert sorted(r.referred_id for r in made) == friends
