"""The customers' email and merged_into indexes are partial (core_0014): they skip the
rows without a value, and every query that reads them still finds them usable."""

from __future__ import annotations

from sqlalchemy import text

from recrm_core import CRM

_LOOKUPS = {
    "ix_customers_email": "SELECT id FROM customers WHERE email = :v AND merged_into IS NULL",
    "ix_customers_merged_into": "SELECT id FROM customers WHERE merged_into = :v",
}


def test_the_sparse_indexes_are_partial_and_still_used(crm: CRM, recrm_backend: str) -> None:
    with crm.unit_of_work() as uow:
        conn = uow.session.connection()
        if recrm_backend == "postgresql":
            conn.execute(text(
                "INSERT INTO customers (id, email, stage, created_at, updated_at)"
                " SELECT g, CASE WHEN g % 2 = 0 THEN 'u' || g || '@x.com' END, 'prospect',"
                " now(), now() FROM generate_series(1, 20000) AS g"))
            conn.execute(text("UPDATE customers SET merged_into = id - 1 WHERE id % 500 = 0"))
            conn.execute(text("ANALYZE customers"))
            defs = dict(conn.execute(text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'customers'"
                " AND schemaname = current_schema()")).all())
        else:
            defs = dict(conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'customers'"
                " AND type = 'index'")).all())
        for name, sql in _LOOKUPS.items():
            assert "IS NOT NULL" in defs[name], defs[name]
            explain = ("EXPLAIN " if recrm_backend == "postgresql"
                       else "EXPLAIN QUERY PLAN ")
            plan = " ".join(str(row[-1]) for row in conn.execute(text(explain + sql),
                                                                 {"v": "u8@x.com"
                                                                  if "email" in name else 8}))
            assert name in plan, plan
