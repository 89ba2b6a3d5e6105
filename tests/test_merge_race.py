"""Many processes merging overlapping pairs at once end with one survivor per group.

Each worker is its own process with its own CRM (engine, connections), as two staff
at two desks would be. Merges are released together by a barrier, in rounds, over
pairs that share customers and come in both orders (a→b beside b→a). Whatever the
interleaving, every attempted pair ends up as one customer: the survivors are
exactly one per connected group of the pairs, and every id resolves to its group's
survivor along ``merged_into`` without a loop.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from sqlalchemy import select

from recrm_core import CRM, Refused
from recrm_core.customers import resolve_id
from recrm_core.tables import CustomerRow
from recrm_core.testing import StartLine, run_together

WORKERS = 4
ROUNDS = 6
CUSTOMERS = 12


def _merge_worker(url: str, pairs: list[list[tuple[int, int]]], start: StartLine) -> list[str]:
    crm = CRM(database_url=url)
    outcomes = []
    try:
        for round_pairs in pairs:
            start.wait()
            for a, b in round_pairs:
                try:
                    crm.customers.merge(a, b)
                    outcomes.append("merged")
                except Refused as exc:
                    outcomes.append(f"refused: {exc}")
        return outcomes
    finally:
        crm.close()


def _groups(pairs: list[tuple[int, int]], ids: list[int]) -> list[set[int]]:
    parent = {i: i for i in ids}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[int, set[int]] = {}
    for i in ids:
        groups.setdefault(find(i), set()).add(i)
    return list(groups.values())


@pytest.mark.parametrize("seed", [1, 2])
def test_concurrent_overlapping_merges_keep_one_survivor_per_group(
    crm: CRM, crm_factory: Callable[..., CRM], recrm_database_url: str, seed: int
) -> None:
    ids = [crm.customers.add({"mobile": f"1391234{i:04d}", "name": f"客户{i}"}).customer.id
           for i in range(CUSTOMERS)]
    rng = random.Random(seed)
    plan: list[list[list[tuple[int, int]]]] = [[] for _ in range(WORKERS)]
    attempted: list[tuple[int, int]] = []
    for _ in range(ROUNDS):
        a, b = rng.sample(ids, 2)
        c = rng.choice([x for x in ids if x not in (a, b)])
        # The same pair in both orders, and an overlapping pair, at the same moment.
        shapes = [(a, b), (b, a), (b, c), (c, a)]
        for w in range(WORKERS):
            plan[w].append([shapes[w % len(shapes)]])
        attempted.extend(shapes[:WORKERS])
    results = run_together(_merge_worker, [(recrm_database_url, plan[w]) for w in range(WORKERS)])
    for outcomes in results:
        for o in outcomes:
            assert o == "merged" or "already" in o, o

    groups = _groups(attempted, ids)
    with crm.unit_of_work() as uow:
        rows = {r.id: r.merged_into for r in uow.session.scalars(select(CustomerRow))}
        survivors = {i for i, into in rows.items() if into is None}
        assert len(survivors) == len(groups), (rows, groups)
        for group in groups:
            alive = group & survivors
            assert len(alive) == 1, (group, rows)
            (survivor,) = alive
            for i in group:
                assert resolve_id(uow.session, i) == survivor
        # No loop, no self-reference, chains are one step long.
        for i, into in rows.items():
            assert into != i
            if into is not None:
                assert rows[into] is None, (i, into, rows)


def test_a_row_cannot_point_to_itself(crm: CRM) -> None:
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    cid = crm.customers.add({"mobile": "13912340001"}).customer.id
    with pytest.raises(IntegrityError), crm.unit_of_work() as uow:
        uow.session.execute(update(CustomerRow).where(CustomerRow.id == cid)
                            .values(merged_into=cid))


def test_merging_what_is_already_merged_says_into_whom(crm: CRM) -> None:
    a = crm.customers.add({"mobile": "13912340001"}).customer.id
    b = crm.customers.add({"mobile": "13912340002"}).customer.id
    crm.customers.merge(a, b)
    with pytest.raises(Refused, match=f"customer {b} is already merged into {a}"):
        crm.customers.merge(a, b)
    with pytest.raises(Refused, match=f"customer {b} is already merged into {a}"):
        crm.customers.merge(b, a)
    with pytest.raises(Refused, match="into itself"):
        crm.customers.merge(a, a)
