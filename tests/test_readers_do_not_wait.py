"""Readers never queue behind writers on SQLite: every read command, the core's and
the plugins', answers while another connection holds the write lock (as an import
batch in progress does). Each command is a real ``recrm`` process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from recrm_core import CRM

READ_COMMANDS = [
    ["customers", "count", "--json"],
    ["customers", "find", "--mobile", "13812345678", "--json"],
    ["customers", "show", "1", "--json"],
    ["customers", "duplicates", "--json"],
    ["interactions", "list", "1", "--json"],
    ["cases", "list", "--json"],
    ["consent", "show", "1", "--json"],
    ["member", "show", "1", "--json"],
    ["member", "report", "--json"],
    ["member", "tiers", "--json"],
    ["survey", "list", "--json"],
    ["survey", "due", "--json"],
    ["survey", "scores", "--json"],
]


@pytest.fixture
def locked_database(crm_factory, recrm_backend: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    if recrm_backend != "sqlite":
        pytest.skip("PostgreSQL readers never take a write lock")
    crm: CRM = crm_factory(plugins=["membership", "survey"])
    cid = crm.customers.add({"mobile": "13812345678", "project": "XL"}).customer.id
    crm.customers.set_stage(cid, "owner", "XL", unit="1-101", force=True)
    url = crm.config.database_url
    config = tmp_path / "recrm.toml"
    config.write_text(f'database_url = "{url}"\nplugins = ["membership", "survey"]\n',
                      encoding="utf-8")
    writer = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=1)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO projects (code, name, created_at) VALUES ('W', 'W', '2026-01-01')")
    yield config
    writer.execute("ROLLBACK")
    writer.close()


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_read_commands_answer_while_a_writer_holds_the_lock(
    locked_database: Path, command: list[str]
) -> None:
    recrm = str(Path(sys.executable).with_name("recrm"))
    # The busy timeout is 30 s: a command that asked for the write lock would still be
    # waiting when this times out.
    done = subprocess.run([recrm, "--config", str(locked_database), *command],
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(("{", "["))
