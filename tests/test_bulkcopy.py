"""PostgreSQL's bulk paths of the import (``recrm_core.bulkcopy``): lookups that stay
on the UNIQUE index without statistics, COPY with ids known beforehand, and a taken
key failing as the IntegrityError the import retries on."""

from __future__ import annotations

import datetime as dt
from typing import cast

import pytest
from sqlalchemy import Table, select, text
from sqlalchemy.exc import IntegrityError

from recrm_core import CRM, bulkcopy
from recrm_core.contention import is_collision
from recrm_core.customers import owners_of_keys
from recrm_core.resolution import EXTERNAL, MOBILE, WECHAT, external_key
from recrm_core.tables import IdentityRow

_IDENTITIES = cast(Table, IdentityRow.__table__)
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _postgresql_only(recrm_backend: str) -> None:
    if recrm_backend != "postgresql":
        pytest.skip("COPY and unnest lookups are PostgreSQL's; SQLite keeps SQLAlchemy's path")


def test_owners_of_keys_finds_each_kind_and_resolves_merged_references(crm: CRM) -> None:
    a = crm.customers.add({"mobile": "13812345678", "wechat_unionid": "o6_abcdefghijklmnop",
                           "external_id": "E1", "source_system": "mls"}).customer.id
    b = crm.customers.add({"mobile": "13912345678", "external_id": "E2",
                           "source_system": "mls"}).customer.id
    with crm.unit_of_work() as uow:
        # b merged into a: b's external reference now stands for a
        uow.session.execute(text("UPDATE customers SET merged_into = :a WHERE id = :b"),
                            {"a": a, "b": b})
    with crm.unit_of_work(readonly=True) as uow:
        found = owners_of_keys(uow.session, [
            (MOBILE, "+8613812345678"), (MOBILE, "+8613912345678"), (MOBILE, "+8613700000000"),
            (WECHAT, "o6_abcdefghijklmnop"), (EXTERNAL, external_key("mls", "E1")),
            (EXTERNAL, external_key("mls", "E2")), (EXTERNAL, external_key("mls", "E3")),
        ])
    assert found == {
        (MOBILE, "+8613812345678"): a, (MOBILE, "+8613912345678"): b,
        (WECHAT, "o6_abcdefghijklmnop"): a,
        (EXTERNAL, "mls\x1fE1"): a, (EXTERNAL, "mls\x1fE2"): a,
    }


def test_copy_numbered_gives_ids_in_row_order_and_writes_in_key_order(crm: CRM) -> None:
    cid = crm.customers.add({"name": "甲", "mobile": "13812345678"}).customer.id
    zz, aa, mm = (f"o6_{c * 16}" for c in "zam")
    rows = [(cid, WECHAT, zz, zz), (cid, WECHAT, aa, aa), (cid, WECHAT, mm, mm)]
    with crm.unit_of_work() as uow:
        conn = uow.session.connection()
        ids = bulkcopy.copy_numbered(conn, _IDENTITIES, ("customer_id", "kind", "value",
                                                         "display"),
                                     {"created_at": NOW}, rows, key=lambda r: (r[1], r[2]))
        # the physical order of the COPY is the key order: the ctid's block/offset
        written = [value for (value,) in conn.execute(text(
            "SELECT value FROM identities WHERE kind = 'wechat' ORDER BY ctid"))]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert written == [aa, mm, zz]
    with crm.unit_of_work(readonly=True) as uow:
        stored = {value: iid for value, iid in uow.session.execute(
            select(IdentityRow.value, IdentityRow.id).where(IdentityRow.kind == WECHAT))}
        created = {uow.session.scalar(select(IdentityRow.created_at).where(
            IdentityRow.kind == WECHAT).limit(1))}
    # the first row of the file got the first id, whatever order it was written in
    assert stored == {zz: ids[0], aa: ids[1], mm: ids[2]}
    assert created == {NOW}


def test_constants_dumped_once_keep_their_instant_in_any_session_time_zone(crm: CRM) -> None:
    """Constants go into COPY as the driver's text for them, dumped once per batch: an
    offset other than UTC, in a session whose TimeZone is neither, is the same instant."""
    cid = crm.customers.add({"name": "甲", "mobile": "13812345678"}).customer.id
    beijing = dt.datetime(2026, 1, 2, 11, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with crm.unit_of_work() as uow:
        conn = uow.session.connection()
        conn.execute(text("SET LOCAL TimeZone = 'America/New_York'"))
        bulkcopy.copy_numbered(conn, _IDENTITIES, ("customer_id", "kind", "value", "display"),
                               {"created_at": beijing},
                               [(cid, WECHAT, "o6_abcdefghijklmnop", "o6_abcdefghijklmnop")])
    with crm.unit_of_work(readonly=True) as uow:
        stored = uow.session.scalar(select(IdentityRow.created_at).where(
            IdentityRow.kind == WECHAT))
    assert stored == beijing == dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.UTC)


def test_a_taken_key_fails_the_copy_as_a_retried_integrity_error(crm: CRM) -> None:
    cid = crm.customers.add({"mobile": "13812345678"}).customer.id
    with pytest.raises(IntegrityError) as caught, crm.unit_of_work() as uow:
        bulkcopy.copy_numbered(uow.session.connection(), _IDENTITIES,
                               ("customer_id", "kind", "value", "display"),
                               {"created_at": NOW},
                               [(cid, MOBILE, "+8613812345678", "+8613812345678")])
    assert getattr(caught.value.orig, "sqlstate", None) == "23505"
    assert is_collision(caught.value)
    with crm.unit_of_work(readonly=True) as uow:  # rolled back, nothing half-written
        assert uow.session.scalar(text("SELECT count(*) FROM identities")) == 1


def test_the_key_lookup_stays_on_the_unique_index_without_statistics(crm: CRM) -> None:
    """The plan the import's lookup gets on a big table never analyzed (autovacuum
    off, as on the test server, or lagging a long import): an index probe per key,
    not a read of every mobile (what ``kind = $1 AND value IN (...)`` got)."""
    with crm.unit_of_work() as uow:
        uow.session.execute(text(
            "INSERT INTO customers (id, stage, created_at, updated_at)"
            " SELECT g, 'prospect', now(), now() FROM generate_series(1, 60000) AS g"))
        uow.session.execute(text(
            "INSERT INTO identities (customer_id, kind, value, display, created_at)"
            " SELECT g, 'mobile', '+86138' || lpad(g::text, 8, '0'), 'x', now()"
            " FROM generate_series(1, 60000) AS g"))
    keys = [(MOBILE, f"+86138{n:08d}") for n in range(100, 60000, 600)]
    with crm.unit_of_work(readonly=True) as uow:
        conn = uow.session.connection()
        assert conn.scalar(text(
            "SELECT reltuples FROM pg_class WHERE oid = 'identities'::regclass")) == -1
        plan = "\n".join(conn.execute(
            text("EXPLAIN (ANALYZE, BUFFERS) " + str(bulkcopy._IDENTITY_OWNERS)),
            {"kinds": [k for k, _ in keys], "values": [v for _, v in keys]},
        ).scalars())
        found = bulkcopy.owners_of_keys(conn, keys)
    assert "Index Scan using uq_identities_kind_value" in plan, plan
    assert "Seq Scan on identities" not in plan, plan
    assert "rows=100 loops=1" in plan or "loops=100" in plan, plan
    assert found == {(MOBILE, f"+86138{n:08d}"): n for n in range(100, 60000, 600)}
