"""Several first commands on one empty PostgreSQL database at once: each upgrades it
or finds it upgraded, all exit 0, and the schema is there once."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from recrm_core.testing import postgres_url


def test_first_commands_at_once_upgrade_the_database_once(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    base = make_url(postgres_url())
    schema = f"recrm_race_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False)
    recrm = str(Path(sys.executable).with_name("recrm"))
    try:
        procs = [subprocess.Popen([recrm, "--db", url, "customers", "count", "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=tmp_path)
                 for _ in range(4)]
        outcomes = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outcomes, strict=True):
            assert p.returncode == 0, err
            assert out.strip() == '{"count":0}'
        done = subprocess.run([recrm, "--db", url, "db", "check"], capture_output=True,
                              text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_sqlite_migration_waits_for_another_writer_past_the_busy_timeout(
        tmp_path: Path) -> None:
    """Several first commands on one empty SQLite file take turns under BEGIN IMMEDIATE;
    on a loaded machine the turn can take longer than a unit of work's busy timeout.
    Here the busy timeout is 50 ms and another writer holds the file for 1 s: the
    migration waits its turn instead of failing with "database is locked"."""
    import sqlite3
    import threading

    from sqlalchemy import event

    from recrm_core import CRM
    from recrm_core.migrating import upgrade
    from recrm_core.schema import schema_state

    path = tmp_path / "turns.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA journal_mode=WAL")  # as every recrm connection sets it
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as another migrating process
    with CRM(database_url=f"sqlite:///{path}", plugins=[]) as crm:
        event.listen(crm.engine, "connect",
                     lambda dbapi, _record: dbapi.execute("PRAGMA busy_timeout=50"))
        crm.engine.dispose()
        released = threading.Timer(1.0, holder.commit)
        released.start()
        try:
            upgrade(crm)
        finally:
            released.join()
        assert schema_state(crm).kind == "current"
    holder.close()
