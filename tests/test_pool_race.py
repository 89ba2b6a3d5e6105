"""Consultants at several desks claiming from the public pool at the same moment.

Each worker is its own process with its own CRM (engine, connections), released
together by a barrier: of the claims on one pooled customer exactly one wins (the
database decides, on the guarded ``UPDATE ... WHERE owner_staff IS NULL``) and every
other is refused naming the winner; one consultant's claims on several customers at
once never take them past ``pool.max_owned``.
"""

from __future__ import annotations

from recrm_core import CRM, Refused
from recrm_core.testing import StartLine, run_together

WORKERS = 4
ROUNDS = 3


def _claim_worker(url: str, settings: dict[str, object], claims: list[tuple[int, str]],
                  start: StartLine) -> list[str]:
    crm = CRM(database_url=url, settings=settings)
    outcomes: list[str] = []
    try:
        # Warm up (connections, compiled statements), so the claims meet at the start line
        # with nothing left to do but race.
        crm.pool.list("XL2")
        for customer_id, staff in claims:
            start.wait()
            try:
                crm.pool.claim(customer_id, "XL2", staff)
                outcomes.append(f"won {customer_id} {staff}")
            except Refused as exc:
                outcomes.append(f"refused {customer_id} {staff}: {exc}")
        return outcomes
    finally:
        crm.close()


def _pooled(crm: CRM, n: int) -> list[int]:
    ids = [crm.customers.add({"mobile": f"1391234{i:04d}", "project": "XL2",
                              "owner_staff": "gone"}).customer.id for i in range(n)]
    crm.pool.release_staff("gone")
    return ids


def test_one_claim_wins_each_pooled_customer(crm: CRM, recrm_database_url: str) -> None:
    ids = _pooled(crm, ROUNDS)
    plan = [[(cid, f"s{w}") for cid in ids] for w in range(WORKERS)]
    results = run_together(_claim_worker, [(recrm_database_url, {}, plan[w])
                                           for w in range(WORKERS)])
    outcomes = [o for worker in results for o in worker]
    for cid in ids:
        won = [o for o in outcomes if o.startswith(f"won {cid} ")]
        lost = [o for o in outcomes if o.startswith(f"refused {cid} ")]
        assert len(won) == 1 and len(lost) == WORKERS - 1, outcomes
        winner = won[0].split()[-1]
        assert all(f"not in the pool: {winner} has it" in o for o in lost), lost
        link = crm.customers.get(cid).projects[0]
        assert link.owner_staff == winner
        claims = [e for e in crm.pool.history(cid) if e.action == "claimed"]
        assert [e.staff for e in claims] == [winner]


def test_one_consultant_claiming_at_once_stays_within_max_owned(
        crm: CRM, recrm_database_url: str) -> None:
    ids = _pooled(crm, WORKERS)
    settings = {"pool": {"max_owned": 2}}
    results = run_together(_claim_worker, [(recrm_database_url, settings, [(cid, "li")])
                                           for cid in ids])
    outcomes = [o for worker in results for o in worker]
    assert sum(o.startswith("won") for o in outcomes) == 2, outcomes
    assert all("li already owns 2 customers at XL2" in o
               for o in outcomes if o.startswith("refused")), outcomes
    owned = [c for c in ids if crm.customers.get(c).projects[0].owner_staff == "li"]
    assert len(owned) == 2
    assert crm.pool.report()[0].claimed == 2
