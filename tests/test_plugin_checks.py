"""One plugin check on every path: ``CRM(plugins=...)``, the ``register_plugin``
fixture, ``recrm plugins list`` and ``recrm init``; what the harness tells about
the CRM under test; plugin settings, segment fields and sub-command exit codes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel
from test_plugins import assert_one_line_error, by_name, install, run_recrm, write_config

from recrm_core import (
    CRM,
    ConfigError,
    PluginError,
    PluginWarning,
    SegmentField,
    hookimpl,
)
from recrm_core.cli import cli
from recrm_core.testing import RecrmCliRunner

CrmFactory = Callable[..., CRM]
Register = Callable[..., str]

MISSPELT = '''\
from recrm_core import hookimpl

@hookimpl
def recrm_stage_change(uow, customer, change):
    pass
'''

UNMARKED = '''\
from recrm_core import hookimpl

@hookimpl
def recrm_customer_created(uow, customer):
    pass

def recrm_timeline(uow, customer):
    return None
'''

COMMANDS = '''\
import click
from recrm_core import RecrmError, hookimpl

@click.command("pinger")
@click.argument("times", type=int)
def pinger(times):
    if times < 0:
        raise RecrmError("cannot ping a negative number of times")
    click.echo("pong " * times)

@hookimpl
def recrm_register_commands(cli):
    cli.add_command(pinger)
'''


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Installed: ``misspelt`` (a hook name that does not exist), ``unmarked`` (a
    ``recrm_`` function without ``@hookimpl``), ``pinger`` (a CLI command) and
    ``broken`` (fails to import)."""
    site = tmp_path / "site"
    install(site, "misspeltplug", "misspelt", "misspeltplug", MISSPELT)
    install(site, "unmarkedplug", "unmarked", "unmarkedplug", UNMARKED)
    install(site, "pingerplug", "pinger", "pingerplug", COMMANDS)
    install(site, "brokenplug", "broken", "brokenplug", 'raise ImportError("needs sms-gw")\n')
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("RECRM_DISABLE_PLUGINS", raising=False)
    yield site
    for module in ("misspeltplug", "unmarkedplug", "pingerplug"):
        sys.modules.pop(module, None)


class Misspelt:
    name = "misspelt"

    @hookimpl
    def recrm_stage_change(self, uow: Any, customer: Any, change: Any) -> None:
        raise AssertionError("never called")


class WrongArgument:
    name = "wrongarg"

    @hookimpl
    def recrm_customer_created(self, uow: Any, custmer: Any) -> None:
        raise AssertionError("never called")


class Unmarked:
    name = "unmarked"

    def recrm_customer_created(self, uow: Any, customer: Any) -> None:
        raise AssertionError("never called: it lacks @hookimpl")


SUGGESTION = "unknown hook 'recrm_stage_change' (did you mean 'recrm_stage_changed'?)"


# -- the one check, on every path ----------------------------------------------------------


def test_a_misspelt_hook_is_refused_with_a_suggestion_in_code(crm_factory: CrmFactory) -> None:
    with pytest.raises(PluginError, match=re.escape(SUGGESTION)) as failed:
        crm_factory(plugins=[Misspelt()])
    assert (failed.value.plugin, failed.value.hook) == ("misspelt", "load")
    assert "\n" not in str(failed.value)


def test_register_plugin_runs_the_same_check(crm: CRM, register_plugin: Register) -> None:
    with pytest.raises(PluginError, match=re.escape(SUGGESTION)):
        register_plugin(Misspelt())
    # Not pluggy's own PluginValidationError, and the message is one line.
    with pytest.raises(PluginError, match=r"plugin 'wrongarg' failed in load: .*\{'custmer'\}"
                       ) as failed:
        register_plugin(WrongArgument())
    assert "\n" not in str(failed.value)
    assert "custmer" in str(failed.value) and "uow, customer" in str(failed.value)
    assert "wrongarg" not in crm.plugin_names and "misspelt" not in crm.plugin_names


def test_a_recrm_function_without_hookimpl_is_a_warning(
    crm_factory: CrmFactory, register_plugin: Register
) -> None:
    message = "plugin 'unmarked': recrm_customer_created has no @hookimpl"
    with pytest.warns(PluginWarning, match=message):
        built = crm_factory(plugins=[Unmarked()])
    assert built.has_plugin("unmarked")
    [info] = built.plugin_infos
    assert info.warnings == ["recrm_customer_created has no @hookimpl, so it is never called"]
    with pytest.warns(PluginWarning, match=message):
        register_plugin(Unmarked())


def test_plugins_list_shows_the_check_as_the_plugins_error(site: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, ["misspelt", "unmarked"])
    result = CliRunner().invoke(cli, ["--config", str(config), "plugins", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    listed = by_name(json.loads(result.stdout))
    assert listed["misspelt"]["enabled"] is True
    assert listed["misspelt"]["error"] == f"PluginValidationError: {SUGGESTION}"
    assert listed["unmarked"]["error"] is None
    assert listed["unmarked"]["hooks"] == ["recrm_customer_created"]
    assert listed["unmarked"]["warnings"] == [
        "recrm_timeline has no @hookimpl, so it is never called"
    ]
    # ... and the CRM refuses it with the same words, naming the plugin.
    done = run_recrm("customers", "count", "--json", site=site, cwd=tmp_path)
    assert done.returncode == 1
    assert_one_line_error(done.stderr, "plugin 'misspelt'", SUGGESTION)


def test_init_enables_only_the_plugins_that_load(site: Path, tmp_path: Path) -> None:
    done = run_recrm("init", site=site, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    left_out = [line for line in done.stderr.splitlines() if line.startswith("left out")]
    assert sorted(left_out) == [
        "left out plugin 'broken': ImportError: needs sms-gw",
        f"left out plugin 'misspelt': PluginValidationError: {SUGGESTION}",
    ]
    enabled = tomllib.loads((tmp_path / "recrm.toml").read_text(encoding="utf-8"))["plugins"]
    assert "misspelt" not in enabled and "broken" not in enabled
    assert {"pinger", "unmarked"} <= set(enabled)
    # The configuration it wrote works for the next command.
    later = run_recrm("customers", "count", "--json", site=site, cwd=tmp_path)
    assert later.returncode == 0, later.stderr
    assert json.loads(later.stdout) == {"count": 0}


def test_an_enabled_plugins_warning_is_one_line_on_every_command(
    site: Path, tmp_path: Path
) -> None:
    # Python's own display adds the file, line and source of the warn() call.
    write_config(tmp_path, ["unmarked", "pinger", "hotlead"])
    warning = "warning: plugin 'unmarked': recrm_timeline has no @hookimpl, so it is never called\n"
    for args in (("customers", "count", "--json"), ("pinger", "1"), ("hotlead", "list", "--json")):
        done = run_recrm(*args, site=site, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr == warning, args


# -- what the harness describes ------------------------------------------------------------


class Greeter:
    name = "greeter"

    @hookimpl
    def recrm_customer_created(self, uow: Any, customer: Any) -> None:
        return None


@pytest.mark.recrm_plugins("hotlead")
def test_cli_runner_plugins_list_describes_the_crm_under_test(
    crm: CRM, cli_runner: RecrmCliRunner, register_plugin: Register
) -> None:
    register_plugin(Greeter())
    result = cli_runner.invoke("plugins", "list", "--json")
    assert result.exit_code == 0, result.stderr
    listed = by_name(result.json())
    assert listed["hotlead"]["enabled"] is True and listed["hotlead"]["version"] == "0.1.0"
    assert "recrm_interactions_logged" in listed["hotlead"]["hooks"]
    assert listed["greeter"] == {
        "name": "greeter", "version": None, "enabled": True,
        "hooks": ["recrm_customer_created"], "error": None, "warnings": [],
    }
    assert listed["membership"]["enabled"] is False  # installed, not in this CRM
    assert "recrm_core.transports" not in listed


def test_plugin_names_lists_plugins_only(crm_factory: CrmFactory) -> None:
    assert crm_factory().plugin_names == []
    assert crm_factory(plugins=[Greeter()]).plugin_names == ["greeter"]


class Quota(BaseModel):
    sender: str = "XL"
    daily_limit: int = 100


class QuotaPlugin:
    name = "quota"

    @hookimpl
    def recrm_register_settings(self, register: Callable[[str, type[BaseModel]], None]) -> None:
        register("quota", Quota)


def test_settings_for_gives_defaults_to_a_plugin_registered_late(
    crm: CRM, register_plugin: Register
) -> None:
    with pytest.raises(ConfigError, match=r"no settings registered for \[quota\]"):
        crm.settings_for("quota")
    register_plugin(QuotaPlugin())
    assert crm.settings_for("quota") == Quota()


@pytest.mark.recrm_settings(quota={"daily_limit": 7})
def test_settings_for_a_late_plugin_reads_its_section(
    crm: CRM, register_plugin: Register
) -> None:
    register_plugin(QuotaPlugin())
    assert crm.settings_for("quota") == Quota(daily_limit=7)


# -- segment fields: who registered what --------------------------------------------------


def field_plugin(plugin_name: str, *fields: SegmentField) -> object:
    class Fields:
        name = plugin_name

        @hookimpl
        def recrm_segment_fields(self, register: Callable[[SegmentField], None]) -> None:
            for field in fields:
                register(field)

    return Fields()


def test_a_segment_field_is_prefixed_with_its_plugins_name(
    crm: CRM, register_plugin: Register
) -> None:
    register_plugin(field_plugin("tags", SegmentField("labels.vip", lambda cid: cid, "bool")))
    with pytest.raises(ConfigError, match=re.escape(
        "segment field 'labels.vip' of plugin 'tags': its name must start with 'tags.'"
    )):
        crm.segments.fields()


def test_a_segment_field_clash_names_both_plugins(crm: CRM, register_plugin: Register) -> None:
    # Plugin names may hold dots, so two plugins can reach for one name.
    register_plugin(field_plugin("crm", SegmentField("crm.ext.score", lambda cid: cid, "int")))
    register_plugin(field_plugin("crm.ext", SegmentField("crm.ext.score", lambda cid: cid, "int")))
    with pytest.raises(ConfigError, match=r"'crm\.ext\.score' is registered twice: by plugin "
                       r"'crm(\.ext)?' and by plugin 'crm(\.ext)?'") as failed:
        crm.segments.fields()
    assert "'crm'" in str(failed.value) and "'crm.ext'" in str(failed.value)


# -- plugin sub-commands and exit codes ------------------------------------------------------


def test_plugin_command_exit_codes(site: Path, tmp_path: Path) -> None:
    config = str(write_config(tmp_path, ["pinger"]))
    runner = CliRunner()
    ok = runner.invoke(cli, ["--config", config, "pinger", "2"])
    assert ok.exit_code == 0 and ok.stdout == "pong pong \n"
    usage = runner.invoke(cli, ["--config", config, "pinger", "two"])
    assert usage.exit_code == 2
    refused = runner.invoke(cli, ["--config", config, "pinger", "--", "-1"])
    assert refused.exit_code == 1
    assert_one_line_error(refused.stderr, "negative")

    # The plugin holding the command failed to load: 1, naming it.
    broken = str(write_config(tmp_path, ["pinger", "broken"]))
    failed = runner.invoke(cli, ["--config", broken, "pinger", "2"])
    assert failed.exit_code == 1
    assert_one_line_error(failed.stderr, "no command 'pinger'", "plugin 'broken'", "sms-gw")
    # An enabled plugin that is not installed is the configuration's fault: 2.
    missing = str(write_config(tmp_path, ["pinger", "nope"]))
    unknown = runner.invoke(cli, ["--config", missing, "pinger", "2"])
    assert unknown.exit_code == 2
    assert_one_line_error(unknown.stderr, "'nope' is not installed")


def test_a_group_run_without_a_command_shows_its_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # click raises its help as a usage error; squeezed into one error line, it was
    # unreadable (and cut at 500 characters).
    write_config(tmp_path, ["hotlead"])
    monkeypatch.chdir(tmp_path)
    for group in ([], ["customers"], ["hotlead"]):
        shown = CliRunner().invoke(cli, group, prog_name="recrm")
        assert shown.exit_code == 2
        assert shown.stderr.startswith(f"Usage: recrm {' '.join([*group, ''])}"), shown.stderr
        assert "\nCommands:\n" in shown.stderr and "error:" not in shown.stderr


# -- the harness without a PostgreSQL driver -----------------------------------------------


def test_postgresql_tests_skip_in_one_line_without_psycopg(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "import sys\nsys.modules['psycopg'] = None  # as if not installed\n", encoding="utf-8"
    )
    (tmp_path / "test_uses_crm.py").write_text(
        "def test_count(crm):\n    assert crm.customers.count() == 0\n", encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         "--recrm-backends=sqlite,postgresql", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "1 passed, 1 skipped" in out
    assert "PostgreSQL tests need the psycopg driver: pip install 'recrm[test]'" in out
    assert "ModuleNotFoundError" not in out and "Traceback" not in out


def test_a_hook_answering_the_wrong_type_is_named(
        crm: CRM, register_plugin: Register, cli_runner: RecrmCliRunner) -> None:
    """A timeline or erase hook returning something else than its spec's list fails
    naming the plugin and what it returned (it was an AttributeError in the 360 view,
    or a multi-line pydantic error, with no plugin named)."""
    from recrm_core import ErasureStep, TimelineEntry

    class Careless:
        name = "careless"
        answer: Any = None
        steps: Any = None

        @hookimpl
        def recrm_timeline(self) -> Any:
            return self.answer

        @hookimpl
        def recrm_customer_erase(self) -> Any:
            return self.steps

    plugin = Careless()
    register_plugin(plugin)
    cid = crm.customers.add({"mobile": "13812345678", "name": "王伟"}).customer.id
    entry = TimelineEntry(at=crm.customers.get(cid).created_at, kind="x", title="t",
                          source="careless")
    for answer, said in [({"at": "2024-01-01"}, "returned dict"),
                         (entry, "returned TimelineEntry"),
                         ([{"at": "2024-01-01", "title": "王伟"}], "returned a list of dict")]:
        plugin.answer = answer
        with pytest.raises(PluginError, match=f"careless.*recrm_timeline.*{said}; expected a "
                           "list of TimelineEntry") as failed:
            crm.customers.view(cid)
        assert "王伟" not in str(failed.value)
    result = cli_runner.invoke("customers", "show", str(cid))
    assert result.exit_code == 1 and result.stderr.strip() == (
        "error: plugin 'careless' failed in recrm_timeline: TypeError: returned a list of "
        "dict; expected a list of TimelineEntry, or None")
    plugin.answer = (entry,)
    assert [e.source for e in crm.customers.view(cid).timeline] == ["careless"]

    plugin.answer = None
    for steps, said in [(ErasureStep(table="careless_t"), "returned ErasureStep"),
                        ("done", "returned str"),
                        ([{"tabel": "careless_t"}], "returned a list of dict")]:
        plugin.steps = steps
        with pytest.raises(PluginError, match=f"careless.*recrm_customer_erase.*{said}; "
                           "expected a list of ErasureStep"):
            crm.privacy.erase(cid)
    plugin.steps = [{"table": "careless_t"}]
    assert crm.privacy.erase(cid).verified
