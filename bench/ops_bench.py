"""Per-operation benchmark: the API's single operations against raw inserts.

    python bench/ops_bench.py [--ops 300] [--backends sqlite,postgresql]
                              [--postgres-url URL] [--keep DIR]

For each backend, twice (no plugins; every first-party plugin: membership, survey,
channels, newsletter, sales), on a fresh database each time, times N of each:

- ``crm.customers.add({"name", "mobile"})`` — raw: INSERT the customer, INSERT its
  mobile identity;
- ``crm.interactions.log(cid, {"kind": "call", ...})`` — raw: INSERT the interaction;
- ``crm.customers.set_stage(cid, "visitor", "P1")`` (the customer not yet linked to the
  project) — raw: INSERT the relationship, UPDATE the customer's stage;
- ``crm.cases.open({...})`` with a department and an assignee (no routing) — raw:
  INSERT the case, INSERT its history row;

each raw operation in a transaction of its own on the driver (``sqlite3`` with the
pragmas recrm sets, ``psycopg``), into the same database. Output: one JSON object with
ops/s of both and ``ratio`` (API / raw; the aim is at least 0.3 with no plugins), and
the CPU milliseconds per operation of both with ``cpu_ratio`` (raw CPU / API CPU, the
same sense as ``ratio``: steadier on a loaded machine, and on PostgreSQL it leaves
out the server's share).
The raw side does no validation, identity resolution, hooks or reading back: the
ratio is what the API's guarantees cost per call.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recrm_core import CRM, utcnow

PLUGINS = ["membership", "survey", "channels", "newsletter", "sales"]
OPS = ("customers.add", "interactions.log", "set_stage", "cases.open")


def mobile(n: int, base: int) -> str:
    return f"139{base + n:08d}"


class Clock:
    """Wall and CPU seconds of each operation's block."""

    def __init__(self) -> None:
        self.seconds: dict[str, tuple[float, float]] = {}
        self._started = (0.0, 0.0)

    def start(self) -> None:
        self._started = (time.perf_counter(), time.process_time())

    def stop(self, op: str) -> None:
        wall, cpu = self._started
        self.seconds[op] = (time.perf_counter() - wall, time.process_time() - cpu)


def api_round(crm: CRM, n: int, base: int) -> dict[str, tuple[float, float]]:
    """Wall and CPU seconds for n of each API operation (the customers made by
    ``add`` are used by the others)."""
    clock = Clock()
    clock.start()
    ids = [crm.customers.add({"name": f"客户{i}", "mobile": mobile(i, base)}).customer.id
           for i in range(n)]
    clock.stop("customers.add")
    clock.start()
    for cid in ids:
        crm.interactions.log(cid, {"kind": "call", "channel": "phone", "summary": "回访"})
    clock.stop("interactions.log")
    clock.start()
    for cid in ids:
        crm.customers.set_stage(cid, "visitor", "P1")
    clock.stop("set_stage")
    clock.start()
    for cid in ids:
        crm.cases.open({"customer_id": cid, "category": "inquiry", "subject": "咨询",
                        "department": "客服中心", "assignee": "kf.wang"})
    clock.stop("cases.open")
    return clock.seconds


class Raw:
    """The equivalent writes on the driver, one transaction per operation."""

    def __init__(self, execute: Callable[[str, tuple[Any, ...]], Any],
                 commit: Callable[[], object], begin: Callable[[], object], mark: str,
                 returning_id: Callable[[Any], int], project_id: int, now: Any) -> None:
        self.execute, self.commit, self.begin, self.mark = execute, commit, begin, mark
        self.returning_id, self.project_id, self.now = returning_id, project_id, now

    def sql(self, text: str) -> str:
        return text.replace("?", self.mark)

    def round(self, n: int, base: int) -> dict[str, tuple[float, float]]:
        q, now, clock = self.sql, self.now, Clock()
        clock.start()
        ids = []
        for i in range(n):
            self.begin()
            cid = self.returning_id(self.execute(q(
                "INSERT INTO customers (name, stage, created_at, updated_at)"
                " VALUES (?, 'prospect', ?, ?) RETURNING id"), (f"客户{i}", now, now)))
            self.execute(q("INSERT INTO identities (customer_id, kind, value, display,"
                           " created_at) VALUES (?, 'mobile', ?, ?, ?)"),
                         (cid, "+86" + mobile(i, base), "+86" + mobile(i, base), now))
            self.commit()
            ids.append(cid)
        clock.stop("customers.add")
        clock.start()
        for cid in ids:
            self.begin()
            self.execute(q("INSERT INTO interactions (customer_id, kind, channel, occurred_at,"
                           " summary, data, created_at) VALUES (?, 'call', 'phone', ?, ?,"
                           " '{}', ?)"), (cid, now, "回访", now))
            self.commit()
        clock.stop("interactions.log")
        clock.start()
        for cid in ids:
            self.begin()
            self.execute(q("INSERT INTO customer_projects (customer_id, project_id, stage,"
                           " first_seen_at, stage_changed_at) VALUES (?, ?, 'visitor', ?, ?)"),
                         (cid, self.project_id, now, now))
            self.execute(q("UPDATE customers SET stage = 'visitor', updated_at = ?"
                           " WHERE id = ?"), (now, cid))
            self.commit()
        clock.stop("set_stage")
        clock.start()
        for cid in ids:
            self.begin()
            case_id = self.returning_id(self.execute(q(
                "INSERT INTO cases (customer_id, category, priority, status, subject,"
                " department, assignee, escalation_level, sla_due_at, opened_at, updated_at,"
                " channel, level_since) VALUES (?, 'inquiry', 'normal', 'open', ?, ?, ?, 0,"
                " ?, ?, ?, 'other', ?) RETURNING id"),
                (cid, "咨询", "客服中心", "kf.wang", now, now, now, now)))
            self.execute(q("INSERT INTO case_history (case_id, action, to_value, at)"
                           " VALUES (?, 'open', 'open', ?)"), (case_id, now))
            self.commit()
        clock.stop("cases.open")
        return clock.seconds


def raw_sqlite(db: Path, project_id: int) -> tuple[Raw, Callable[[], None]]:
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL",
                   "cache_size=-65536"):
        conn.execute(f"PRAGMA {pragma}")
    raw = Raw(conn.execute, lambda: conn.execute("COMMIT"),
              lambda: conn.execute("BEGIN IMMEDIATE"), "?",
              lambda cur: int(cur.fetchone()[0]), project_id,
              "2024-01-01 00:00:00.000000")
    return raw, conn.close


def raw_postgresql(dsn: str, schema: str, project_id: int) -> tuple[Raw, Callable[[], None]]:
    import psycopg

    conn = psycopg.connect(dsn, options=f"-c search_path={schema}")
    raw = Raw(conn.execute, conn.commit, lambda: None, "%s",
              lambda cur: int(cur.fetchone()[0]), project_id, utcnow())
    return raw, conn.close


def prepare(crm: CRM) -> int:
    """The project P1 and the case's department and assignee; P1's id."""
    crm.projects.ensure("P1", "Project one")
    crm.directory.add_department({"code": "客服中心", "name": "客服中心"})
    crm.directory.add_staff({"id": "kf.wang", "name": "王", "role": "service",
                             "department": "客服中心"})
    return crm.projects.get("P1").id


def run_backend(backend: str, plugins: list[str], ops: int, work: Path,
                postgres_url: str) -> dict[str, Any]:
    schema = ""
    if backend == "sqlite":
        db = work / f"ops-{len(plugins)}-{uuid.uuid4().hex[:6]}.db"
        url = f"sqlite:///{db}"
    else:
        import psycopg

        schema = f"bench_ops_{uuid.uuid4().hex[:8]}"
        dsn = postgres_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{postgres_url}?options=-csearch_path%3D{schema}"
    try:
        with CRM(database_url=url, plugins=plugins, create_schema=True) as crm:
            project_id = prepare(crm)
            api_round(crm, 20, 90_000_000)  # warm up: connections, compiled statements
            api = api_round(crm, ops, 0)
        if backend == "sqlite":
            raw, close = raw_sqlite(db, project_id)
        else:
            raw, close = raw_postgresql(dsn, schema, project_id)
        try:
            raw.round(20, 80_000_000)
            base = raw.round(ops, 10_000_000)
        finally:
            close()
    finally:
        if backend == "postgresql":
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    out: dict[str, Any] = {}
    for op in OPS:
        api_rate, raw_rate = ops / api[op][0], ops / base[op][0]
        out[op] = {"api_ops_per_s": round(api_rate), "raw_ops_per_s": round(raw_rate),
                   "ratio": round(api_rate / raw_rate, 2),
                   "api_cpu_ms": round(api[op][1] / ops * 1e3, 3),
                   "raw_cpu_ms": round(base[op][1] / ops * 1e3, 3),
                   "cpu_ratio": round(base[op][1] / api[op][1], 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=300, help="operations of each kind")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the databases")
    args = parser.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="recrm-ops-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"ops": args.ops, "aim_ratio_no_plugins": 0.3}
    for backend in args.backends.split(","):
        result[backend] = {
            "no_plugins": run_backend(backend, [], args.ops, work, args.postgres_url),
            "all_plugins": run_backend(backend, PLUGINS, args.ops, work, args.postgres_url),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
