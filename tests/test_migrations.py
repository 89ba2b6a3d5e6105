"""Migrations: empty → head gives the declared schema, the revisions files match the
scripts, every downgrade works both ways, create_all databases of earlier releases are
recognised and carried forward with their rows, and a database behind or ahead of
the code stops every command but ``recrm db``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Column, Integer, String, Table, create_engine, inspect, text

from recrm_core import CRM, Base, SchemaMismatch
from recrm_core.baselines import shape
from recrm_core.cli import cli
from recrm_core.migrating import (
    declared_metadata,
    differences,
    downgrade,
    revisions_file_for,
    script_directory,
    upgrade,
)
from recrm_core.schema import (
    REVISIONS_FILE,
    core_branch,
    enabled_branches,
    installed_branches,
    schema_state,
)

PLUGINS = ["membership", "survey", "hotlead"]
SCHEMAS = Path(__file__).with_name("schemas")


def fresh(url: str, plugins: list[str] | None = None) -> CRM:
    """A CRM on ``url`` that touches the schema only when told."""
    return CRM(database_url=url, plugins=PLUGINS if plugins is None else plugins)


def run(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--db", url, *args])
    return result.exit_code, result.stdout + result.stderr


def test_revisions_files_match_the_scripts() -> None:
    script = script_directory()
    for branch in [core_branch(), *installed_branches().values()]:
        on_disk = json.loads((branch.directory / REVISIONS_FILE).read_text(encoding="utf-8"))
        assert on_disk == revisions_file_for(script, branch.name), (
            f"{branch.directory / REVISIONS_FILE} is stale: recrm db revision rewrites it")


def test_plugin_branches_start_from_a_core_revision() -> None:
    for branch in installed_branches().values():
        first = branch.revisions[0]
        assert set(branch.needs.get(first, ())) <= set(core_branch().revisions), first
        assert branch.needs.get(first), f"{first} names no core revision it needs"


def test_empty_to_head_is_the_declared_schema(recrm_database_url: str) -> None:
    """The guard: a table or column changed in the code without a migration fails here."""
    with fresh(recrm_database_url) as crm:
        upgrade(crm)
        assert differences(crm) == []
        assert schema_state(crm).kind == "current"
        # and what create_all would build, compared the same way
        declared = declared_metadata(enabled_branches(crm))
        with crm.engine.connect() as conn:
            migrated = shape(conn)
    other = create_engine("sqlite://")
    declared.create_all(other)
    with other.connect() as conn:
        assert shape(conn) == migrated


def test_a_column_without_a_migration_is_a_difference(recrm_database_url: str) -> None:
    with fresh(recrm_database_url, []) as crm:
        upgrade(crm)
        with crm.engine.begin() as conn:
            conn.execute(text("ALTER TABLE projects ADD COLUMN region VARCHAR(8)"))
        found = differences(crm)
    assert any("projects" in line and "region" in line for line in found), found
    code, out = run(recrm_database_url, "db", "check")
    assert code == 1 and "region" in out


def test_every_downgrade_both_ways(recrm_database_url: str) -> None:
    with fresh(recrm_database_url) as crm:
        upgrade(crm)
        with crm.engine.connect() as conn:
            at_head = shape(conn)
        for branch in reversed(enabled_branches(crm)):
            steps = ["base", *branch.revisions[:-1]]
            for target in reversed(steps):
                downgrade(crm, branch.name, target)
                state = schema_state(crm)
                assert state.kind == "behind"
                assert state.at[branch.name] == (None if target == "base" else target)
                upgrade(crm)
                with crm.engine.connect() as conn:
                    assert shape(conn) == at_head, (branch.name, target)
        downgrade(crm, "membership", "base")
        with crm.engine.connect() as conn:
            assert not {t for t in shape(conn) if t.startswith("membership_")}
        assert schema_state(crm).kind == "behind"


def test_enabling_a_plugin_keeps_the_data(recrm_database_url: str) -> None:
    with CRM(database_url=recrm_database_url, plugins=[], create_schema=True) as crm:
        crm.customers.add({"name": "王伟", "mobile": "13812345678"})
    code, out = run(recrm_database_url, "customers", "count")
    assert code == 0, out
    with CRM(database_url=recrm_database_url, plugins=["membership"]) as crm:
        assert schema_state(crm).kind == "behind"
        assert "membership" in schema_state(crm).message
        crm.create_schema()
        assert schema_state(crm).kind == "current"
        assert crm.customers.count() == 1


def test_a_disabled_plugins_tables_are_neither_created_nor_reported(
    recrm_database_url: str,
) -> None:
    with CRM(database_url=recrm_database_url, plugins=["survey"], create_schema=True) as crm:
        with crm.engine.connect() as conn:
            names = set(shape(conn))
        assert not {n for n in names if n.startswith(("membership_", "hotlead_"))}
        assert differences(crm) == []
    # survey now disabled: its branch in the table is no reason to stop
    code, out = run(recrm_database_url, "customers", "count")
    assert code == 0, out


def test_behind_and_ahead_stop_every_command_but_db(recrm_database_url: str) -> None:
    with fresh(recrm_database_url, []) as crm:
        upgrade(crm, "core", "core_0002")
    code, out = run(recrm_database_url, "customers", "count")
    assert code == 2 and "recrm db upgrade" in out and len(out.strip().splitlines()) == 1
    code, out = run(recrm_database_url, "db", "current", "--json")
    assert code == 0 and json.loads(out.splitlines()[0])["state"] == "behind"
    code, out = run(recrm_database_url, "db", "upgrade")
    assert code == 0, out
    with fresh(recrm_database_url, []) as crm, crm.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'core_9999'"))
    code, out = run(recrm_database_url, "customers", "count")
    assert code == 2 and "ahead" in out and len(out.strip().splitlines()) == 1
    with pytest.raises(SchemaMismatch, match="ahead"), \
            CRM(database_url=recrm_database_url, plugins=[], create_schema=True):
        pass


def test_an_empty_database_is_upgraded_by_the_first_command(recrm_database_url: str) -> None:
    code, out = run(recrm_database_url, "customers", "count", "--json")
    assert code == 0, out
    with fresh(recrm_database_url, []) as crm:
        assert schema_state(crm).kind == "current"


def test_a_plugin_without_a_branch_gets_its_tables_and_a_warning(
    recrm_database_url: str,
) -> None:
    notes = Base.metadata.tables.get("quicktest_notes") or Table(
        "quicktest_notes", Base.metadata, Column("id", Integer, primary_key=True),
        Column("note", String(20)))
    try:
        with CRM(database_url=recrm_database_url, plugins=[], create_schema=True) as crm:
            with crm.engine.connect() as conn:
                assert "quicktest_notes" in shape(conn)
            assert differences(crm) == []
        code, out = run(recrm_database_url, "db", "check")
        assert code == 0 and "quicktest_notes" in out and "warning" in out
    finally:
        Base.metadata.remove(notes)


def _load(url: str, generation: str, dialect: str) -> None:
    ddl = (SCHEMAS / f"{generation}.{dialect}.sql").read_text(encoding="utf-8")
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in ddl.split(";\n"):
            body = "\n".join(line for line in statement.splitlines()
                             if not line.startswith("--")).strip()
            if body:
                conn.execute(text(body))
        conn.execute(text("INSERT INTO customers (id, name, stage, created_at, updated_at) "
                          "VALUES (1, '王伟', 'owner', '2026-01-01', '2026-01-01')"))
        conn.execute(text("INSERT INTO projects (id, code, name, created_at) "
                          "VALUES (1, 'XL2', '星珑湾二期', '2026-01-01')"))
        conn.execute(text(
            "INSERT INTO customer_projects (id, customer_id, project_id, stage, "
            "first_seen_at, stage_changed_at) VALUES (1, 1, 1, 'owner', '2026-01-01', "
            "'2026-01-01')"))
        conn.execute(text(
            "INSERT INTO membership_members (id, customer_id, number, status, tier, "
            "contracts, enrolled_at) VALUES (1, 1, 'M1', 'active', 'silver', 1, "
            "'2026-01-01')"))
    engine.dispose()


@pytest.mark.parametrize("generation", ["f1ec1cd", "52dad97", "7396de5"])
def test_a_create_all_database_is_stamped_and_upgraded_with_its_rows(
    recrm_database_url: str, recrm_backend: str, generation: str,
) -> None:
    _load(recrm_database_url, generation, recrm_backend)
    code, out = run(recrm_database_url, "customers", "count")
    assert code == 2 and "recrm db upgrade" in out
    with fresh(recrm_database_url, ["membership", "survey"]) as crm:
        upgrade(crm)
        assert differences(crm) == []
        with crm.engine.connect() as conn:
            indexes = {i["name"] for i in inspect(conn).get_indexes("customer_projects")}
        assert "ix_customer_projects_customer_id" not in indexes
        assert crm.customers.count() == 1
        assert crm.customers.get(1).name == "王伟"
        assert crm.projects.get("XL2").city is None


def test_an_unknown_schema_is_refused_with_the_differences(
    recrm_database_url: str, recrm_backend: str,
) -> None:
    _load(recrm_database_url, "f1ec1cd", recrm_backend)
    engine = create_engine(recrm_database_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE customers ADD COLUMN nickname VARCHAR(20)"))
    engine.dispose()
    code, out = run(recrm_database_url, "db", "upgrade")
    assert code == 2, out
    assert "matches no schema" in out and "unexpected column customers.nickname" in out
    assert len(out.strip().splitlines()) == 1
    with fresh(recrm_database_url, []) as crm:
        assert schema_state(crm).kind == "unversioned"  # nothing was stamped


def test_db_sql_prints_the_upgrade(recrm_database_url: str, recrm_backend: str) -> None:
    if recrm_backend == "sqlite":
        code, out = run(recrm_database_url, "db", "sql")
        assert code == 2 and "PostgreSQL" in out
        return
    code, out = run(recrm_database_url, "db", "sql")
    assert code == 0, out
    assert "CREATE TABLE customers" in out and "alembic_version" in out


def test_history_lists_every_branch(recrm_database_url: str) -> None:
    code, out = run(recrm_database_url, "db", "history")
    assert code == 0
    for rev in ("core_0001", "core_0004"):
        assert rev in out


def test_a_downgrade_from_the_cli_asks_before_dropping_data(
    recrm_database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Found by a new user's probe: `recrm db downgrade --to base` dropped a branch's
    tables and their data without a word. From a script it now needs --yes; on a
    terminal the person says yes first."""
    def membership_tables() -> set[str]:
        with fresh(recrm_database_url) as crm, crm.engine.connect() as conn:
            return {t for t in shape(conn) if t.startswith("membership_")}

    with fresh(recrm_database_url) as crm:
        upgrade(crm)
    held = membership_tables()
    assert held
    config = tmp_path / "recrm.toml"
    config.write_text(f"plugins = {PLUGINS!r}\n".replace("'", '"'), encoding="utf-8")
    args = ("--config", str(config), "db", "downgrade", "--plugin", "membership",
            "--to", "base")
    code, out = run(recrm_database_url, *args)
    assert code == 1, out
    assert out.strip().endswith("nothing was changed; no terminal to confirm on, give --yes")
    assert len(out.strip().splitlines()) == 1
    assert membership_tables() == held

    monkeypatch.setattr("recrm_core.cli.output.on_terminal", lambda: True)
    declined = CliRunner().invoke(cli, ["--db", recrm_database_url, *args], input="n\n")
    assert declined.exit_code == 1, declined.output
    assert "declined: nothing was changed" in declined.stderr
    assert membership_tables() == held
    agreed = CliRunner().invoke(cli, ["--db", recrm_database_url, *args], input="y\n")
    assert agreed.exit_code == 0, agreed.output
    assert "undid membership_" in agreed.stderr
    assert membership_tables() == set()

    monkeypatch.undo()
    with fresh(recrm_database_url) as crm:
        upgrade(crm)
    code, out = run(recrm_database_url, *args, "--yes")
    assert code == 0, out
    assert membership_tables() == set()
