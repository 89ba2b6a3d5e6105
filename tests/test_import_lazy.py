"""The import's batch hook gets its records lazily, and SQLite's batch lookups stay
index-bound: what the SQLite import's second round of speed work relies on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select

from recrm_core import CRM, hookimpl
from recrm_core.importing import _LazyRecords
from recrm_core.models import ImportedCustomer
from recrm_core.tables import WebhookEventRow

M1, M2, M3 = "13812345678", "13912345678", "13712345678"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    return path


class Keeper:
    """Keeps each batch's records without reading them."""

    def __init__(self) -> None:
        self.kept: list[Sequence[ImportedCustomer]] = []

    @hookimpl
    def recrm_customers_imported(self, records: Sequence[ImportedCustomer]) -> None:
        self.kept.append(records)


def test_records_are_built_on_first_access_and_read_like_a_list(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    existing = crm.customers.add({"mobile": M3}).customer
    keeper = Keeper()
    register_plugin(keeper)
    result = crm.importer.import_csv(write(
        tmp_path, f"name,mobile,email\n王伟,{M1},\n,{M1},w@x.cn\n李娜,{M2},\n老客户,{M3},\n"))
    assert (result.rows, result.created, result.merged) == (4, 2, 2)
    (records,) = keeper.kept
    assert isinstance(records, _LazyRecords)
    assert len(records) == 3  # known before anything is built
    assert records._build is not None  # nothing read yet: nothing built
    ids = [crm.customers.find(mobile=m)[0].id for m in (M1, M2)]
    expected = [
        ImportedCustomer(customer_id=ids[0], created=True,
                         changed=["email", "mobiles", "name"], rows=[1, 2]),
        ImportedCustomer(customer_id=ids[1], created=True, changed=["mobiles", "name"],
                         rows=[3]),
        ImportedCustomer(customer_id=existing.id, created=False, changed=["name"], rows=[4]),
    ]
    assert records == expected and expected == list(records)
    assert records[0] == expected[0] and records[-1] == expected[2]
    assert records[1:] == expected[1:]
    assert [r.customer_id for r in records] == [ids[0], ids[1], existing.id]
    assert records != expected[:2] and records != "not a sequence"


def test_webhooks_leave_the_records_unread_without_a_subscription(
    crm: CRM, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    keeper = Keeper()
    register_plugin(keeper)
    crm.importer.import_csv(write(tmp_path, f"name,mobile\n王伟,{M1}\n"))
    (records,) = keeper.kept
    assert records._build is not None  # type: ignore[attr-defined]
    # A subscription to another event: still unread, no event written.
    crm.webhooks.add("https://erp.example.cn/hooks", "case.opened")
    crm.importer.import_csv(write(tmp_path, f"name,mobile\n李娜,{M2}\n"))
    assert keeper.kept[1]._build is not None  # type: ignore[attr-defined]
    # Wanted: read, and one customer.created per created customer.
    crm.webhooks.add("https://erp.example.cn/hooks2", "customer.created")
    crm.importer.import_csv(write(tmp_path, f"name,mobile\n张三,{M3}\n"))
    assert keeper.kept[2]._build is None  # type: ignore[attr-defined]
    with crm.unit_of_work(readonly=True) as uow:
        types = list(uow.session.scalars(select(WebhookEventRow.type)))
    assert types == ["customer.created"]


def test_sqlite_batch_lookups_search_their_indexes(crm: CRM, recrm_backend: str) -> None:
    if recrm_backend != "sqlite":
        pytest.skip("json_each lookups are SQLite's; PostgreSQL's are in bulkcopy")
    from recrm_core import sqlitebatch

    with crm.unit_of_work(readonly=True) as uow:
        conn = uow.session.connection()
        plans: dict[str, str] = {}
        for name, query, params in [
            ("owners", sqlitebatch._OWNERS, {"kind": "mobile", "values": '["1"]'}),
            ("identities", sqlitebatch._IDENTITIES_OF, {"ids": "[1]"}),
            ("links", sqlitebatch._LINKS_OF, {"ids": "[1]", "pids": "[1]"}),
        ]:
            compiled = query.statement.compile(dialect=conn.dialect)
            args = tuple(params[n] for n in compiled.positiontup or [])
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + compiled.string, args)
            plans[name] = " | ".join(str(r[3]) for r in rows)
    assert "(kind=? AND value=?)" in plans["owners"]
    assert "ix_identities_customer_id (customer_id=?)" in plans["identities"]
    assert "(customer_id=? AND project_id=?)" in plans["links"]
    assert not any("SCAN identities" in p or "SCAN customer_projects" in p
                   for p in plans.values())


def test_batch_lookups_find_what_was_written(crm: CRM, tmp_path: Path) -> None:
    # Re-importing matches through the batch lookups: idempotent, nothing created.
    text = f"name,mobile,project\n王伟,{M1},XL1\n李娜,{M2},XL1\n"
    first = crm.importer.import_csv(write(tmp_path, text))
    again = crm.importer.import_csv(write(tmp_path, text))
    assert (first.created, first.merged) == (2, 0)
    assert (again.rows, again.created, again.merged, again.rejected) == (2, 0, 2, 0)
    assert crm.customers.count() == 2

