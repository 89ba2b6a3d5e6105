"""With the channels plugin: a deal made here reaches the agency's commission through
the core's stage hooks — counted once for a two-buyer deal — and a cancellation
claws it back (the forced move back)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sales_testkit import PROJECT, customer, setup_units

from recrm_core import CRM

pytest.importorskip("recrm_channels")

pytestmark = pytest.mark.recrm_plugins("sales", "channels")


def test_commission_accrues_once_and_is_clawed_back(crm: CRM, tmp_path: Path) -> None:
    from recrm_channels import service as channels_service
    from recrm_channels.commission import Commissions

    sales = setup_units(crm, tmp_path)
    channels = channels_service(crm)
    channels.add_agency("A", "链家 A")
    channels.add_agent("a1", "Agent A1", "A")
    Commissions(crm).set_terms("A", PROJECT, percent="1")
    channels.register("a1", PROJECT, "13800000001", "王伟")
    channels.visit(PROJECT, "13800000001", agent="a1", name="王伟")
    wang = customer(crm, "13800000001")
    spouse = customer(crm, "13800000002")
    deal = sales.deals.subscribe("XL2/3-1201", wang, parties=[f"{spouse}:spouse:50"],
                                 deposit="50000")
    sales.deals.sign(deal.id, contract_no="HT-1", total="1970000", payment="full")
    entries = Commissions(crm).entries("A")
    deals = [e for e in entries if e.kind == "deal"]
    assert [e.amount for e in deals] == [Decimal("19700.00")]
    sales.deals.cancel(deal.id, reason="退房")
    clawed = [e for e in Commissions(crm).entries("A") if e.kind == "clawback"]
    assert sum((e.amount for e in clawed), Decimal(0)) <= Decimal("-19700.00")
