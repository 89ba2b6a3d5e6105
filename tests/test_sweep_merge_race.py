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
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from merge_gate import merger, wait_for_lock_wait
from sqlalchemy import make_url, select

from recrm_core import CRM
from recrm_core.tables import CustomerProjectRow, TaskRow

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)


def _sweeper(url: str, ready: Any, out: Any) -> None:
    try:
        with CRM(database_url=url, plugins=[]) as crm:
            ready.set()
            out.put(("sweep", crm.tasks.sweep(LATER).prospect_idle))
    except BaseException as exc:
        ready.set()
        out.put(("sweep", f"{type(exc).__name__}: {exc}"))


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
    sweep_url = recrm_database_url
    name = f"race-sweep-{tmp_path.name}"[:60]
    if recrm_backend == "postgresql":
        sweep_url = make_url(recrm_database_url).update_query_dict(
            {"application_name": name}).render_as_string(hide_password=False)

    ctx = multiprocessing.get_context("spawn")
    entered, release, ready, out = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    merging = ctx.Process(target=merger, args=(recrm_database_url, [], survivor,
                                               duplicate, entered, release, out))
    merging.start()
    sweeper = None
    try:
        assert entered.wait(timeout=120), "the merge never reached its hook"
        sweeper = ctx.Process(target=_sweeper, args=(sweep_url, ready, out))
        sweeper.start()
        assert ready.wait(timeout=120), "the sweep never started"
        if recrm_backend == "postgresql":
            wait_for_lock_wait(recrm_database_url, name)
        else:
            time.sleep(0.5)  # a writer waits for the merge's BEGIN IMMEDIATE here
    finally:
        release.set()
    results = dict(out.get(timeout=120) for _ in range(2))
    merging.join(timeout=60)
    sweeper.join(timeout=60)
    assert results["merge"] == survivor
    assert isinstance(results["sweep"], int), results["sweep"]
    with crm.unit_of_work(readonly=True) as uow:
        s = uow.session
        assert not s.scalars(select(TaskRow.id).where(TaskRow.customer_id == duplicate)).all()
        assert s.scalars(select(CustomerProjectRow.customer_id)).all() == [survivor]
    # The link moved to the survivor, so the quiet spell is theirs: a sweep calls once.
    tasks = crm.tasks.list(customer_id=survivor)
    if results["sweep"] == 0:  # the sweep left the merged customer to the next one
        assert tasks == []
        assert crm.tasks.sweep(LATER).prospect_idle == 1
    assert [(t.customer_id, t.owner_staff, t.rule) for t in crm.tasks.list()] == [
        (survivor, "zhang", "prospect_idle")]
    assert crm.tasks.sweep(LATER).prospect_idle == 0
