"""Newsletter sending benchmark: the outbox against writing the same files in a loop.

    python bench/send_bench.py [--recipients 100000] [--backend sqlite|postgresql]
                               [--postgres-url URL] [--keep DIR]

Builds a migrated database with ``--recipients`` customers, each with an email address
and an email marketing consent (written with plain INSERTs: the bench measures
sending, not the import), saves a segment matching them all and sends one campaign
through the file transport (``.eml`` files, one per message) with one sender:
audience written to the outbox, claimed in batches, consent, suppressions and the
frequency cap checked, each message rendered in the sandbox, written and its row
marked ``sent``.

The baseline is a plain loop over the same customers that builds the same messages
(the same rendering and MIME code) and writes the same files, with no database at all.

Prints one JSON document: both rates in messages/s and the ratio recrm / baseline
(below 1 is slower: the price of the outbox's per-message bookkeeping).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, insert, make_url, text

from recrm_core import CRM, Customer
from recrm_core.keys import ensure_key_file
from recrm_core.tables import ConsentRow, CustomerRow

HTML = "<p>{{ name }}，您好！星珑湾三期开盘。</p><p><a href=\"{{ unsubscribe_url }}\">退订</a></p>"


def _seed(crm: CRM, n: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with crm.engine.begin() as conn:
        for start in range(0, n, 5000):
            ids = range(start + 1, min(n, start + 5000) + 1)
            conn.execute(insert(CustomerRow), [
                {"id": i, "name": f"业主{i}", "email": f"owner{i}@example.com",
                 "stage": "owner", "created_at": now, "updated_at": now} for i in ids])
            conn.execute(insert(ConsentRow), [
                {"customer_id": i, "channel": "email", "purpose": "marketing",
                 "granted": True, "source": "bench", "recorded_at": now} for i in ids])


def _baseline(crm: CRM, n: int, out: Path) -> float:
    from recrm_newsletter import service
    from recrm_newsletter.settings import settings
    from recrm_newsletter.transports import write_file

    news = service(crm)
    send = news.get("bench")
    conf = settings(crm)
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    for i in range(1, n + 1):
        customer = Customer(id=i, name=f"业主{i}", email=f"owner{i}@example.com",
                            created_at=now, updated_at=now)
        message = news.message_for(customer, send, customer.email or "",
                                   f"<nl.0.{i}@example.com>", "开盘", HTML, None)
        write_file(conf, out, message)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1/test")
    parser.add_argument("--keep", type=Path, help="work here and keep it")
    args = parser.parse_args()

    from recrm_newsletter import Sender, service
    from recrm_newsletter.settings import settings
    from recrm_newsletter.transports import write_file

    work = args.keep or Path(tempfile.mkdtemp(prefix="recrm-send-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    schema = None
    if args.backend == "sqlite":
        url = f"sqlite:///{work / 'bench.db'}"
    else:
        schema = f"recrm_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(args.postgres_url).update_query_dict(
            {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    key = work / "bench.key"
    ensure_key_file(key)
    try:
        with CRM(database_url=url, plugins=["newsletter"], create_schema=True,
                 settings={"key_file": str(key), "newsletter": {
                     "max_messages_per_week": 0, "batch_size": 1000}}) as crm:
            _seed(crm, args.recipients)
            news = service(crm)
            news.save_segment("all", {"field": "stage", "op": "eq", "value": "owner"})
            news.create_campaign("bench", channel="email", segment="all", subject="开盘",
                                 html=HTML)
            base_dir, recrm_dir = work / "baseline", work / "recrm"
            baseline = _baseline(crm, args.recipients, base_dir)
            news.schedule("bench")
            sender = Sender(crm, deliver=functools.partial(write_file, settings(crm),
                                                           recrm_dir))
            started = time.perf_counter()
            result = sender.run()
            elapsed = time.perf_counter() - started
            assert result.sent == args.recipients, result
    finally:
        if schema is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    recrm_rate, base_rate = args.recipients / elapsed, args.recipients / baseline
    print(json.dumps({
        "backend": args.backend, "recipients": args.recipients,
        "recrm_messages_per_s": round(recrm_rate, 1),
        "baseline_messages_per_s": round(base_rate, 1),
        "ratio": round(recrm_rate / base_rate, 3),
    }))


if __name__ == "__main__":
    main()
