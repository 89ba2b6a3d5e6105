"""Lookup benchmark: ``crm.customers.find(mobile=...)`` against a raw indexed query.

    python bench/lookup_bench.py [--rows 1000000] [--lookups 2000] [--keep DIR]

Builds a SQLite database with the recrm schema holding N customers (bulk-inserted
straight into the core tables with ``sqlite3``, which is much faster than importing
for a benchmark that only reads), then times K lookups of random existing mobiles:

- through the API: ``crm.customers.find(mobile=...)`` (normalisation, a transaction,
  the identity lookup and building the full Customer model);
- raw: one ``sqlite3`` query on the same file joining the UNIQUE (kind, value)
  identity index to the customer row.

Prints one JSON object with the per-lookup microseconds of both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from recrm_core import CRM

PREFIXES = ("138", "139", "150", "186", "199")


def mobile_of(i: int) -> str:
    return PREFIXES[i % len(PREFIXES)] + f"{i:08d}"


def build(db: Path, rows: int) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with CRM(database_url=f"sqlite:///{db}", plugins=[], create_schema=True):
        pass
    conn = sqlite3.connect(db)
    now = "2024-01-01 00:00:00.000000"
    chunk = 100_000
    with conn:
        for start in range(0, rows, chunk):
            ids = range(start + 1, min(rows, start + chunk) + 1)
            conn.executemany(
                "INSERT INTO customers (id, name, stage, created_at, updated_at)"
                " VALUES (?, ?, 'prospect', ?, ?)",
                ((i, f"客户{i}", now, now) for i in ids),
            )
            conn.executemany(
                "INSERT INTO identities (customer_id, kind, value, display, created_at)"
                " VALUES (?, 'mobile', ?, ?, ?)",
                ((i, "+86" + mobile_of(i), "+86" + mobile_of(i), now) for i in ids),
            )
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the database")
    args = parser.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="recrm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "lookup.db"
    started = time.perf_counter()
    build(db, args.rows)
    build_s = time.perf_counter() - started

    rng = random.Random(11)
    wanted = [rng.randint(1, args.rows) for _ in range(args.lookups)]
    mobiles = [mobile_of(i) for i in wanted]

    with CRM(database_url=f"sqlite:///{db}", plugins=[]) as crm:
        crm.customers.find(mobile=mobiles[0])  # warm up: connection, compiled statements
        start = time.perf_counter()
        for i, m in zip(wanted, mobiles, strict=True):
            found = crm.customers.find(mobile=m)
            assert found[0].id == i
        api_s = time.perf_counter() - start

    conn = sqlite3.connect(db)
    query = (
        "SELECT c.* FROM identities i JOIN customers c ON c.id = i.customer_id"
        " WHERE i.kind = 'mobile' AND i.value = ?"
    )
    conn.execute(query, ("+86" + mobiles[0],)).fetchall()
    start = time.perf_counter()
    for i, m in zip(wanted, mobiles, strict=True):
        row = conn.execute(query, ("+86" + m,)).fetchone()
        assert row[0] == i
    raw_s = time.perf_counter() - start
    conn.close()

    api_us = api_s / args.lookups * 1e6
    raw_us = raw_s / args.lookups * 1e6
    print(json.dumps({
        "rows": args.rows,
        "lookups": args.lookups,
        "build_s": round(build_s, 1),
        "api_us_per_lookup": round(api_us, 1),
        "raw_us_per_lookup": round(raw_us, 1),
        "ratio": round(api_us / raw_us, 1),
    }))


if __name__ == "__main__":
    main()
