"""Import benchmark: ``recrm customers import`` against raw inserts of the same file.

    python bench/import_bench.py --rows 100000 [--data FILE] [--runs N] [--batch N]
        [--id-cards FRACTION] [--plugins [--plugin-rounds N]] [--plugins-callgrind]
        [--keep DIR]
    python bench/import_bench.py --backend postgresql --rows 200000 [--second-file]
        [--postgres-url URL]

Generates one CSV of N realistic customers (Chinese names, ~4% repeated mobiles that
merge, ~1% invalid rows, a project column), then times, as whole processes on that
same file:

- ``recrm --db sqlite:///... customers import FILE --json``;
- a baseline that reads the file with the ``csv`` module and inserts every row with
  ``sqlite3.executemany`` into an equivalent table (UNIQUE on mobile, one
  transaction, no validation);
- the own-schema baseline: raw ``sqlite3.executemany`` into recrm's own empty schema
  (its tables and indexes, its connection settings, ``--batch`` rows a transaction);
- with ``--plugins``: the import through the API with no plugin, one and five no-op
  plugins implementing ``recrm_customers_imported`` (the hook's overhead), compared
  on CPU time, the counts interleaved round by round;
- with ``--plugins-callgrind``: no plugin and five, counted in instructions under
  valgrind (load-independent; start-up subtracted).

With ``--backend postgresql`` the database is a fresh schema of ``--postgres-url``
(migrated before timing, dropped afterwards) and the baselines, in the same run, are
``psql \\copy`` of the file into one table, psycopg's ``executemany`` into one
table with UNIQUE(mobile) and COPY into recrm's own schema. ``--second-file`` then
imports a second, different file into the database that holds the first
(``second_over_first``: its rows/s over the first's; flat is 1). ``--runs``,
``--batch``, ``--plugins`` and ``--plugins-callgrind`` are SQLite's only.

The recrm children run in the work directory without the caller's ``RECRM_*``
variables. Prints one JSON object. Peak memory is the child's own ``ru_maxrss``
(``os.wait4``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
SURNAMES += "余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红文斌宇浩凯鹏博晨"
GIVEN += "欣怡子轩梓涵雨萱"
PREFIXES = ("130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152",
            "155", "156", "157", "158", "159", "166", "176", "177", "180", "181", "185",
            "186", "187", "188", "189", "198", "199")
PROJECTS = ("XL1", "XL2", "HB-ONE", "JD3", "YH-PARK")
SOURCES = ("web", "call", "agency", "walk-in", "wechat", None)
PERSONAS = ("刚需", "改善", "投资", "高端", "养老", "first_time", None)
GENDERS = ("男", "女", "M", "F", None)
DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "sina.com", "outlook.com")
HEADER = ["name", "mobile", "email", "gender", "birth_date", "source", "project", "persona",
          "budget", "owner_staff"]


_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_card(rng: random.Random, birth: str) -> str:
    """A valid 18-character ID number born on ``birth`` (Beijing, Dongcheng)."""
    body = f"110101{birth.replace('-', '')}{rng.randrange(1000):03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def generate(path: Path, rows: int, seed: int = 7, id_cards: float = 0.0) -> None:
    rng = random.Random(seed)
    # a second generator, so the other columns stay those of runs without ID cards
    cards = random.Random(seed + 1)
    seen: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER + (["id_card"] if id_cards else []))
        for i in range(rows):
            roll = rng.random()
            if seen and roll < 0.04:
                mobile = rng.choice(seen)  # the same person again: a merge
            elif roll < 0.05:
                mobile = "1234" + str(rng.randrange(1000))  # invalid: rejected
            else:
                mobile = rng.choice(PREFIXES) + f"{rng.randrange(10**8):08d}"
                if len(seen) < 50_000:
                    seen.append(mobile)
                elif rng.random() < 0.1:
                    seen[rng.randrange(len(seen))] = mobile
            given = "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
            name = rng.choice(SURNAMES) + given
            email = f"user{i}@{rng.choice(DOMAINS)}" if rng.random() < 0.5 else ""
            birth = f"{rng.randint(1950, 2002)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            budget = rng.choice(
                (f"{rng.randint(80, 900)}万", f"{rng.randint(8, 90) * 100_000:,}", "")
            )
            gender = rng.choice(GENDERS) or ""
            row = [name, mobile, email, gender, birth, rng.choice(SOURCES) or "",
                   rng.choice(PROJECTS), rng.choice(PERSONAS) or "", budget,
                   f"s{rng.randint(1, 40):03d}"]
            if id_cards:
                card = id_card(cards, birth) if cards.random() < id_cards else ""
                if card:
                    row[3] = ""  # the ID number says the gender; a contradiction is refused
                row.append(card)
            out.writerow(row)


BASELINE = r"""
import csv, sqlite3, sys
db, path = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(db)
conn.execute(
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, mobile TEXT UNIQUE,"
    " email TEXT, gender TEXT, birth_date TEXT, source TEXT, project TEXT, persona TEXT,"
    " budget TEXT, owner_staff TEXT)"
)
with open(path, encoding="utf-8", newline="") as fh:
    reader = csv.reader(fh)
    next(reader)
    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO customers (name, mobile, email, gender, birth_date, source,"
            " project, persona, budget, owner_staff) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (row[:10] for row in reader),
        )
conn.close()
"""

OWN_SCHEMA = r"""
import csv, sqlite3, sys
db, path, batch, wal_pages = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
conn = sqlite3.connect(db, isolation_level=None)
# the connection settings recrm's engine gives every SQLite connection (db.py), and
# the checkpoint spacing its import gives its own (importing/walcheckpoints.py)
for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL",
               "cache_size=-65536", f"wal_autocheckpoint={wal_pages}"):
    conn.execute(f"PRAGMA {pragma}")
now = "2026-01-01 00:00:00.000000"
projects: dict[str, int] = {}
seen: dict[str, int] = {}
next_id = (conn.execute("SELECT max(id) FROM customers").fetchone()[0] or 0) + 1
CUSTOMER = ("INSERT INTO customers (id, name, gender, birth_date, persona, budget, email,"
            " stage, created_at, updated_at) VALUES (?,?,?,?,?,?,?,'prospect',?,?)")
IDENTITY = ("INSERT OR IGNORE INTO identities (customer_id, kind, value, display, created_at)"
            " VALUES (?,?,?,?,?)")
LINK = ("INSERT OR IGNORE INTO customer_projects (customer_id, project_id, stage, owner_staff,"
        " source, first_seen_at, stage_changed_at) VALUES (?,?,'prospect',?,?,?,?)")

def write(rows):
    global next_id
    customers, identities, links = [], [], []
    for r in rows:
        code = r[6]
        if code not in projects:
            projects[code] = conn.execute(
                "INSERT INTO projects (code, name, created_at) VALUES (?,?,?)", (code, code, now)
            ).lastrowid
        cid = seen.get(r[1])
        if cid is None:
            cid = seen[r[1]] = next_id
            next_id += 1
            customers.append((cid, r[0], r[3] or None, r[4] or None, r[7] or None,
                              r[8] or None, r[2] or None, now, now))
            identities.append((cid, "mobile", r[1], r[1], now))
            if len(r) > 10 and r[10]:
                identities.append((cid, "id_card", r[10], r[10], now))
        links.append((cid, projects[code], r[9] or None, r[5] or None, now, now))
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(CUSTOMER, customers)
    conn.executemany(IDENTITY, identities)
    conn.executemany(LINK, links)
    conn.execute("COMMIT")

with open(path, encoding="utf-8", newline="") as fh:
    reader = csv.reader(fh)
    next(reader)
    rows = []
    for row in reader:
        rows.append(row)
        if len(rows) == batch:
            write(rows)
            rows = []
    write(rows)
conn.close()
"""

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

#: the one-table PostgreSQL baselines: the CSV's columns as text, no validation
PG_TABLE = (
    "CREATE TABLE {name} (id BIGSERIAL PRIMARY KEY, name TEXT, mobile TEXT {unique},"
    " email TEXT, gender TEXT, birth_date TEXT, source TEXT, project TEXT, persona TEXT,"
    " budget TEXT, owner_staff TEXT, id_card TEXT)"
)

PG_EXECUTEMANY = r"""
import csv, sys, psycopg
dsn, schema, path = sys.argv[1], sys.argv[2], sys.argv[3]
with psycopg.connect(dsn, options=f"-csearch_path={schema}") as conn, \
        open(path, encoding="utf-8", newline="") as fh:
    reader = csv.reader(fh)
    next(reader)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO baseline_many (name, mobile, email, gender, birth_date, source,"
            " project, persona, budget, owner_staff) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
            " ON CONFLICT (mobile) DO NOTHING",
            [row[:10] for row in reader],
        )
"""

#: the floor for recrm on PostgreSQL: the same rows COPY'd into recrm's own three
#: tables and their indexes (a customer, its mobile, its project link), ids from the
#: sequences, repeated mobiles skipped in memory; no validation, no normalising.
#: Prints the CPU seconds its server process spent (from /proc when the server runs
#: on this machine, else null): steadier than wall time on a shared machine.
PG_OWN_SCHEMA = r"""
import csv, datetime, json, os, sys, psycopg
dsn, schema, path = sys.argv[1], sys.argv[2], sys.argv[3]
now = datetime.datetime.now(datetime.timezone.utc)

def server_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

with psycopg.connect(dsn, options=f"-csearch_path={schema}") as conn, \
        open(path, encoding="utf-8", newline="") as fh:
    started = server_cpu(conn.info.backend_pid)
    reader = csv.reader(fh)
    next(reader)
    projects = {}
    for code in ("XL1", "XL2", "HB-ONE", "JD3", "YH-PARK"):
        projects[code] = conn.execute(
            "INSERT INTO projects (code, name, created_at) VALUES (%s, %s, %s)"
            " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            (code, code, now)).fetchone()[0]
    seen = {m for (m,) in conn.execute("SELECT value FROM identities WHERE kind = 'mobile'")}
    rows = []
    for row in reader:
        if row[1] in seen:
            continue
        seen.add(row[1])
        rows.append(row)
    ids = [i for (i,) in conn.execute(
        "SELECT nextval(pg_get_serial_sequence('customers', 'id'))"
        " FROM generate_series(1, %s)", (len(rows),))]
    with conn.cursor() as cur:
        with cur.copy("COPY customers (id, name, email, persona, stage, created_at,"
                      " updated_at) FROM STDIN") as copy:
            for cid, row in zip(ids, rows):
                copy.write_row((cid, row[0], row[2] or None, row[7] or None, "prospect",
                                now, now))
        with cur.copy("COPY identities (customer_id, kind, value, display, created_at)"
                      " FROM STDIN") as copy:
            for cid, row in zip(ids, rows):
                copy.write_row((cid, "mobile", row[1], row[1], now))
        with cur.copy("COPY customer_projects (customer_id, project_id, stage, owner_staff,"
                      " source, first_seen_at, stage_changed_at) FROM STDIN") as copy:
            for cid, row in zip(ids, rows):
                copy.write_row((cid, projects[row[6]], "prospect", row[9] or None,
                                row[5] or None, now, now))
    conn.commit()
    ended = server_cpu(conn.info.backend_pid)
    print(json.dumps(None if started is None or ended is None else round(ended - started, 2)))
"""

API_CHILD = r"""
import json, resource, sys
from recrm_core import CRM, hookimpl

class NoOp:
    @hookimpl
    def recrm_customers_imported(self, uow, records, load):
        return None

db, path, plugins = sys.argv[1], sys.argv[2], int(sys.argv[3])
# plugins are named after their class, so five distinct classes
noops = [type(f"NoOp{i}", (NoOp,), {})() for i in range(plugins)]
crm = CRM(database_url=db, plugins=noops, create_schema=True)
summary = crm.importer.import_csv(path).model_dump()
# the importing process's own CPU (the hook runs here; its validation worker never
# sees a plugin), beside the whole process tree's that run_child measures
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"summary": summary, "importer_cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def run_child(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS in MB, stdout and CPU seconds of one child process.
    With ``cwd`` it runs there, without the caller's RECRM_* variables (a recrm.toml
    or settings of the caller's would change what is measured)."""
    if cwd is not None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECRM_")} | (env or {})
    elif env:
        env = {**os.environ, **env}
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {err}")
        out.seek(0)
        # ru_maxrss is in KiB on Linux
        cpu = usage.ru_utime + usage.ru_stime
        return elapsed, usage.ru_maxrss / 1024, out.read().decode(), cpu


@contextmanager
def pg_schema(url: str) -> Iterator[tuple[str, str]]:
    """A fresh schema: (its name, the SQLAlchemy URL that uses it); dropped on exit."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    schema = f"recrm_import_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield schema, scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def bench_postgresql(
    args: argparse.Namespace, work: Path, data: Path, rows: int
) -> dict[str, Any]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from recrm_core import CRM
    from recrm_core.keys import create_key_file
    from recrm_core.migrating import upgrade

    recrm = str(Path(sys.executable).with_name("recrm"))
    plain = make_url(args.postgres_url)
    dsn = plain.set(drivername="postgresql").render_as_string(hide_password=False)
    report: dict[str, Any] = {"rows": rows, "backend": "postgresql",
                              "id_cards": args.id_cards}
    # The baselines' tables in a schema of their own: recrm's must hold only its tables.
    with pg_schema(args.postgres_url) as (bschema, burl):
        engine = create_engine(burl, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(PG_TABLE.format(name="baseline_copy", unique="")))
            conn.execute(text(PG_TABLE.format(name="baseline_many", unique="UNIQUE")))
        engine.dispose()
        # the file's own columns: with --id-cards it has an eleventh
        with data.open(encoding="utf-8", newline="") as fh:
            columns = ", ".join(next(csv.reader(fh)))
        copy_s, _, _, _ = run_child([
            "psql", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c", f"SET search_path TO {bschema}",
            "-c", f"\\copy baseline_copy ({columns}) FROM '{data}' WITH (FORMAT csv, HEADER)",
        ])
        many_s, _, _, _ = run_child([sys.executable, "-c", PG_EXECUTEMANY, dsn, bschema,
                                     str(data)])
    with pg_schema(args.postgres_url) as (oschema, ourl):
        with CRM(database_url=ourl, plugins=[]) as crm:
            upgrade(crm)
        own_s, _, own_out, _ = run_child([sys.executable, "-c", PG_OWN_SCHEMA, dsn, oschema,
                                          str(data)])
        report["own_schema_server_cpu_s"] = json.loads(own_out)
        if args.second_file:
            second = work / "customers-2.csv"
            generate(second, rows, seed=8, id_cards=args.id_cards)
            own2_s, _, own2_out, _ = run_child([sys.executable, "-c", PG_OWN_SCHEMA, dsn,
                                                oschema, str(second)])
            report["own_schema_second_server_cpu_s"] = json.loads(own2_out)
            report["own_schema_second_over_first"] = round(own_s / own2_s, 3)
    report["own_schema_copy_rows_per_s"] = round(rows / own_s)
    with pg_schema(args.postgres_url) as (_, url):
        key_file = work / "recrm.key"
        key_file.unlink(missing_ok=True)
        create_key_file(key_file)
        with CRM(database_url=url, plugins=[]) as crm:
            upgrade(crm)
        env_key = {"RECRM_KEY_FILE": str(key_file)}
        recrm_s, recrm_rss, out, recrm_cpu = run_child(
            [recrm, "--db", url, "customers", "import", str(data), "--json"],
            env=env_key, cwd=work,
        )
        report |= {
            "copy_rows_per_s": round(rows / copy_s),
            "executemany_rows_per_s": round(rows / many_s),
            "recrm_rows_per_s": round(rows / recrm_s),
            "ratio_to_copy": round(copy_s / recrm_s, 3),
            "ratio_to_executemany": round(many_s / recrm_s, 3),
            "ratio_to_own_schema_copy": round(own_s / recrm_s, 3),
            "recrm_cpu_s": round(recrm_cpu, 2),
            "recrm_peak_rss_mb": round(recrm_rss, 1),
            "recrm_summary": json.loads(out),
        }
        if args.second_file:
            second_s, _, out2, second_cpu = run_child(
                [recrm, "--db", url, "customers", "import", str(second), "--json"],
                env=env_key, cwd=work,
            )
            report |= {
                "second_rows_per_s": round(rows / second_s),
                "second_over_first": round(recrm_s / second_s, 3),
                "second_cpu_s": round(second_cpu, 2),
                "second_summary": json.loads(out2),
            }
    return report


#: the plugin counts the overhead compares, and the order each round runs them in: a
#: rotation, so drift on a shared machine (another process starting, the page cache
#: warming) falls on every count alike instead of on whichever runs last
PLUGIN_COUNTS = (0, 1, 5)


def plugin_overhead(work: Path, data: Path, rows: int, rounds: int) -> dict[str, Any]:
    """The import through the API with 0, 1 and 5 no-op plugins on the batch hook,
    interleaved: each round runs every count once (in rotated order) on a fresh,
    migrated database. Each count's figure is its least CPU over the rounds."""
    from recrm_core import CRM

    total: dict[int, list[float]] = {n: [] for n in PLUGIN_COUNTS}
    importer: dict[int, list[float]] = {n: [] for n in PLUGIN_COUNTS}
    for round_no in range(rounds):
        shift = round_no % len(PLUGIN_COUNTS)
        for count in PLUGIN_COUNTS[shift:] + PLUGIN_COUNTS[:shift]:
            pdb = work / f"api-{count}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{pdb}{suffix}").unlink(missing_ok=True)
            # migrated before timing, as the CLI's figures find their database
            CRM(database_url=f"sqlite:///{pdb}", create_schema=True).close()
            _, _, out, secs = run_child(
                [sys.executable, "-c", API_CHILD, f"sqlite:///{pdb}", str(data), str(count)],
                cwd=work,
            )
            total[count].append(secs)
            importer[count].append(json.loads(out)["importer_cpu_s"])

    def pct(figures: dict[int, list[float]], low: int, high: int) -> float:
        return round((min(figures[high]) / min(figures[low]) - 1) * 100, 1)

    return {
        "plugin_rounds": rounds,
        # CPU-time rates: the difference is small, wall time on a busy machine is noise
        **{f"api_rows_per_s_{n}_noop_plugins": round(rows / min(total[n]))
           for n in PLUGIN_COUNTS},
        # 0 -> 5 plugins: what the aim is about; 1 -> 5 isolates the pluggy
        # calls from building what the hook receives (once, whatever the number of
        # plugins)
        "plugin_overhead_pct": pct(total, 0, 5),
        "plugin_overhead_1_to_5_pct": pct(total, 1, 5),
        # the same on the importing process alone, where the hook runs: the validation
        # worker's own noise left out
        "plugin_overhead_importer_pct": pct(importer, 0, 5),
        "plugin_overhead_importer_1_to_5_pct": pct(importer, 1, 5),
        "importer_cpu_s": {str(n): [round(x, 2) for x in importer[n]] for n in PLUGIN_COUNTS},
        "total_cpu_s": {str(n): [round(x, 2) for x in total[n]] for n in PLUGIN_COUNTS},
    }


def plugin_instructions(work: Path, data: Path, rows: int) -> dict[str, Any]:
    """The same comparison (0 and 5 no-op plugins) counted in instructions under
    valgrind's callgrind, which no other process on the machine changes: the
    importing process (where the hook runs) and its validation worker separately,
    each file's import beyond start-up (an import of the header alone, the same
    plugins registered, subtracted). Slow (~50x): meant for 20k rows."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--plugins-callgrind needs valgrind (apt-get install valgrind)")
    header = work / "header-only.csv"
    with data.open(encoding="utf-8") as fh:
        header.write_text(fh.readline(), encoding="utf-8")

    def counted(count: int, path: Path) -> tuple[int, int]:
        from recrm_core import CRM

        pdb = work / f"cg-{count}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{pdb}{suffix}").unlink(missing_ok=True)
        CRM(database_url=f"sqlite:///{pdb}", create_schema=True).close()
        out_dir = Path(tempfile.mkdtemp(prefix="cg-", dir=work))
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_dir}/cg.%p",
             sys.executable, "-c", API_CHILD, f"sqlite:///{pdb}", str(path), str(count)],
            cwd=work, capture_output=True, text=True, check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("RECRM_")},
        )
        if proc.returncode != 0:
            raise SystemExit(f"callgrind run failed ({proc.returncode}): {proc.stderr[-500:]}")
        # one file per process: the lowest pid is the importing process (valgrind keeps
        # the guest's pid), any other its forked validation worker
        totals = sorted(
            (int(f.name.split(".")[1]), _callgrind_total(f)) for f in out_dir.glob("cg.*"))
        shutil.rmtree(out_dir)
        return totals[0][1], sum(n for _, n in totals[1:])

    figures: dict[str, Any] = {}
    work_done: dict[int, tuple[int, int]] = {}
    for count in (0, 5):
        importer, worker = counted(count, data)
        start_up, _ = counted(count, header)
        work_done[count] = (importer - start_up, worker)
        figures[f"instructions_{count}_noop_plugins"] = {
            "importer": importer, "importer_start_up": start_up, "worker": worker}
    (imp0, wrk0), (imp5, wrk5) = work_done[0], work_done[5]
    return {
        "callgrind_rows": rows,
        **figures,
        "importer_instructions_per_row": {
            "0": round(imp0 / rows), "5": round(imp5 / rows)},
        # the hook's cost where it runs, start-up left out
        "plugin_overhead_importer_instructions_pct": round((imp5 / imp0 - 1) * 100, 2),
        # the whole import (both processes, start-up left out): the figure
        "plugin_overhead_instructions_pct": round(
            ((imp5 + wrk5) / (imp0 + wrk0) - 1) * 100, 2),
    }


def _callgrind_total(path: Path) -> int:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise SystemExit(f"{path}: no callgrind summary")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--plugins", action="store_true",
                        help="SQLite: also measure 0, 1 and 5 no-op recrm_customers_imported"
                        " plugins")
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the files")
    parser.add_argument("--data", metavar="FILE",
                        help="import this CSV (written by an earlier run) instead of a new one")
    parser.add_argument("--runs", type=int, default=1, help="SQLite: best of N alternating runs")
    parser.add_argument("--plugin-rounds", type=int, default=3, metavar="N",
                        help="with --plugins: rounds of 0, 1 and 5 plugins, interleaved")
    parser.add_argument("--plugins-callgrind", action="store_true",
                        help="SQLite: 0 and 5 no-op plugins counted in instructions"
                        " (valgrind; ~50x slower: use about 20k rows)")
    parser.add_argument("--batch", type=int, default=2000,
                        help="SQLite: rows per transaction of the own-schema baseline (recrm's"
                        " import_batch_size)")
    parser.add_argument("--id-cards", type=float, default=0.0, metavar="FRACTION",
                        help="give this fraction of the rows an ID number (0 to 1)")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL,
                        help="PostgreSQL: the server and database (a fresh schema in it)")
    parser.add_argument("--schema-in-run", action="store_true",
                        help="SQLite: let the timed recrm import create its database's schema"
                        " (the setup before session 4) instead of finding it migrated")
    parser.add_argument("--second-file", action="store_true",
                        help="PostgreSQL: also import a second file into the same database")
    args = parser.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="recrm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    # absolute paths: recrm's children run in the work directory
    work = work.resolve()
    if args.data:
        data = Path(args.data).resolve()
        with data.open(encoding="utf-8") as fh:
            rows = sum(1 for _ in fh) - 1
    else:
        data = work / "customers.csv"
        generate(data, args.rows, id_cards=args.id_cards)
        rows = args.rows
    if args.backend == "postgresql":
        print(json.dumps(bench_postgresql(args, work, data, rows)))
        return
    recrm = [str(Path(sys.executable).with_name("recrm"))]
    from recrm_core import CRM
    from recrm_core.importing.walcheckpoints import IMPORT_WAL_PAGES
    from recrm_core.keys import create_key_file

    def fresh(path: Path) -> Path:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return path

    # Best of --runs, alternating the three, so a busy moment of this shared machine
    # hits each of them alike.
    base: list[tuple[float, float, str, float]] = []
    own: list[tuple[float, float, str, float]] = []
    mine: list[tuple[float, float, str, float]] = []
    for _ in range(args.runs):
        base_db = fresh(work / "baseline.db")
        base.append(run_child([sys.executable, "-c", BASELINE, str(base_db), str(data)]))

        # recrm's own schema, empty, as the import finds it; then raw inserts into it
        own_db = fresh(work / "own.db")
        CRM(database_url=f"sqlite:///{own_db}", create_schema=True).close()
        own.append(run_child([sys.executable, "-c", OWN_SCHEMA, str(own_db), str(data),
                              str(args.batch), str(IMPORT_WAL_PAGES)]))

        db = fresh(work / "recrm.db")
        # The key file the ID numbers are hashed and encrypted with, where the CLI looks
        # for it by default (beside the database file); a fresh one for the fresh database.
        key_file = work / "recrm.key"
        key_file.unlink(missing_ok=True)
        create_key_file(key_file)
        if not args.schema_in_run:
            # empty and migrated, as the own-schema baseline finds its database
            CRM(database_url=f"sqlite:///{db}", create_schema=True).close()
        mine.append(run_child(
            [*recrm, "--db", f"sqlite:///{db}", "customers", "import", str(data), "--json"],
            cwd=work,
        ))
    base_s, base_rss, _, base_cpu = min(base)
    own_s, own_rss, _, own_cpu = min(own)
    recrm_s, _, out, recrm_cpu = min(mine)
    summary = json.loads(out)
    report: dict[str, Any] = {
        "rows": rows,
        "id_cards": args.id_cards,
        "schema_in_run": args.schema_in_run,
        "runs": args.runs,
        # pages of WAL between checkpoints, in recrm's import and the own-schema baseline
        "wal_autocheckpoint": IMPORT_WAL_PAGES,
        "baseline_rows_per_s": round(rows / base_s),
        "own_schema_rows_per_s": round(rows / own_s),
        "recrm_rows_per_s": round(rows / recrm_s),
        "ratio": round(base_s / recrm_s, 3),
        # the aim: recrm against raw inserts into its own tables and indexes
        "own_schema_ratio": round(own_s / recrm_s, 3),
        "recrm_peak_rss_mb": round(max(r[1] for r in mine), 1),
        # CPU seconds are steadier than wall time on a shared machine; recrm's CPU time
        # counts its validation worker too (RUSAGE of the child and its children), so
        # this ratio shows the work done, the wall ratio what both cores bought
        "baseline_cpu_s": round(base_cpu, 2),
        "own_schema_cpu_s": round(own_cpu, 2),
        "recrm_cpu_s": round(recrm_cpu, 2),
        "cpu_ratio": round(base_cpu / recrm_cpu, 3),
        "own_schema_cpu_ratio": round(own_cpu / recrm_cpu, 3),
        "baseline_peak_rss_mb": round(base_rss, 1),
        "own_schema_peak_rss_mb": round(own_rss, 1),
        "recrm_summary": summary,
    }
    if args.plugins:
        report |= plugin_overhead(work, data, rows, args.plugin_rounds)
    if args.plugins_callgrind:
        report |= plugin_instructions(work, data, rows)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
