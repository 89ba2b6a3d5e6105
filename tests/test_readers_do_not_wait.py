"""Readers never queue behind writers on SQLite: a ``recrm`` read command answers
while another connection holds the write lock (an import batch in progress)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recrm_core import CRM


def test_count_answers_while_a_writer_holds_the_lock(
    crm: CRM, recrm_database_url: str, recrm_backend: str
) -> None:
    if recrm_backend != "sqlite":
        pytest.skip("PostgreSQL readers never take a write lock")
    crm.customers.add({"mobile": "13812345678"})
    path = recrm_database_url.removeprefix("sqlite:///")
    writer = sqlite3.connect(path, isolation_level=None, timeout=1)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO projects (code, name, created_at) VALUES ('W', 'W', '2026-01-01')")
    try:
        recrm = str(Path(sys.executable).with_name("recrm"))
        # The busy timeout is 30 s: a command that asked for the write lock would
        # still be waiting when this times out.
        done = subprocess.run([recrm, "--db", recrm_database_url, "customers", "count",
                               "--json"], capture_output=True, text=True, timeout=20)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("1}") or '"count":1' in done.stdout.replace(" ", "")
