"""Erasure when another customer's deal names the person in its free text."""

from __future__ import annotations

from pathlib import Path

import pytest
from recrm_sales.tables import DealEventRow
from sales_testkit import NOW, customer, setup_units
from sqlalchemy import select

from recrm_core import CRM

pytestmark = pytest.mark.recrm_plugins("sales")


def test_another_deals_reason_and_receipt_naming_the_person_are_redacted(
        crm: CRM, tmp_path: Path) -> None:
    """Found by probing as a new user: a cancellation reason or a receipt reference on
    someone else's deal naming the person ("转给朋友 139 0000 0009") made their erasure
    fail the verification and roll back, with no command to change that text. The
    words are redacted there; the other deal stays as it was."""
    sales = setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001", "王伟")
    friend = customer(crm, "13900000009", "李娜")
    deal = sales.deals.subscribe("XL2/3-1201", wang, deposit="1000", now=NOW)
    sales.payments.receive(deal.id, "1000", date=NOW.date(), ref="代付人 13900000009")
    sales.deals.cancel(deal.id, reason="转给朋友 139 0000 0009", now=NOW)
    result = crm.privacy.erase(friend, reason="PIPL request")
    assert {"sales_deal_events", "sales_receipts"} <= {s["table"] for s in result.steps}
    with crm.unit_of_work() as uow:
        reasons = uow.session.scalars(select(DealEventRow.reason).where(
            DealEventRow.reason.is_not(None))).all()
    assert reasons == ["(redacted)"]
    shown = sales.deals.show(deal.id)
    assert shown.state == "cancelled"
    refs = sorted(r.ref for r in shown.receipts)
    assert refs[0] == "deposit" and refs[1].startswith("erased-") and len(refs) == 2
