"""The ``sales`` branch: empty → head is the declared schema, and its downgrade works
both ways; sales_0002 names the deals sharing a contract number rather than failing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from recrm_core import CRM
from recrm_core.baselines import shape
from recrm_core.migrating import MigrationError, differences, downgrade, upgrade
from recrm_core.schema import schema_state

TABLES = {"sales_buildings", "sales_units", "sales_holds", "sales_ticket_sequences",
          "sales_tickets", "sales_deals", "sales_parties", "sales_deal_events",
          "sales_instalments", "sales_receipts"}


def test_branch_builds_the_declared_tables_and_goes_back(recrm_database_url: str) -> None:
    with CRM(database_url=recrm_database_url, plugins=["sales"]) as crm:
        upgrade(crm)
        assert differences(crm) == []
        assert schema_state(crm).kind == "current"
        with crm.engine.connect() as conn:
            at_head = shape(conn)
        assert {t for t in at_head if t.startswith("sales_")} == TABLES
        downgrade(crm, "sales", "base")
        with crm.engine.connect() as conn:
            assert not {t for t in shape(conn) if t.startswith("sales_")}
        assert schema_state(crm).kind == "behind"
        upgrade(crm)
        with crm.engine.connect() as conn:
            assert shape(conn) == at_head


def test_contract_numbers_shared_before_sales_0002_are_named_not_indexed(
        recrm_database_url: str, tmp_path: Path) -> None:
    """A database where two deals got one contract number (the race sales_0002 closes)
    is refused with the deals to renumber; renumbered, it upgrades."""
    from sales_testkit import customer, setup_units

    with CRM(database_url=recrm_database_url, plugins=["sales"]) as crm:
        upgrade(crm)
        sales = setup_units(crm, tmp_path)
        first, second = (sales.deals.subscribe(unit, customer(crm, mobile), deposit=50000).id
                         for unit, mobile in (("XL2/3-1201", "13900000001"),
                                              ("XL2/3-1202", "13900000002")))
        sales.deals.sign(first, contract_no="HT-1", total="1900000", payment="mortgage")
        downgrade(crm, "sales", "sales_0001")
        with crm.engine.begin() as conn:
            conn.execute(text("UPDATE sales_deals SET contract_no = 'HT-1' WHERE id = :id"),
                         {"id": second})
        with pytest.raises(MigrationError, match=(
                f"1 contract number.* \\(XL2 'HT-1': deals {first} and {second}\\); "
                "give each deal its own number")):
            upgrade(crm)
        with crm.engine.begin() as conn:
            conn.execute(text("UPDATE sales_deals SET contract_no = 'HT-2' WHERE id = :id"),
                         {"id": second})
        upgrade(crm)
        assert differences(crm) == []
