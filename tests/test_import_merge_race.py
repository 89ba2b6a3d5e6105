"""An import racing a merge writes nothing onto the merged-away record.

The import looks a row's mobile up, finds the duplicate, and fills what it lacks (an
email, a link to the row's project, a WeChat unionid). A merge committing between that
lookup and the batch's writes moved the duplicate's identities to the survivor; the
batch's UPDATE and INSERTs then landed on the merged-away record (PostgreSQL: the
UPDATE waits for the merge's lock and re-checks only ``id``; the foreign keys' FOR KEY
SHARE does not wait for the merge's update of ``merged_into``). As in
test_merge_race_writes.py, the merge stops inside its transaction while a second
process imports; on PostgreSQL the test waits until the import is seen waiting on a
lock. On SQLite an import's write transaction begins (``BEGIN IMMEDIATE``) before its
lookups, so it waits for the merge before reading anything.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from merge_gate import race_a_merge
from sqlalchemy import select

from recrm_core import CRM
from recrm_core.tables import CustomerProjectRow, CustomerRow, IdentityRow

UNIONID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
CSV = f"姓名,手机,邮箱,项目,微信unionid\n王伟,13700000003,wang@example.com,XL2,{UNIONID}\n"


def _importer(url: str, ready: Any, path: str) -> tuple[int, int, int]:
    with CRM(database_url=url, plugins=[]) as crm:
        ready.set()
        result = crm.importer.import_file(path)
        return result.created, result.merged, result.rejected


def test_an_import_racing_a_merge_fills_the_survivor(
    crm_factory: Callable[..., CRM], recrm_backend: str, recrm_database_url: str,
    tmp_path: Path,
) -> None:
    crm = crm_factory(plugins=[])
    crm.projects.ensure("XL2", "Xinglong Phase II")
    survivor = crm.customers.add({"mobile": "13700000002"}).customer.id
    duplicate = crm.customers.add({"mobile": "13700000003"}).customer.id
    path = tmp_path / "customers.csv"
    path.write_text(CSV, encoding="utf-8")
    results = race_a_merge(recrm_database_url, recrm_backend, f"race-import-{tmp_path.name}",
                           survivor, duplicate, _importer, str(path))
    assert results["merge"] == survivor
    assert results["write"] == (0, 1, 0), results["write"]
    with crm.unit_of_work(readonly=True) as uow:
        s = uow.session
        assert s.scalar(select(CustomerRow.email).where(CustomerRow.id == duplicate)) is None
        for table in (IdentityRow, CustomerProjectRow):
            assert not s.scalars(select(table.id).where(
                table.customer_id == duplicate)).all(), table.__tablename__
    found = crm.customers.get(survivor)
    assert found.email == "wang@example.com"
    assert set(found.mobiles) == {"+8613700000002", "+8613700000003"}
    assert found.wechat_unionids == [UNIONID]
    assert [p.project for p in found.projects] == ["XL2"]
