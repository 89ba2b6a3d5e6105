"""A merge of two customers moves the sales rows of the merged-away one to the survivor
(docs/plugins.md: a plugin keeping rows per customer moves them in
``recrm_customer_merged``), so the survivor's deals, holds and tickets — and their
privacy export — include them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sales_testkit import NOW, PROJECT, customer, setup_units

from recrm_core import CRM

pytestmark = pytest.mark.recrm_plugins("sales")


def test_a_merge_moves_deals_holds_and_tickets_to_the_survivor(
        crm: CRM, tmp_path: Path) -> None:
    """Found by probing as a new user: after `customers merge`, the duplicate's
    ticket, hold and deal stayed on the merged-away id, so `customers export` of the
    survivor (a PIPL Art. 45 copy) left them out, while the erasure found them."""
    sales = setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001", "王伟")
    dup = customer(crm, "13800000009", "王伟")
    li = customer(crm, "13800000002", "李娜")
    ticket = sales.tickets.issue(PROJECT, dup, "20000", now=NOW)
    sales.units.hold("XL2/3-1202", dup, now=NOW)
    deal = sales.deals.subscribe("XL2/3-1201", li, parties=[f"{dup}:spouse:50"],
                                 deposit="1000", now=NOW)
    crm.customers.merge(wang, dup)
    mine = crm.privacy.export(wang)["plugins"]["sales"]
    assert [d["id"] for d in mine["deals"]] == [deal.id]
    assert len(mine["holds"]) == 1
    assert [t["number"] for t in mine["tickets"]] == [ticket.number]
    parties = {p.customer_id for p in sales.deals.show(deal.id).parties}
    assert parties == {li, wang}


def test_the_export_reads_rows_an_earlier_merge_left_behind(
        crm: CRM, tmp_path: Path) -> None:
    """A database merged before the hook existed keeps the duplicate's rows on its id:
    the export reads the records merged into the person, as the erasure does."""
    from sqlalchemy import update

    from recrm_core.tables import CustomerRow

    sales = setup_units(crm, tmp_path)
    wang = customer(crm, "13800000001", "王伟")
    dup = customer(crm, "13800000009", "王伟")
    ticket = sales.tickets.issue(PROJECT, dup, "20000", now=NOW)
    with crm.unit_of_work() as uow:  # a merge as it was: the sales rows not moved
        uow.session.execute(update(CustomerRow).where(CustomerRow.id == dup)
                            .values(merged_into=wang))
    mine = crm.privacy.export(wang)["plugins"]["sales"]
    assert [t["number"] for t in mine["tickets"]] == [ticket.number]
