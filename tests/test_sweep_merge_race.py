"""A follow-up sweep racing a merge writes no task on the merged-away record.

The sweep reads its candidates (owned prospects left quiet) without a lock, then
writes a task for each. A merge committing between the two moves the duplicate's link
and tasks to the survivor; a task written afterwards for the duplicate stayed on the
merged-away record, out of every list of the survivor's work. As in
test_merge_race_writes.py, the merge stops inside its transaction (a plugin's
``recrm_customer_merged`` waits) while a second process sweeps; on PostgreSQL the test
waits until the sweep is seen waiting on a lock, then lets the merge commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from merge_gate import race_a_merge
from sqlalchemy import select

from recrm_core import CRM
from recrm_core.tables import CustomerProjectRow, TaskRow

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)


def _sweeper(url: str, ready: Any) -> int:
    with CRM(database_url=url, plugins=[]) as crm:
        ready.set()
        return crm.tasks.sweep(LATER).prospect_idle


def test_a_sweep_racing_a_merge_leaves_no_task_on_the_merged_away_record(
    crm_factory: Callable[..., CRM], recrm_backend: str, recrm_database_url: str,
    tmp_path: Path,
) -> None:
    crm = crm_factory(plugins=[])
    crm.directory.add_staff({"id": "zhang", "name": "张", "role": "sales"})
    survivor = crm.customers.add({"mobile": "13700000002"}).customer.id
    # The duplicate is the owned prospect the sweep finds quiet.
    duplicate = crm.customers.add({"mobile": "13700000003", "project": "XL2",
                                   "owner_staff": "zhang"}).customer.id
    results = race_a_merge(recrm_database_url, recrm_backend, f"race-sweep-{tmp_path.name}",
                           survivor, duplicate, _sweeper)
    assert results["merge"] == survivor
    assert isinstance(results["write"], int), results["write"]
    with crm.unit_of_work(readonly=True) as uow:
        s = uow.session
        assert not s.scalars(select(TaskRow.id).where(TaskRow.customer_id == duplicate)).all()
        assert s.scalars(select(CustomerProjectRow.customer_id)).all() == [survivor]
    # The link moved to the survivor, so the quiet spell is theirs: a sweep calls once.
    tasks = crm.tasks.list(customer_id=survivor)
    if results["write"] == 0:  # the sweep left the merged customer to the next one
        assert tasks == []
        assert crm.tasks.sweep(LATER).prospect_idle == 1
    assert [(t.customer_id, t.owner_staff, t.rule) for t in crm.tasks.list()] == [
        (survivor, "zhang", "prospect_idle")]
    assert crm.tasks.sweep(LATER).prospect_idle == 0
