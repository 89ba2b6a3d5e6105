"""Start-up stays lazy: ``recrm --help`` imports no command module, no plugin and no
heavy library; ``customers count`` imports neither the importer, the demo, Faker,
phonenumbers nor email_validator. Timing is for ``bench/startup_bench.py``; these
tests check what gets imported, which is what makes it slow or not."""

from __future__ import annotations

import gc
import importlib.metadata
import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from recrm_core import CRM, Base, hookimpl, plugins
from recrm_core import config as config_module
from recrm_core.cli import CORE_COMMANDS, CliContext, cli, load_core_commands
from recrm_core.schema import unmigrated_tables

#: the first-party plugins, each a light entry point (docs/plugins.md)
FIRST_PARTY = ("membership", "survey", "channels", "newsletter", "sales")

PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["recrm", *ARGS]
from recrm_core.cli import main
main()
"""


def loaded(tmp_path: Path, *args: str, plugins: tuple[str, ...] = ()) -> set[str]:
    (tmp_path / "recrm.toml").write_text(
        f'database_url = "sqlite:///{tmp_path}/s.db"\nplugins = {json.dumps(list(plugins))}\n',
        encoding="utf-8")
    done = subprocess.run([sys.executable, "-c", PROBE.replace("ARGS", repr(list(args)))],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_command_and_no_plugin(tmp_path: Path) -> None:
    modules = loaded(tmp_path, "--help", plugins=("membership", "survey"))
    heavy = {"recrm_core.customers", "recrm_core.models", "recrm_core.importing", "faker",
             "rich", "phonenumbers", "email_validator", "recrm_membership", "recrm_survey"}
    assert not heavy & modules, heavy & modules
    assert not {m for m in modules if m.startswith("recrm_core.cli.")} - {
        "recrm_core.cli.output"}


def test_help_lists_declared_plugin_groups(tmp_path: Path) -> None:
    (tmp_path / "recrm.toml").write_text('plugins = ["membership", "survey"]\n',
                                         encoding="utf-8")
    recrm = str(Path(sys.executable).with_name("recrm"))
    out = subprocess.run([recrm, "--help"], capture_output=True, text=True, cwd=tmp_path,
                         check=True).stdout
    assert "member " in out and "Commands of the membership plugin." in out
    assert "survey " in out and "customers " in out


def test_count_imports_no_importer_demo_or_validators(tmp_path: Path) -> None:
    loaded(tmp_path, "init")  # the schema
    modules = loaded(tmp_path, "customers", "count", "--json")
    for heavy in ("recrm_core.importing", "recrm_core.demo", "recrm_core.segments",
                  "recrm_core.cases", "faker", "phonenumbers", "email_validator", "rich",
                  # the schema check reads the revision table and revisions.json only
                  "alembic", "mako", "recrm_core.migrating", "recrm_core.baselines",
                  # the customers' partial indexes name PostgreSQL's predicate lazily
                  "sqlalchemy.dialects.postgresql"):
        assert heavy not in modules, heavy
    assert not {m for m in modules if m.startswith("recrm_core.migrations")}


def test_count_with_the_five_plugins_loads_only_their_hooks(tmp_path: Path) -> None:
    """Loading a plugin imports its hooks and settings: its tables, models, service
    (and what they import) wait for a hook that needs them, which a count runs none of."""
    loaded(tmp_path, "init", plugins=FIRST_PARTY)
    modules = loaded(tmp_path, "customers", "count", "--json", plugins=FIRST_PARTY)
    light = {"survey": {"recrm_survey.definitions"}}  # its settings' types
    for name in FIRST_PARTY:
        assert f"recrm_{name}.hooks" in modules, name  # loaded, so its settings checked
        mine = {m for m in modules if m.startswith(f"recrm_{name}.")}
        assert mine <= {f"recrm_{name}.hooks", f"recrm_{name}.settings",
                        *light.get(name, ())}, mine
    for heavy in ("jinja2", "matplotlib", "fastapi", "recrm_core.demo", "recrm_core.segments",
                  "recrm_core.consent", "recrm_core.csvsource"):
        assert heavy not in modules, heavy


COLLECTOR = """
import atexit, gc, json, sys
atexit.register(lambda: print(json.dumps([gc.isenabled(), gc.get_freeze_count()]), file=sys.stderr))
sys.argv = ["recrm", *ARGS]
from recrm_core.cli import main
main()
"""


@pytest.mark.parametrize("args", [["customers", "count", "--json"], ["plugins", "list"]])
def test_the_console_script_freezes_what_start_up_made(tmp_path: Path, args: list[str]) -> None:
    """The collector is off while the command is found and its CRM built, then on
    again with start-up's objects frozen (``recrm_core.collector``), CRM or not."""
    loaded(tmp_path, "init")
    done = subprocess.run([sys.executable, "-c", COLLECTOR.replace("ARGS", repr(args))],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    enabled, frozen = json.loads(done.stderr.strip().splitlines()[-1])
    assert enabled
    assert frozen > 10_000  # modules, classes, mappers, schemas: start-up's objects


def test_the_cli_run_in_process_keeps_its_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``cli.main`` (tests, code embedding the CLI) is not the console script: its
    collector is left as it is, nothing frozen."""
    monkeypatch.chdir(tmp_path)
    frozen = gc.get_freeze_count()
    for command in (["init"], ["customers", "count"]):
        done = CliRunner().invoke(cli, ["--db", f"sqlite:///{tmp_path}/c.db", *command],
                                  obj=CliContext(), catch_exceptions=False)
        assert done.exit_code == 0, done.output
        assert gc.isenabled() and gc.get_freeze_count() == frozen


DECLARE = """
import json, sys
from recrm_core import CRM, Base
from recrm_core.schema import declare_tables, installed_branches
names = NAMES
crm = CRM(database_url="sqlite://", plugins=list(names))
early = sorted(m for m in sys.modules if m.startswith("recrm_") and m.endswith(".tables")
               and not m.startswith("recrm_core"))
declare_tables(crm)
missing = {n: sorted(b.tables - set(Base.metadata.tables))
           for n, b in installed_branches().items() if n in names}
print(json.dumps({"early": early, "missing": missing}))
"""


def test_every_first_party_plugin_declares_its_tables_when_asked() -> None:
    """What ``db check``, autogenerate and the privacy scan ask for: every table of
    each plugin's migration branch declared, though loading the plugin declared none."""
    done = subprocess.run(
        [sys.executable, "-c", DECLARE.replace("NAMES", repr(FIRST_PARTY))],
        capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert found["early"] == []
    assert found["missing"] == {name: [] for name in FIRST_PARTY}


def test_db_check_compares_the_tables_of_light_plugins(tmp_path: Path) -> None:
    loaded(tmp_path, "init", plugins=FIRST_PARTY)
    recrm = str(Path(sys.executable).with_name("recrm"))
    done = subprocess.run([recrm, "db", "check"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    with closing(sqlite3.connect(tmp_path / "s.db")) as conn:
        conn.execute("ALTER TABLE membership_members ADD COLUMN extra TEXT")
        conn.commit()
    done = subprocess.run([recrm, "db", "check"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1
    assert "membership_members" in done.stdout and "extra" in done.stdout, done.stdout


class LateTables:
    """A plugin without migrations whose package declares its table only when asked."""

    name = "latetables"

    def __init__(self) -> None:
        self.asked = 0

    @hookimpl
    def recrm_declare_tables(self) -> None:
        self.asked += 1
        if "latetables_notes" not in Base.metadata.tables:
            from sqlalchemy import Column, Integer, String, Table

            Table("latetables_notes", Base.metadata, Column("id", Integer, primary_key=True),
                  Column("note", String(40)))


def test_hook_recrm_declare_tables(tmp_path: Path) -> None:
    """A plugin without migrations declares its table through the hook: asked before
    the schema is brought to the code, so its table is created."""
    plugin = LateTables()
    try:
        with CRM(database_url=f"sqlite:///{tmp_path}/late.db", plugins=[plugin],
                 create_schema=True) as crm:
            assert plugin.asked >= 1
            assert "latetables_notes" in {t.name for t in unmigrated_tables(crm)}
            with closing(sqlite3.connect(tmp_path / "late.db")) as conn:
                tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            assert "latetables_notes" in tables
    finally:
        if "latetables_notes" in Base.metadata.tables:
            Base.metadata.remove(Base.metadata.tables["latetables_notes"])


def test_a_lazy_name_shared_with_a_submodule_stays_the_public_one() -> None:
    """``recrm_membership.service`` is the function even after a hook imported the
    ``.service`` package (which Python sets as the package's attribute of that name)."""
    probe = ("import importlib, types, recrm_membership\n"
             "importlib.import_module('recrm_membership.service')\n"
             "print(type(recrm_membership.service).__name__)\n"
             "from recrm_membership import service\n"
             "print(service is importlib.import_module('recrm_membership.service').service)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["function", "True"]


def test_the_registry_says_what_the_commands_say() -> None:
    load_core_commands()
    assert set(CORE_COMMANDS) <= set(cli.commands)
    for name, (_, short_help) in CORE_COMMANDS.items():
        assert cli.commands[name].get_short_help_str(limit=1000) == short_help, name
    ctx = click.Context(cli)
    assert set(CORE_COMMANDS) <= set(cli.list_commands(ctx))


@pytest.mark.recrm_plugins("membership")
@pytest.mark.parametrize("command", [
    ["customers", "count", "--json"],
    # the early fork of the validation worker reads them before the CRM is built
    ["customers", "import", "IN.csv", "--json"],
    # finding a plugin's command loads the enabled plugins before the CRM is built
    ["member", "tiers"],
    ["plugins", "list", "--json"],
])
def test_a_command_reads_its_configuration_once(
    command: list[str], crm: CRM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "recrm.toml"
    config.write_text(f"database_url = {json.dumps(crm.config.database_url)}\n"
                      'plugins = ["membership"]\n', encoding="utf-8")
    (tmp_path / "IN.csv").write_text("name,mobile\n王伟,13812345678\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    reads: list[Path] = []
    read = config_module.read_config_file

    def counted(path: Path) -> dict[str, Any]:
        reads.append(path)
        return read(path)

    monkeypatch.setattr(config_module, "read_config_file", counted)
    done = CliRunner().invoke(cli, command, obj=CliContext(), catch_exceptions=False)
    assert done.exit_code == 0, done.stderr
    assert reads == [Path("recrm.toml")]
    # the CRM built for the command, had it read them itself, would say the same
    assert crm.customers.count() == (1 if "import" in command else 0)


@pytest.mark.recrm_plugins("membership", "survey")
def test_a_command_reads_the_installed_metadata_once(
    crm: CRM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The plugins, their commands and their migration branches are entry points of
    three groups, read from every installed distribution's metadata: once."""
    (tmp_path / "recrm.toml").write_text(
        f"database_url = {json.dumps(crm.config.database_url)}\n"
        'plugins = ["membership", "survey"]\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "site").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "site"))  # nothing read for it yet
    reads: list[object] = []
    read = importlib.metadata.entry_points

    def counted(**selection: Any) -> Any:
        reads.append(selection)
        return read(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", counted)
    for command in (["customers", "count"], ["member", "tiers"], ["--help"]):
        done = CliRunner().invoke(cli, command, obj=CliContext(), catch_exceptions=False)
        assert done.exit_code == 0, done.stderr
    assert reads == [{}]


def test_a_distribution_installed_meanwhile_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    assert "late" not in plugins.installed_entry_points()
    info = site / "late-0.1.dist-info"
    info.mkdir()  # what pip does: the directory's modification time changes
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: late\nVersion: 0.1\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text("[recrm]\nlate = late\n", encoding="utf-8")
    assert plugins.installed_entry_points()["late"].value == "late"


def test_settings_already_read_are_used_as_they_are(crm: CRM, tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text(f"database_url = {json.dumps(crm.config.database_url)}\n"
                      "import_batch_size = 7\n", encoding="utf-8")
    read = config_module.load_settings(config)
    config.unlink()  # not read again
    with CRM(config=read, config_path=config) as built:
        assert built.config is read and built.config_file == config.absolute()
        assert built.customers.count() == 0
    with pytest.raises(TypeError, match="not both"):
        CRM(config=read, database_url=crm.config.database_url)
    with pytest.raises(TypeError, match="not both"):
        CRM(config=read, settings={"import_batch_size": 8})
