"""A project renamed (``recrm projects rename``) keeps its 销控表: buildings, units, holds,
tickets (and their numbering) and deals move to the new code in
``recrm_project_renamed``.

Before, they stayed under the old code, which no project has: ``sales units list
--project NEW`` showed nothing, ``--project OLD`` was 'no such project', the units
were still held and sold as ``OLD/3-1201``, and ticket numbers started again at 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from sales_testkit import PROJECT, customer, setup_units

from recrm_core import CRM, NotFound
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("sales")

NEW = "XL2B"


def test_a_renamed_project_keeps_its_units_tickets_and_deals(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    buyer = customer(crm, "13812345678")
    other = customer(crm, "13912345678")
    first = sales.tickets.issue(PROJECT, other, "20000")
    deal = sales.deals.subscribe(f"{PROJECT}/3-1201", buyer, deposit=50000)
    sales.units.hold(f"{PROJECT}/3-1202", other)

    crm.projects.rename(PROJECT, NEW)

    units = {u.name: u.status for u in sales.units.list(project=NEW)}
    assert units == {f"{NEW}/3-1201": "subscribed", f"{NEW}/3-1202": "held",
                     f"{NEW}/3-1203": "available", f"{NEW}/5-101": "withheld"}
    with pytest.raises(NotFound):
        sales.units.get(f"{PROJECT}/3-1203")
    assert sales.deals.show(deal.id).project == NEW
    assert [d.id for d in sales.deals.list(project=NEW)] == [deal.id]
    # numbering goes on where it was, at the new code
    assert sales.tickets.issue(NEW, buyer, "20000").number == first.number + 1
    # the unit held before the rename is still held for its customer
    assert [(h.unit, h.customer_id) for h in sales.units.holds()] == [(f"{NEW}/3-1202", other)]
    shown = cli_runner.invoke("sales", "units", "list", "--project", NEW)
    assert shown.exit_code == 0 and f"{NEW}/3-1203" in shown.stdout
