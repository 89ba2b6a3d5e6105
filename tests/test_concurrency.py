"""Two writers adding the same new mobile at the same moment end with one customer.

The database's UNIQUE (kind, value) on identities decides; ``customers.add`` retries
the loser, which then merges into the winner. Each thread has its own CRM (its own
engine and connection pool) on the same database, like two processes would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

import recrm_core.customers.adding as customers_module  # where add() looks up owners_of_keys
from recrm_core import CRM
from recrm_core.customers import AddResult
from recrm_core.tables import CustomerRow, IdentityRow

ROUNDS = 5


def race(crms: list[CRM], records: list[dict[str, Any]]) -> list[AddResult]:
    """Run ``crm.customers.add(record)`` in one thread per CRM, released together."""
    barrier = threading.Barrier(len(crms))
    results: list[AddResult | None] = [None] * len(crms)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = crms[i].customers.add(records[i])
        except BaseException as exc:  # surfaced below: a thread's failure fails the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(crms))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert not errors, errors
    done = [r for r in results if r is not None]
    assert len(done) == len(crms)
    return done


def counts(crm: CRM, mobile: str) -> tuple[int, int]:
    with crm.unit_of_work() as uow:
        customers = uow.session.scalar(
            select(func.count()).select_from(CustomerRow).where(CustomerRow.merged_into.is_(None))
        )
        identities = uow.session.scalar(
            select(func.count()).select_from(IdentityRow).where(
                IdentityRow.kind == "mobile", IdentityRow.value == mobile
            )
        )
    return int(customers or 0), int(identities or 0)


def test_same_new_mobile_at_the_same_moment(crm_factory: Callable[..., CRM]) -> None:
    a, b = crm_factory(), crm_factory()
    for n in range(ROUNDS):
        national = f"1381234{n:04d}"
        e164 = "+86" + national
        results = race(
            [a, b],
            # Different spellings and different extra data: the keys still collide.
            [{"mobile": national, "name": f"王{n}"}, {"mobile": f"+86 {national}",
                                                      "email": f"w{n}@example.com"}],
        )
        assert len({r.customer.id for r in results}) == 1
        assert sorted(r.created for r in results) == [False, True]
        assert counts(a, e164) == (n + 1, 1)
        final = a.customers.find(mobile=national)
        assert len(final) == 1 and final[0].mobiles == [e164]
        # the loser merged into the winner: both records' data is there
        assert final[0].name == f"王{n}"
        assert final[0].email == f"w{n}@example.com"


def test_same_new_id_card_and_different_mobiles(crm_factory: Callable[..., CRM]) -> None:
    """The ID card collides while the mobiles differ: one customer holding both mobiles."""
    a, b = crm_factory(), crm_factory()
    id_card = "11010519491231002X"
    results = race(
        [a, b],
        [{"mobile": "13812345678", "id_card": id_card},
         {"mobile": "13912345678", "id_card": id_card.lower()}],
    )
    assert len({r.customer.id for r in results}) == 1
    customers = a.customers.find(id_card=id_card)
    assert len(customers) == 1
    assert sorted(customers[0].mobiles) == ["+8613812345678", "+8613912345678"]
    assert a.customers.count() == 1


def test_many_writers_one_mobile(crm_factory: Callable[..., CRM]) -> None:
    crms = [crm_factory() for _ in range(4)]
    results = race(crms, [{"mobile": "13812345678", "source": f"w{i}"} for i in range(4)])
    assert len({r.customer.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert counts(crms[0], "+8613812345678") == (1, 1)


def test_forced_collision_is_retried(
    crm_factory: Callable[..., CRM], monkeypatch: pytest.MonkeyPatch, recrm_backend: str
) -> None:
    """Both writers read "nobody holds this mobile" before either writes, every time:
    the UNIQUE constraint must catch the second insert and the retry must merge it."""
    if recrm_backend == "sqlite":
        pytest.skip("SQLite units of work BEGIN IMMEDIATE: the second reader waits for the "
                    "first writer to commit, so there is no read-write gap to force")
    a, b = crm_factory(), crm_factory()
    after_read = threading.Barrier(2)
    first_read = threading.local()
    reads: list[str] = []
    original = customers_module.owners_of_keys

    def owners_then_wait(session: Any, keys: Any) -> Any:
        found = original(session, keys)
        reads.append(threading.current_thread().name)
        if not getattr(first_read, "done", False):
            first_read.done = True
            assert found == {}
            after_read.wait(timeout=30)  # the retry's read does not wait
        return found

    monkeypatch.setattr(customers_module, "owners_of_keys", owners_then_wait)
    results = race([a, b], [{"mobile": "13812345678", "name": "王伟"},
                            {"mobile": "13812345678", "persona": "刚需"}])
    monkeypatch.undo()
    assert sorted(r.created for r in results) == [False, True]
    assert len(reads) == 3  # two first reads, one retry
    assert counts(a, "+8613812345678") == (1, 1)
    final = a.customers.find(mobile="13812345678")[0]
    assert (final.name, final.persona) == ("王伟", "first_time")
