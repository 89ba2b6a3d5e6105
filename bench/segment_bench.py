"""Segment benchmark: ``crm.segments.count`` against the best hand-written SQL.

    python bench/segment_bench.py [--rows 1000000] [--runs 5] [--backends sqlite]
                                  [--cache DIR] [--postgres-url URL]

Builds (once, then reused from ``--cache``, default ``~/.cache/recrm-bench``) a
database with the recrm schema holding N customers, bulk-inserted straight into the
core tables: every customer linked to one of four projects, one in seven to a second
one, at a stage drawn from a fixed cycle. Then, for each condition below, times the
count through the API and each hand-written query for the same condition on the same
connection's database, best of ``--runs``:

- ``project``: customers at project P2 (``{"field": "project", "op": "eq"}``);
- ``project_stage``: at P2 and a buyer or owner there (two conditions on one
  relationship);
- ``project_and_persona``: at P2 and the persona ``investor`` (a customers column).

The baseline of each condition is the fastest of its hand-written forms (``IN``,
``EXISTS``, ``COUNT(DISTINCT)`` over a join), so the ratio is against the best SQL a
person would write, not against the form the compiler chose. Output: one JSON object
with, per backend and condition, the API's and the best hand-written milliseconds,
which hand-written form won, and ``ratio`` (API / best; the goal is at most 1.5).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from recrm_core import CRM

SCHEMA_VERSION = 1  # bump when what build() writes changes
PROJECTS = ("P1", "P2", "P3", "P4")
STAGES = ("prospect", "prospect", "visitor", "prospect", "visitor", "subscriber", "buyer",
          "owner", "prospect", "visitor", "buyer")
PERSONAS = ("first_time", "upgrader", "investor", "luxury", "retiree", None)
NOW = "2024-01-01 00:00:00.000000"

CONDITIONS: dict[str, dict[str, Any]] = {
    "project": {"field": "project", "op": "eq", "value": "P2"},
    "project_stage": {"all": [{"field": "project", "op": "eq", "value": "P2"},
                              {"field": "project_stage", "op": "in",
                               "value": ["buyer", "owner"]}]},
    "project_and_persona": {"all": [{"field": "project", "op": "eq", "value": "P2"},
                                    {"field": "persona", "op": "eq", "value": "investor"}]},
}
_ACTIVE = "c.merged_into IS NULL AND c.erased_at IS NULL"
_LINK = ("SELECT cp.customer_id FROM customer_projects cp JOIN projects p"
         " ON p.id = cp.project_id WHERE p.code = 'P2'{extra}")
_HAND: dict[str, dict[str, str]] = {}
for _name, _extra, _outer in (
    ("project", "", ""),
    ("project_stage", " AND cp.stage IN ('buyer', 'owner')", ""),
    ("project_and_persona", "", " AND c.persona = 'investor'"),
):
    _link = _LINK.format(extra=_extra)
    _HAND[_name] = {
        "in": f"SELECT count(*) FROM customers c WHERE {_ACTIVE}{_outer} AND c.id IN ({_link})",
        "exists": (f"SELECT count(*) FROM customers c WHERE {_ACTIVE}{_outer} AND EXISTS ("
                   + _link.replace("WHERE", "WHERE cp.customer_id = c.id AND") + ")"),
        "join": ("SELECT count(DISTINCT c.id) FROM customers c JOIN customer_projects cp"
                 " ON cp.customer_id = c.id JOIN projects p ON p.id = cp.project_id"
                 f" WHERE p.code = 'P2'{_extra} AND {_ACTIVE}{_outer}"),
    }


def _links(rows: int) -> list[tuple[int, int, int, str]]:
    """(link id, customer id, project id, stage) for every customer."""
    out: list[tuple[int, int, int, str]] = []
    for cid in range(1, rows + 1):
        out.append((len(out) + 1, cid, 1 + cid % 4, STAGES[cid % len(STAGES)]))
        if cid % 7 == 0:
            out.append((len(out) + 1, cid, 1 + (cid + 1) % 4, STAGES[(cid // 7) % len(STAGES)]))
    return out


def _customers(rows: int) -> list[tuple[Any, ...]]:
    return [(cid, f"客户{cid}", PERSONAS[cid % len(PERSONAS)], "prospect", NOW, NOW)
            for cid in range(1, rows + 1)]


def build_sqlite(db: Path, rows: int) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with CRM(database_url=f"sqlite:///{db}", plugins=[], create_schema=True):
        pass
    conn = sqlite3.connect(db)
    with conn:
        conn.executemany("INSERT INTO projects (id, code, name, created_at) VALUES (?, ?, ?, ?)",
                         [(i + 1, code, code, NOW) for i, code in enumerate(PROJECTS)])
        conn.executemany("INSERT INTO customers (id, name, persona, stage, created_at,"
                         " updated_at) VALUES (?, ?, ?, ?, ?, ?)", _customers(rows))
        conn.executemany("INSERT INTO customer_projects (id, customer_id, project_id, stage,"
                         " first_seen_at, stage_changed_at) VALUES (?, ?, ?, ?, ?, ?)",
                         [(*link, NOW, NOW) for link in _links(rows)])
    conn.execute("ANALYZE")
    conn.close()


def build_postgresql(url: str, schema: str, rows: int) -> None:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    with CRM(database_url=_pg_url(url, schema), plugins=[], create_schema=True):
        pass
    with psycopg.connect(dsn, options=f"-c search_path={schema}") as conn:
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO projects (id, code, name, created_at)"
                            " VALUES (%s, %s, %s, %s)",
                            [(i + 1, code, code, NOW) for i, code in enumerate(PROJECTS)])
            with cur.copy("COPY customers (id, name, persona, stage, created_at, updated_at)"
                          " FROM STDIN") as copy:
                for row in _customers(rows):
                    copy.write_row(row)
            with cur.copy("COPY customer_projects (id, customer_id, project_id, stage,"
                          " first_seen_at, stage_changed_at) FROM STDIN") as copy:
                for link in _links(rows):
                    copy.write_row((*link, NOW, NOW))
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()


def _pg_url(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def _timed(work: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def measure(crm: CRM, runs: int) -> dict[str, Any]:
    """Best of ``runs`` of each; the API and the hand-written forms alternate within
    a run, so a burst of load on a shared machine hits them alike."""
    out: dict[str, Any] = {}
    for name, definition in CONDITIONS.items():
        best: dict[str, float] = {}
        api_n = crm.segments.count(definition)  # warm: registry, statement, page cache
        with crm.engine.connect() as conn:
            for _ in range(runs):
                seconds, n = _timed(lambda d=definition: crm.segments.count(d))  # type: ignore[misc]
                best["api"] = min(best.get("api", seconds), seconds)
                for form, sql in _HAND[name].items():
                    seconds, n = _timed(lambda s=sql: int(conn.execute(text(s)).scalar()))  # type: ignore[misc]
                    if n != api_n:
                        raise SystemExit(f"{name}: hand-written {form} counted {n}, "
                                         f"the API {api_n}")
                    best[form] = min(best.get(form, seconds), seconds)
                conn.rollback()
        api_s = best.pop("api")
        winner = min(best, key=best.__getitem__)
        out[name] = {"matches": api_n, "api_ms": round(api_s * 1000, 1),
                     "best_hand_ms": round(best[winner] * 1000, 1), "best_hand_form": winner,
                     "hand_ms": {k: round(v * 1000, 1) for k, v in best.items()},
                     "ratio": round(api_s / best[winner], 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backends", default="sqlite", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "recrm-bench"),
                        help="where the built databases are kept and reused")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"rows": args.rows, "runs": args.runs, "goal_ratio": 1.5}
    for backend in args.backends.split(","):
        tag = f"segments-v{SCHEMA_VERSION}-{args.rows}"
        marker = cache / f"{tag}-{backend}.built"
        started = time.perf_counter()
        if backend == "sqlite":
            db = cache / f"{tag}.db"
            if not (marker.exists() and db.exists()):
                build_sqlite(db, args.rows)
                marker.touch()
            url = f"sqlite:///{db}"
        elif backend == "postgresql":
            schema = f"bench_segments_{args.rows}"
            if not marker.exists():
                build_postgresql(args.postgres_url, schema, args.rows)
                marker.touch()
            url = _pg_url(args.postgres_url, schema)
        else:
            raise SystemExit(f"unknown backend {backend!r}")
        build_s = time.perf_counter() - started
        with CRM(database_url=url, plugins=[]) as crm:
            result[backend] = {"build_s": round(build_s, 1), **measure(crm, args.runs)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
