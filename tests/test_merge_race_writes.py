"""A write racing a merge lands on the survivor, never on the merged-away record.

The merge runs in one process and stops inside its transaction (a plugin's
``recrm_customer_merged`` waits), holding its locks; a second process, its own CRM,
writes for the duplicate meanwhile. On PostgreSQL the test waits until the writer is
seen waiting on a lock (so it resolved nothing yet, or resolved before the merge's
update: the race the issue reported), then lets the merge commit. On SQLite a writing
unit of work waits for the merge's write lock (``BEGIN IMMEDIATE``) before it reads
anything; what is read in a transaction before it is not.

Before ``resolve_for_write`` every one of these writes landed on the duplicate on
PostgreSQL and said so (the foreign key's FOR KEY SHARE waits for the merge, then
finds the row still there; ``update``'s UPDATE re-checks only ``id``). On SQLite the
core's writes already waited for the merge and followed it; the sales hold and
subscription did not (the customer was resolved in a transaction before the write's).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from merge_gate import race_a_merge
from sqlalchemy import select

from recrm_core import CRM
from recrm_core.tables import CaseRow, CustomerProjectRow, CustomerRow, InteractionRow

PROJECT = "XL2"
UNIT = "XL2/3-1201"
UNITS_CSV = ("楼栋,单元,楼层,房号,建筑面积,套内面积,户型,朝向,总价,单价,状态\n"
             "3,1,12,1201,98.50,80.20,3室2厅2卫,南,\"1,970,000\",,可售\n")
WRITES = ["update", "add", "log", "set_stage", "case", "hold", "subscribe"]


def _write(crm: CRM, kind: str, cid: int) -> int | None:
    """One write for customer ``cid``: the customer id it reports."""
    from recrm_sales import service

    if kind == "update":
        return crm.customers.update(
            cid, {"email": "x@example.com", "add_mobiles": ["13600000001"]}).id
    if kind == "add":  # the duplicate's mobile again, now at a project
        return crm.customers.add({"mobile": "13700000003", "project": PROJECT}).customer.id
    if kind == "log":
        return crm.interactions.log(cid, {"kind": "call", "summary": "回访"}).customer_id
    if kind == "set_stage":
        return crm.customers.set_stage(cid, "visitor", PROJECT).id
    if kind == "case":
        return crm.cases.open({"customer_id": cid, "category": "repair",
                               "subject": "漏水"}).customer_id
    sales = service(crm)
    deal_or_hold = sales.units.hold(UNIT, cid) if kind == "hold" else \
        sales.deals.subscribe(UNIT, cid, deposit=50000)
    held_for: int | None = deal_or_hold.customer_id
    return held_for


def _writer(url: str, ready: Any, kind: str, cid: int) -> int | None:
    with CRM(database_url=url, plugins=["sales"]) as crm:
        ready.set()
        return _write(crm, kind, cid)


@pytest.mark.parametrize("kind", WRITES)
def test_a_write_racing_a_merge_lands_on_the_survivor(
    crm_factory: Callable[..., CRM], recrm_backend: str, recrm_database_url: str,
    tmp_path: Path, kind: str,
) -> None:
    from recrm_sales import service

    crm = crm_factory(plugins=["sales"])
    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    units = tmp_path / "units.csv"
    units.write_text(UNITS_CSV, encoding="utf-8")
    assert service(crm).units.import_file(units, project=PROJECT).rejected == 0
    survivor = crm.customers.add({"mobile": "13700000002"}).customer.id
    duplicate = crm.customers.add({"mobile": "13700000003"}).customer.id
    results = race_a_merge(recrm_database_url, recrm_backend, f"race-writer-{tmp_path.name}",
                           survivor, duplicate, _writer, kind, duplicate,
                           merge_plugins=["sales"])
    assert results["merge"] == survivor
    # The writer's own answer names the survivor ...
    assert results["write"] == survivor, results["write"]
    # ... and nothing it wrote stayed on the merged-away record.
    with crm.unit_of_work(readonly=True) as uow:
        s = uow.session
        assert s.scalar(select(CustomerRow.merged_into).where(
            CustomerRow.id == duplicate)) == survivor
        assert s.scalar(select(CustomerRow.email).where(CustomerRow.id == duplicate)) is None
        for table in (InteractionRow, CaseRow, CustomerProjectRow):
            assert not s.scalars(select(table.id).where(
                table.customer_id == duplicate)).all(), table.__tablename__
    found = crm.customers.get(survivor)
    if kind == "update":
        assert found.email == "x@example.com" and "+8613600000001" in found.mobiles
    if kind in ("set_stage", "add"):
        stage = "visitor" if kind == "set_stage" else "prospect"
        assert [(p.project, p.stage) for p in found.projects] == [(PROJECT, stage)]
    if kind in ("hold", "subscribe"):
        sales = service(crm)
        assert sales.units.get(UNIT).status == ("held" if kind == "hold" else "subscribed")
        if kind == "hold":
            # The survivor can take up the unit held for them (the probe's
            # 'held for another customer').
            deal = sales.deals.subscribe(UNIT, survivor, deposit=50000,
                                         now=dt.datetime.now(dt.UTC))
            assert deal.customer_id == survivor
