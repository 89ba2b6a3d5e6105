"""Start-up stays lazy: ``recrm --help`` imports no command module, no plugin and no
heavy library; ``customers count`` imports neither the importer, the demo, Faker,
phonenumbers nor email_validator. Timing is for ``bench/startup_bench.py``; these
tests check what gets imported, which is what makes it slow or not."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from recrm_core import CRM, plugins
from recrm_core import config as config_module
from recrm_core.cli import CORE_COMMANDS, CliContext, cli, load_core_commands

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
                  "alembic", "mako", "recrm_core.migrating", "recrm_core.baselines"):
        assert heavy not in modules, heavy
    assert not {m for m in modules if m.startswith("recrm_core.migrations")}


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
