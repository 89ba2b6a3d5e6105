"""Start-up stays lazy: ``recrm --help`` imports no command module, no plugin and no
heavy library; ``customers count`` imports neither the importer, the demo, Faker,
phonenumbers nor email_validator. Timing is for ``bench/startup_bench.py``; these
tests check what gets imported, which is what makes it slow or not."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from recrm_core.cli import CORE_COMMANDS, cli, load_core_commands

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
