"""A plugin author starts a migration branch as docs/plugins.md says: an empty
``recrm.migrations`` package, then ``recrm db revision --plugin NAME --autogenerate``
on a database at the heads (whose plugin tables were created directly meanwhile),
then ``recrm db upgrade``. Each step used to fail: the empty package made every
command exit 1 (no ``revisions.json``), the first revision came out empty, and its
dependency on the core's head made the upgrade overlap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, String, Table, inspect, text

from recrm_core import CRM, Base
from recrm_core.migrating import (
    MigrationError,
    differences,
    downgrade,
    new_revision,
    upgrade,
)
from recrm_core.schema import (
    MIGRATIONS_ENTRY_POINT_GROUP,
    REVISIONS_FILE,
    installed_branches,
    schema_state,
    unmigrated_tables,
)


class QuickNote:
    """A plugin with one table of its own and, so far, an empty migrations package."""

    name = "quicknote"


@pytest.fixture
def branch_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugin's empty migrations package, installed under the entry-point group,
    and its table declared on Base."""
    package = tmp_path / "site" / "quicknote_migrations"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    # installed as pip would: a distribution's metadata naming the branch
    info = package.parent / "quicknote-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: quicknote\nVersion: 0.1\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text(
        f"[{MIGRATIONS_ENTRY_POINT_GROUP}]\nquicknote = quicknote_migrations\n",
        encoding="utf-8")
    monkeypatch.syspath_prepend(str(package.parent))
    notes = Table("quicknote_notes", Base.metadata,
                  Column("customer_id", Integer, ForeignKey("customers.id"), primary_key=True),
                  Column("note", String(40), nullable=False))
    try:
        yield package
    finally:
        Base.metadata.remove(notes)


def _crm(url: str) -> CRM:
    return CRM(database_url=url, plugins=[QuickNote()])


def test_an_empty_package_starts_a_branch_that_upgrades(
        branch_dir: Path, recrm_database_url: str) -> None:
    # The empty package: every command works, the tables are created directly.
    with CRM(database_url=recrm_database_url, plugins=[QuickNote()],
             create_schema=True) as crm:
        assert installed_branches()["quicknote"].revisions == ()
        assert schema_state(crm).kind == "current"
        assert "quicknote_notes" in {t.name for t in unmigrated_tables(crm)}
        with crm.engine.begin() as conn:
            assert "quicknote_notes" in inspect(conn).get_table_names()
            conn.execute(text("INSERT INTO customers (id, name, stage, created_at, "
                              "updated_at) VALUES (1, '王伟', 'prospect', '2026-01-01', "
                              "'2026-01-01')"))
            conn.execute(text("INSERT INTO quicknote_notes VALUES (1, '带看样板间')"))
        with pytest.raises(MigrationError, match="no revisions yet"):
            upgrade(crm, "quicknote")
        assert downgrade(crm, "quicknote", "base") == []

        # The first revision creates the table although this database has it.
        path = new_revision(crm, "quicknote", "notes", autogenerate=True)
    assert path.name == "quicknote_0001_notes.py"
    body = path.read_text(encoding="utf-8")
    assert "op.create_table('quicknote_notes'" in body and "'core_" in body
    assert (branch_dir / REVISIONS_FILE).exists()
    assert installed_branches()["quicknote"].tables == {"quicknote_notes"}

    # This database's table, created directly, is recognised with its row.
    with _crm(recrm_database_url) as crm:
        assert schema_state(crm).kind == "behind"
        assert upgrade(crm) == ["quicknote_0001"]
        assert schema_state(crm).kind == "current" and differences(crm) == []
        with crm.engine.connect() as conn:
            assert conn.execute(text("SELECT note FROM quicknote_notes")).scalar() == "带看样板间"
        # ... and the revision runs both ways.
        assert downgrade(crm, "quicknote", "base") == ["quicknote_0001"]
        assert upgrade(crm) == ["quicknote_0001"]
        assert differences(crm) == []


def test_a_table_created_directly_but_shaped_otherwise_is_refused(
        branch_dir: Path, recrm_database_url: str) -> None:
    with _crm(recrm_database_url) as crm:
        upgrade(crm)
        with crm.engine.begin() as conn:
            conn.execute(text("CREATE TABLE quicknote_notes (customer_id INTEGER PRIMARY KEY,"
                              " note VARCHAR(40) NOT NULL, extra VARCHAR(10))"))
        new_revision(crm, "quicknote", "notes", autogenerate=True)
    with _crm(recrm_database_url) as crm:
        with pytest.raises(MigrationError, match=r"quicknote_0001 .*quicknote_notes\.extra"):
            upgrade(crm)
        assert schema_state(crm).kind == "behind"
