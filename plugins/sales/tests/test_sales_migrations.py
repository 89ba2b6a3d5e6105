"""The ``sales`` branch: empty → head is the declared schema, and its downgrade works
both ways."""

from __future__ import annotations

from recrm_core import CRM
from recrm_core.baselines import shape
from recrm_core.migrating import differences, downgrade, upgrade
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
