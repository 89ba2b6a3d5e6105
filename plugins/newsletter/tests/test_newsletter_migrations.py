"""The ``newsletter`` branch: empty → head is the declared schema, and back."""

from __future__ import annotations

from recrm_core import CRM
from recrm_core.baselines import shape
from recrm_core.migrating import differences, downgrade, upgrade
from recrm_core.schema import schema_state


def test_branch_builds_the_declared_tables_and_goes_back(recrm_database_url: str) -> None:
    with CRM(database_url=recrm_database_url, plugins=["newsletter"]) as crm:
        upgrade(crm)
        assert differences(crm) == []
        assert schema_state(crm).kind == "current"
        with crm.engine.connect() as conn:
            at_head = shape(conn)
        assert {t for t in at_head if t.startswith("newsletter_")} == {
            "newsletter_segments", "newsletter_lists", "newsletter_list_members",
            "newsletter_publications", "newsletter_sends", "newsletter_recipients",
            "newsletter_suppressions", "newsletter_bounces"}
        downgrade(crm, "newsletter", "base")
        with crm.engine.connect() as conn:
            assert not {t for t in shape(conn) if t.startswith("newsletter_")}
        upgrade(crm)
        with crm.engine.connect() as conn:
            assert shape(conn) == at_head
