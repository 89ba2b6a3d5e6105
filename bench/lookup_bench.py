"""Lookup benchmark: ``crm.customers.find(mobile=...)`` against a raw indexed query.

    python bench/lookup_bench.py [--rows 1000000] [--lookups 2000] [--keep DIR] [--reuse]

Builds a SQLite database with the recrm schema holding N customers (bulk-inserted
straight into the core tables with ``sqlite3``, which is much faster than importing
for a benchmark that only reads), then times K lookups of random existing mobiles:

- through the API: ``crm.customers.find(mobile=...)`` (normalisation, a transaction,
  the identity lookup and building the full Customer model);
- raw: one ``sqlite3`` query on the same file, with the pragmas recrm sets, joining
  the UNIQUE (kind, value) identity index to the customer row (the issue's "raw
  indexed query": it reads the row alone);
- raw, whole: one ``sqlite3`` query reading what ``find`` returns, the customer row
  with its identities and project links (LEFT JOINs on their ``customer_id``
  indexes), fetched as tuples: the same data, without the API.

The sides run the same lookups in blocks of 100, taking turns at going first, so
that none is charged alone for reading the pages into the cache.
The database is ``lookup-N.db`` in the work directory; with ``--keep DIR --reuse`` an
existing one is used as it is, so before and after runs can alternate on one file.

Prints one JSON object with the per-lookup microseconds of each (wall and CPU) and
the API's ratios to both raw sides (``ratio``/``cpu_ratio`` against the row alone,
``ratio_whole``/``cpu_ratio_whole`` against the whole customer).
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
#: what recrm's engine sets on every SQLite connection (``recrm_core.db.make_engine``)
RECRM_PRAGMAS = ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL",
                 "cache_size=-65536")
#: lookups per timed block (the sides alternate block by block)
BLOCK = 100


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
    parser.add_argument("--reuse", action="store_true",
                        help="with --keep: use DIR's database of --rows customers if built")
    args = parser.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="recrm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"lookup-{args.rows}.db"
    started = time.perf_counter()
    if not (args.reuse and args.keep and db.exists()):
        build(db, args.rows)
    build_s = time.perf_counter() - started

    rng = random.Random(11)
    wanted = [rng.randint(1, args.rows) for _ in range(args.lookups)]
    mobiles = [mobile_of(i) for i in wanted]

    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in RECRM_PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    query = (
        "SELECT c.* FROM identities i JOIN customers c ON c.id = i.customer_id"
        " WHERE i.kind = 'mobile' AND i.value = ?"
    )
    whole_query = (
        "SELECT c.*, o.id, o.kind, o.display, l.id, p.code, p.name, l.stage,"
        " l.owner_staff, l.source, l.first_seen_at"
        " FROM identities i JOIN customers c ON c.id = i.customer_id"
        " LEFT JOIN identities o ON o.customer_id = c.id"
        " LEFT JOIN customer_projects l ON l.customer_id = c.id"
        " LEFT JOIN projects p ON p.id = l.project_id"
        " WHERE i.kind = 'mobile' AND i.value = ?"
    )

    def api(block: list[tuple[int, str]]) -> None:
        for i, m in block:
            found = crm.customers.find(mobile=m)
            assert found[0].id == i

    def raw(block: list[tuple[int, str]]) -> None:
        for i, m in block:
            row = conn.execute(query, ("+86" + m,)).fetchone()
            assert row[0] == i

    def raw_whole(block: list[tuple[int, str]]) -> None:
        for i, m in block:
            rows = conn.execute(whole_query, ("+86" + m,)).fetchall()
            assert rows[0][0] == i

    pairs = list(zip(wanted, mobiles, strict=True))
    sides = (api, raw, raw_whole)
    spent = {side: [0.0, 0.0] for side in sides}  # wall, CPU
    with CRM(database_url=f"sqlite:///{db}", plugins=[]) as crm:
        for side in sides:
            side(pairs[:1])  # warm up: connection, compiled statements
        # Blocks of the same lookups, rotating which side meets their pages first,
        # so none is charged alone for reading them into the cache.
        for n, at in enumerate(range(0, len(pairs), BLOCK)):
            block = pairs[at : at + BLOCK]
            for side in sides[n % 3:] + sides[:n % 3]:
                start, cpu = time.perf_counter(), time.process_time()
                side(block)
                spent[side][0] += time.perf_counter() - start
                spent[side][1] += time.process_time() - cpu
    conn.close()
    (api_s, api_cpu), (raw_s, raw_cpu) = spent[api], spent[raw]
    whole_s, whole_cpu = spent[raw_whole]

    api_us = api_s / args.lookups * 1e6
    raw_us = raw_s / args.lookups * 1e6
    whole_us = whole_s / args.lookups * 1e6
    print(json.dumps({
        "rows": args.rows,
        "lookups": args.lookups,
        "build_s": round(build_s, 1),
        "api_us_per_lookup": round(api_us, 1),
        "raw_us_per_lookup": round(raw_us, 1),
        "ratio": round(api_us / raw_us, 1),
        "api_cpu_us_per_lookup": round(api_cpu / args.lookups * 1e6, 1),
        "raw_cpu_us_per_lookup": round(raw_cpu / args.lookups * 1e6, 1),
        "cpu_ratio": round(api_cpu / raw_cpu, 1),
        "raw_whole_us_per_lookup": round(whole_us, 1),
        "raw_whole_cpu_us_per_lookup": round(whole_cpu / args.lookups * 1e6, 1),
        "ratio_whole": round(api_us / whole_us, 1),
        "cpu_ratio_whole": round(api_cpu / whole_cpu, 1),
    }))


if __name__ == "__main__":
    main()
