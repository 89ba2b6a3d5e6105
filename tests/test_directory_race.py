"""Staff at several desks at once, as separate processes on one database: the same id
added twice ends with one member of staff, and a consultant leaving while others
assign customers to them never leaves a customer assigned after they left."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from recrm_core import CRM, RecrmError
from recrm_core.tables import CustomerProjectRow, StaffRow
from recrm_core.testing import StartLine, run_together

WORKERS = 4


def _add_worker(url: str, key_file: str, n: int, start: StartLine) -> str:
    crm = CRM(database_url=url, settings={"key_file": key_file})
    try:
        start.wait()
        try:
            crm.directory.add_staff({"id": "zhang", "name": f"张{n}", "role": "sales"})
            return "added"
        except RecrmError as exc:
            return str(exc)
    finally:
        crm.close()


def _assign_or_leave(url: str, key_file: str, n: int, start: StartLine) -> list[str]:
    crm = CRM(database_url=url, settings={"key_file": key_file})
    outcomes = []
    try:
        start.wait()
        if n == 0:
            crm.directory.leave("zhang")
            outcomes.append("left")
        else:
            for i in range(15):
                try:
                    crm.customers.add({"mobile": f"13{n}0000{i:04d}", "project": "XL1",
                                       "owner_staff": "zhang"})
                    outcomes.append("assigned")
                except RecrmError as exc:
                    outcomes.append(str(exc))
        return outcomes
    finally:
        crm.close()


def test_the_same_staff_id_added_at_once_is_added_once(
        crm: CRM, recrm_database_url: str) -> None:
    key = str(crm.key_file)
    results = run_together(_add_worker, [(recrm_database_url, key, n) for n in range(WORKERS)])
    assert sorted(results) == ["added"] + ["staff 'zhang' exists"] * (WORKERS - 1)
    assert [s.id for s in crm.directory.staff()] == ["zhang"]


def test_no_assignment_lands_after_a_leave(crm: CRM, crm_factory: Callable[..., CRM],
                                           recrm_database_url: str) -> None:
    crm.directory.add_staff({"id": "zhang", "name": "张", "role": "sales"})
    key = str(crm.key_file)
    results = run_together(_assign_or_leave,
                           [(recrm_database_url, key, n) for n in range(WORKERS)])
    outcomes = [o for batch in results for o in batch]
    assert outcomes.count("left") == 1
    assert set(outcomes) <= {"left", "assigned", "staff 'zhang' has left; they take no new "
                             "assignments"}
    with crm.unit_of_work(readonly=True) as uow:
        left_at = uow.session.scalar(select(StaffRow.left_at).where(StaffRow.id == "zhang"))
        assigned = list(uow.session.scalars(
            select(CustomerProjectRow.first_seen_at)
            .where(CustomerProjectRow.owner_staff == "zhang")))
    assert left_at is not None
    assert len(assigned) == outcomes.count("assigned")
    assert all(at < left_at for at in assigned)
