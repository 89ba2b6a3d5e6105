"""Found by probing as a new user: ``recrm report sources --csv crm.db`` (a slip of tab
completion) said "wrote crm.db" and replaced the CRM's SQLite database with a CSV, and
``--xlsx recrm.key`` replaced the key file without which the encrypted ID numbers cannot
be read; ``customers export --out``, the dashboard and an import's ``--errors`` did the
same. Every output now refuses (exit 2, one line) an existing SQLite database, its
write-ahead log and a recrm key file, by their first bytes whatever their names, and
leaves them as they were."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from recrm_core import CRM, InvalidInput
from recrm_core.keys import create_key_file
from recrm_core.listexport import open_list_writer, write_bytes_atomically
from recrm_core.testing import RecrmCliRunner


def data_files(tmp_path: Path) -> dict[str, bytes]:
    """A SQLite database with a row, its write-ahead log and a key file; their bytes."""
    conn = sqlite3.connect(tmp_path / "crm.db")
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
        # copied while the connection holds the log (closing checkpoints and removes it)
        (tmp_path / "old-wal").write_bytes((tmp_path / "crm.db-wal").read_bytes())
    finally:
        conn.close()
    create_key_file(tmp_path / "recrm.key")
    return {name: (tmp_path / name).read_bytes() for name in ("crm.db", "old-wal", "recrm.key")}


def test_the_writers_refuse_a_database_and_a_key_file(tmp_path: Path) -> None:
    before = data_files(tmp_path)
    for name, what in (("crm.db", "is a SQLite database"),
                       ("old-wal", "is a SQLite write-ahead log"),
                       ("recrm.key", "is a recrm key file")):
        with pytest.raises(InvalidInput, match=f"{what}; choose another file name"):
            write_bytes_atomically(tmp_path / name, b"x")
        assert (tmp_path / name).read_bytes() == before[name]
    renamed = tmp_path / "list.csv"  # the name does not matter: the bytes do
    renamed.write_bytes(before["crm.db"])
    with pytest.raises(InvalidInput, match="is a SQLite database"):
        open_list_writer(renamed, ["name"]).__enter__()
    assert renamed.read_bytes() == before["crm.db"]
    other = tmp_path / "old.csv"
    other.write_text("old", encoding="utf-8")
    write_bytes_atomically(other, b"new")  # any other file is still replaced whole
    assert other.read_bytes() == b"new"


def test_reports_exports_and_errors_files_leave_the_crm_s_files(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    added = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer.id
    before = data_files(tmp_path)
    leads = tmp_path / "leads.csv"
    leads.write_text("mobile\nabc\n", encoding="utf-8")
    database, key = str(tmp_path / "crm.db"), str(tmp_path / "recrm.key")
    for args, option in (
            (("report", "sources", "--csv", database), "--csv"),
            (("report", "sources", "--xlsx", key), "--xlsx"),
            (("report", "dashboard", "--html", database), "--html"),
            (("customers", "export", str(added), "--out", key), "--out"),
            (("customers", "import", str(leads), "--errors", database), None)):
        result = cli_runner.invoke(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "choose another file name" in lines[0], result.stderr
        assert option is None or f"Invalid value for {option}" in lines[0]
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert crm.customers.count() == 1  # the import stopped before reading a row


def test_the_files_sqlite_keeps_beside_a_database_are_refused_by_name(tmp_path: Path) -> None:
    """Found by a new user: ``--errors crm.db-wal`` (tab completion offers it beside
    crm.db) was empty or absent when the import opened it, so its first bytes said
    nothing; the errors written into the live log while batches committed left the
    database malformed, and into ``crm.db-shm`` lost a third of the rows the import
    reported as created."""
    from recrm_core import ImportFileError

    database = tmp_path / "crm.db"
    crm = CRM(database_url=f"sqlite:///{database}", create_schema=True)
    leads = tmp_path / "leads.csv"
    leads.write_text("mobile\n" + "".join(
        f"1391234{i:04d}\n" if i % 3 else f"12{i}\n" for i in range(3000)), encoding="utf-8")
    try:
        for suffix, what in (("-wal", "write-ahead log"), ("-shm", "shared-memory index"),
                             ("-journal", "rollback journal")):
            with pytest.raises(ImportFileError, match=f"is the {what} of the SQLite database"):
                crm.importer.import_file(leads, errors_path=f"{database}{suffix}")
        link = tmp_path / "rejected.csv"
        link.symlink_to(tmp_path / "crm.db-wal")
        with pytest.raises(ImportFileError, match="write-ahead log"):
            crm.importer.import_file(leads, errors_path=str(link))
        assert crm.customers.count() == 0
        # a name like a log beside no database is any other file
        assert crm.importer.import_file(
            leads, errors_path=str(tmp_path / "leads-wal")).created == 2000
        assert crm.customers.count() == 2000
    finally:
        crm.close()
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
