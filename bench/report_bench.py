"""Report benchmark: each core report through ``crm.reports.run`` against the same
aggregate written as one hand-written SQL query, in the same run.

    python bench/report_bench.py [--customers 1000000] [--backends sqlite,postgresql]
                                 [--rounds 3] [--reports funnel,...] [--keep DIR]
                                 [--postgres-url URL]

Seeds once, into a cached database (``--keep DIR``, default
``~/.cache/recrm-bench/reports``; a database already seeded with the same size is
reused): N customers each linked to one of ten projects (a source, an owner of 50
consultants, a stage: half prospects, then visitors, subscribers, buyers, owners),
their stage events (visit, subscription, contract, handover) and about two calls
each with minutes (so a few interactions per customer), a case per 20 customers with
its history (open, start, resolve; some reopened or escalated), a task per 10. SQLite
is filled with ``executemany``, PostgreSQL with ``COPY`` (a schema of its own in the
database of ``--postgres-url``, kept for the next run), not through the import.

Then, for each backend, best of ``--rounds``, for the year 2025 by month:

- ``funnel``, ``sources``, ``cases`` (by department), ``staff`` and ``scorecard``
  through ``crm.reports.run``;
- the baseline: the report's main aggregate as one SQL statement written by hand
  (stage counts per project and month with the median days from visit to contract;
  customers per source and month with those at or past visitor, subscriber, buyer;
  on-time rate, median and 90th percentile of resolution per department,
  ``percentile_cont`` on PostgreSQL, the window-function form on SQLite, without the
  case history the report also reads for response, reopens and escalations;
  interactions, customers contacted and minutes per consultant). The scorecard's
  baseline is the funnel's and the cases' baselines run for two periods.

Prints one JSON object: per backend, seconds of each and ``ratio`` (report /
baseline).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from recrm_core import CRM
from recrm_core.reports import ReportRequest

PROJECTS = [f"P{i:02d}" for i in range(10)]
SOURCES = ["ad", "call", "agency", "referral", "walk_in"]
STAFF = [f"s{i:02d}" for i in range(50)]
STAGES = ["prospect", "visitor", "subscriber", "buyer", "owner"]
WEIGHTS = [50, 25, 10, 10, 5]
EVENTS = {1: "visit", 2: "subscription", 3: "contract", 4: "handover"}
UTC = dt.UTC
YEAR_START = dt.datetime(2025, 1, 1, tzinfo=UTC)
MARK = "report_bench_seeded"


def rows_of(n: int) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """The seed data in chunks of 50,000 customers, each chunk per table."""
    rng = random.Random(20)
    interaction_id = case_id = history_id = task_id = 0
    chunk = 50_000
    for begin in range(1, n + 1, chunk):
        out: dict[str, list[tuple[Any, ...]]] = {k: [] for k in (
            "customers", "customer_projects", "interactions", "cases", "case_history",
            "tasks")}
        for cid in range(begin, min(n, begin + chunk - 1) + 1):
            seen = YEAR_START + dt.timedelta(minutes=rng.randrange(365 * 24 * 60))
            rank = rng.choices(range(5), WEIGHTS)[0]
            owner = STAFF[rng.randrange(len(STAFF))]
            pid = cid % len(PROJECTS) + 1
            out["customers"].append((cid, STAGES[rank], seen, seen))
            at = seen
            for step in range(1, rank + 1):
                at = at + dt.timedelta(hours=rng.randrange(1, 24 * 40))
                interaction_id += 1
                out["interactions"].append((interaction_id, cid, EVENTS[step], pid, owner, at,
                                            None, at))
            out["customer_projects"].append((cid, cid, pid, STAGES[rank], owner,
                                             SOURCES[cid % len(SOURCES)], seen, at, seen))
            for _ in range(rng.choice((1, 2, 3))):
                interaction_id += 1
                when = seen + dt.timedelta(hours=rng.randrange(1, 24 * 60))
                out["interactions"].append((interaction_id, cid, "call", pid, owner, when,
                                            rng.randrange(2, 40), when))
            if cid % 20 == 0:
                case_id += 1
                opened = seen + dt.timedelta(hours=rng.randrange(1, 24 * 90))
                due = opened + dt.timedelta(hours=48)
                hours = rng.expovariate(1 / 30)
                resolved = opened + dt.timedelta(hours=hours) if rng.random() < 0.9 else None
                out["cases"].append((case_id, cid, pid, rng.choice(("repair", "complaint")),
                                     "normal", "resolved" if resolved else "open", "s",
                                     f"D{cid % 5}", owner, 0, due, opened, resolved, opened,
                                     "hotline"))
                steps = [("open", opened, None), ("start", opened + dt.timedelta(
                    hours=hours / 4), owner)]
                if resolved:
                    steps.append(("resolve", resolved, owner))
                    if rng.random() < 0.05:
                        steps.append(("reopen", resolved + dt.timedelta(hours=1), owner))
                for action, when, who in steps:
                    history_id += 1
                    out["case_history"].append((history_id, case_id, action, who, when))
            if cid % 10 == 0:
                task_id += 1
                out["tasks"].append((task_id, cid, pid, "call", owner,
                                     seen + dt.timedelta(days=7), "open", seen))
        yield out


COLUMNS = {
    "customers": "id, stage, created_at, updated_at",
    "customer_projects": "id, customer_id, project_id, stage, owner_staff, source, "
                         "first_seen_at, stage_changed_at, owner_since",
    "interactions": "id, customer_id, kind, project_id, staff, occurred_at, minutes, "
                    "created_at",
    "cases": "id, customer_id, project_id, category, priority, status, subject, department, "
             "assignee, escalation_level, sla_due_at, opened_at, resolved_at, updated_at, "
             "channel",
    "case_history": "id, case_id, action, actor_staff, at",
    "tasks": "id, customer_id, project_id, kind, owner_staff, due_at, status, created_at",
}


def seed_reference(crm: CRM) -> None:
    crm.directory.add_department({"code": "S", "name": "Sales"})
    for i, sid in enumerate(STAFF):
        crm.directory.add_staff({"id": sid, "name": sid,
                                 "role": "manager" if i % 10 == 0 else "sales",
                                 "department": "S"})
    from recrm_core.tables import ProjectRow

    with crm.engine.begin() as conn:
        conn.execute(ProjectRow.__table__.insert(), [  # type: ignore[attr-defined]
            {"id": i + 1, "code": code, "name": code, "created_at": YEAR_START}
            for i, code in enumerate(PROJECTS)])


def seeded(url: str, n: int) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(f"SELECT n FROM {MARK}")).scalar() == n
    except Exception:  # no table yet: not seeded
        return False
    finally:
        engine.dispose()


def seed_sqlite(path: Path, n: int) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with CRM(database_url=f"sqlite:///{path}", create_schema=True) as crm:
        seed_reference(crm)
    conn = sqlite3.connect(path)
    with conn:
        for part in rows_of(n):
            for table, rows in part.items():
                if not rows:
                    continue
                columns = COLUMNS[table]
                marks = ", ".join("?" * len(columns.split(",")))
                data = rows if table != "interactions" else [(*r, "{}") for r in rows]
                extra = ", data" if table == "interactions" else ""
                if table == "interactions":
                    marks += ", ?"
                conn.executemany(f"INSERT INTO {table} ({columns}{extra}) VALUES ({marks})",
                                 [tuple(_sqlite(v) for v in row) for row in data])
        conn.execute(f"CREATE TABLE {MARK} (n INTEGER)")
        conn.execute(f"INSERT INTO {MARK} VALUES (?)", (n,))
    conn.execute("ANALYZE")
    conn.close()


def _sqlite(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return value


def seed_postgresql(url: str, n: int) -> None:
    with CRM(database_url=url, create_schema=True) as crm:
        seed_reference(crm)
    engine = create_engine(url)
    with engine.begin() as conn:
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cursor:
            for part in rows_of(n):
                for table, rows in part.items():
                    extra = ", data" if table == "interactions" else ""
                    with cursor.copy(f"COPY {table} ({COLUMNS[table]}{extra}) FROM STDIN") \
                            as copy:
                        for row in rows:
                            copy.write_row((*row, "{}") if extra else row)
            cursor.execute(f"CREATE TABLE {MARK} (n INTEGER)")
            cursor.execute(f"INSERT INTO {MARK} VALUES ({n})")
            for table in COLUMNS:
                cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


# -- the baselines: one statement each ------------------------------------------------------
def month(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"to_char({column} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')"
    return f"strftime('%Y-%m', datetime({column}, '+480 minutes'))"


def hours(start: str, end: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"extract(epoch FROM ({end} - {start})) / 3600.0"
    return f"(julianday({end}) - julianday({start})) * 24.0"


def median_of(values_sql: str, keys: str, value: str, dialect: str, p: float = 0.5) -> str:
    if dialect == "postgresql":
        return (f"SELECT {keys}, percentile_cont({p}) WITHIN GROUP (ORDER BY {value}) "
                f"FROM ({values_sql}) v WHERE {value} IS NOT NULL GROUP BY {keys}")
    k = int(p * 100)
    return (f"SELECT {keys}, max(CASE WHEN r = (n - 1) * {k} / 100 THEN {value} END) "
            f"FROM (SELECT {keys}, {value}, row_number() OVER (PARTITION BY {keys} ORDER BY "
            f"{value}) - 1 AS r, count(*) OVER (PARTITION BY {keys}) AS n FROM ({values_sql}) "
            f"v WHERE {value} IS NOT NULL) w GROUP BY {keys}")


def baselines(dialect: str, lo: str, hi: str) -> dict[str, list[str]]:
    events = ("SELECT customer_id, project_id, min(CASE WHEN kind = 'visit' THEN occurred_at "
              "END) AS v, min(CASE WHEN kind = 'subscription' THEN occurred_at END) AS s, "
              "min(CASE WHEN kind = 'contract' THEN occurred_at END) AS c, "
              "min(CASE WHEN kind = 'handover' THEN occurred_at END) AS h FROM interactions "
              "WHERE kind IN ('visit', 'subscription', 'contract', 'handover') "
              "GROUP BY customer_id, project_id")
    steps = (f"SELECT l.project_id, {month('e.c', dialect)} AS m, "
             f"{hours('e.v', 'e.c', dialect)} / 24.0 AS days FROM customer_projects l "
             f"JOIN ({events}) e ON e.customer_id = l.customer_id "
             f"AND e.project_id = l.project_id WHERE e.c >= {lo} AND e.c < {hi}")
    funnel = (f"SELECT l.project_id, {month('l.first_seen_at', dialect)}, count(*), "
              f"count(e.v), count(e.s), count(e.c), count(e.h) FROM customer_projects l "
              f"LEFT JOIN ({events}) e ON e.customer_id = l.customer_id AND "
              f"e.project_id = l.project_id WHERE l.first_seen_at >= {lo} AND "
              f"l.first_seen_at < {hi} GROUP BY 1, 2")
    reached = " ".join(
        f", sum(CASE WHEN stage IN ({', '.join(repr(x) for x in STAGES[k:])}) THEN 1 "
        f"ELSE 0 END)" for k in (1, 2, 3))
    sources = (f"SELECT coalesce(source, '(none)'), {month('first_seen_at', dialect)}, "
               f"count(*){reached} FROM customer_projects WHERE first_seen_at >= {lo} "
               f"AND first_seen_at < {hi} GROUP BY 1, 2")
    resolution = (f"SELECT coalesce(department, '(none)') AS d, "
                  f"{month('opened_at', dialect)} AS m, "
                  f"{hours('opened_at', 'resolved_at', dialect)} AS h FROM cases "
                  f"WHERE opened_at >= {lo} AND opened_at < {hi}")
    counts = (f"SELECT coalesce(department, '(none)'), {month('opened_at', dialect)}, "
              f"count(*), sum(CASE WHEN resolved_at <= sla_due_at THEN 1 ELSE 0 END) "
              f"FROM cases WHERE opened_at >= {lo} AND opened_at < {hi} GROUP BY 1, 2")
    staff = (f"SELECT staff, {month('occurred_at', dialect)}, count(*), "
             f"count(DISTINCT customer_id), coalesce(sum(minutes), 0) FROM interactions "
             f"WHERE occurred_at >= {lo} AND occurred_at < {hi} AND staff IS NOT NULL "
             f"GROUP BY 1, 2")
    return {
        "funnel": [funnel + f" UNION ALL SELECT project_id, m, 0, 0, 0, 0, 0 FROM ("
                   f"{median_of(steps, 'project_id, m', 'days', dialect)}) x"],
        "sources": [sources],
        "cases": [counts + " UNION ALL SELECT d, m, 0, 0 FROM ("
                  f"{median_of(resolution, 'd, m', 'h', dialect, 0.9)}) x"],
        "staff": [staff],
    }


def best(rounds: int, work: Callable[[], Any]) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(url: str, dialect: str, rounds: int, names: list[str]) -> dict[str, Any]:
    request = ReportRequest(start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31), by="month")
    lo_t, hi_t = "'2024-12-31 16:00:00'", "'2025-12-31 16:00:00'"
    if dialect == "postgresql":
        lo_t, hi_t = ("'2024-12-31 16:00:00+00'::timestamptz",
                      "'2025-12-31 16:00:00+00'::timestamptz")
    sql = baselines(dialect, lo_t, hi_t)
    # the scorecard covers a quarter and the one before it, per project
    q_lo, q_mid, q_hi = (("'2025-06-30 16:00:00'", "'2025-09-30 16:00:00'",
                          "'2025-12-31 16:00:00'") if dialect == "sqlite" else
                         tuple(f"'{d} 16:00:00+00'::timestamptz" for d in
                               ("2025-06-30", "2025-09-30", "2025-12-31")))
    scorecard_sql = [*baselines(dialect, q_mid, q_hi)["funnel"],
                     *baselines(dialect, q_mid, q_hi)["cases"],
                     *baselines(dialect, q_lo, q_mid)["funnel"],
                     *baselines(dialect, q_lo, q_mid)["cases"]]
    sql["scorecard"] = scorecard_sql
    found: dict[str, Any] = {}
    with CRM(database_url=url) as crm:
        engine = crm.engine
        for name in names:
            wanted = request if name != "scorecard" else ReportRequest(
                start=dt.date(2025, 10, 1), end=dt.date(2025, 12, 31))
            crm.reports.run(name, wanted)  # warm: imports, compiled statements, cache

            def baseline(statements: list[str] = sql[name]) -> None:
                with engine.connect() as conn:
                    for statement in statements:
                        conn.execute(text(statement)).all()

            baseline()
            report_s = best(rounds, lambda name=name, wanted=wanted: crm.reports.run(
                name, wanted))
            baseline_s = best(rounds, baseline)
            found[name] = {"report_s": round(report_s, 3), "baseline_s": round(baseline_s, 3),
                           "ratio": round(report_s / baseline_s, 2) if baseline_s else None}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reports", default="funnel,sources,cases,staff,scorecard",
                        help="which reports to time (comma-separated)")
    parser.add_argument("--keep", metavar="DIR",
                        default=str(Path.home() / ".cache" / "recrm-bench" / "reports"))
    parser.add_argument("--postgres-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    work = Path(args.keep)
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"customers": args.customers}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            path = work / f"reports-{args.customers}.db"
            url = f"sqlite:///{path}"
            started = time.perf_counter()
            if not seeded(url, args.customers):
                seed_sqlite(path, args.customers)
        else:
            schema = f"recrm_report_bench_{args.customers}"
            base = make_url(args.postgres_url)
            url = base.update_query_dict({"options": f"-csearch_path={schema}"}
                                         ).render_as_string(hide_password=False)
            started = time.perf_counter()
            if not seeded(url, args.customers):
                admin = create_engine(base, isolation_level="AUTOCOMMIT")
                with admin.connect() as conn:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                    conn.execute(text(f'CREATE SCHEMA "{schema}"'))
                admin.dispose()
                seed_postgresql(url, args.customers)
        seed_s = round(time.perf_counter() - started, 1)
        engine = create_engine(url)
        with engine.connect() as conn:
            sizes = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                     for t in ("customers", "interactions", "cases")}
        engine.dispose()
        out[backend] = {"seed_or_reuse_s": seed_s, "rows": sizes,
                        "reports": measure(url, backend, args.rounds,
                                           args.reports.split(","))}
        # each backend's figures as soon as they are known: a million rows take a while
        print(json.dumps({backend: out[backend]}), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
