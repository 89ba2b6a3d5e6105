"""Privacy requests: export lists the person's deals (as any party), holds and
tickets; erasure deletes holds, removes typed reasons, keeps the deals (accounting
records) by id only — and the core's verification scan finds nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from recrm_sales.tables import DealEventRow, HoldRow
from sales_testkit import NOW, PROJECT, customer, setup_units
from sqlalchemy import select

from recrm_core import CRM

pytestmark = pytest.mark.recrm_plugins("sales")


def test_export_and_erase(crm: CRM, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001", "王伟")
    li = customer(crm, "13800000002", "李娜")
    sales.tickets.issue(PROJECT, wang, "20000", now=NOW)
    sales.units.hold("XL2/3-1202", wang, now=NOW)
    deal = sales.deals.subscribe("XL2/3-1201", li, parties=[f"{wang}:spouse:50"],
                                 deposit="1000", now=NOW)
    sales.payments.receive(deal.id, "1000", date=NOW.date(), ref="王伟 定金")
    sales.deals.cancel(deal.id, reason="王伟 13800000001 退房", now=NOW)
    exported = crm.privacy.export(wang)
    mine = exported["plugins"]["sales"]
    assert [d["id"] for d in mine["deals"]] == [deal.id]
    assert len(mine["holds"]) == 1 and mine["tickets"][0]["number"] == 1
    assert "sales" not in crm.privacy.export(customer(crm, "13800000003"))["plugins"]
    result = crm.privacy.erase(wang, reason="PIPL request")
    tables = {s["table"] for s in result.steps}
    assert {"sales_holds", "sales_deal_events", "sales_receipts", "sales_deals"} <= tables
    with crm.unit_of_work() as uow:
        assert uow.session.scalars(select(HoldRow)).all() == []
        reasons = uow.session.scalars(select(DealEventRow.reason)).all()
    assert all(r is None for r in reasons)
    shown = sales.deals.show(deal.id)
    assert shown.state == "cancelled" and shown.receipts[0].ref.startswith("erased-")
