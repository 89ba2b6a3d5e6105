"""Plugin loading: entry points, ``recrm plugins list``, broken and unknown plugins,
``RECRM_DISABLE_PLUGINS``, rollback when a plugin raises, and isolation of CRMs.

The test plugins are "installed in the test run": a ``*.dist-info`` directory with
an ``entry_points.txt`` next to the module, on ``sys.path`` (in-process) or on
``PYTHONPATH`` (for the ``recrm`` subprocess) — what pip leaves in site-packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from recrm_core import CRM, ConfigError, PluginError, hookimpl
from recrm_core.cli import cli
from recrm_core.testing import RecrmCliRunner

CrmFactory = Callable[..., CRM]

TINY = '''\
"""A tiny plugin: a timeline entry for everyone, and it refuses customers named boom."""
from recrm_core import TimelineEntry, hookimpl


@hookimpl
def recrm_timeline(uow, customer):
    return [TimelineEntry(at=customer.created_at, kind="tiny", title="tiny was here",
                          source="tiny")]


@hookimpl
def recrm_customer_created(uow, customer):
    if customer.name == "boom":
        raise RuntimeError("tiny refuses boom")
'''

BROKEN = '''\
raise ImportError("needs the sms-gateway package")
'''


def install(site: Path, dist: str, entry: str, module: str, source: str) -> None:
    """Lay out what ``pip install`` would: the module and its dist-info."""
    info = site / f"recrm_{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: recrm-{dist}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[recrm]\n{entry} = {module}\n", encoding="utf-8")
    (site / f"{module}.py").write_text(source, encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site directory holding the ``tiny`` and ``broken`` plugins, on sys.path."""
    site = tmp_path / "site"
    install(site, "tinyplug", "tiny", "tinyplug", TINY)
    install(site, "brokenplug", "broken", "brokenplug", BROKEN)
    monkeypatch.syspath_prepend(str(site))  # also invalidates importlib's caches
    monkeypatch.delenv("RECRM_DISABLE_PLUGINS", raising=False)
    yield site
    sys.modules.pop("tinyplug", None)


def write_config(directory: Path, plugins: list[str]) -> Path:
    path = directory / "recrm.toml"
    names = ", ".join(json.dumps(p) for p in plugins)
    path.write_text(
        f'database_url = "sqlite:///{(directory / "crm.db").as_posix()}"\nplugins = [{names}]\n',
        encoding="utf-8",
    )
    return path


def run_recrm(*args: str, site: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed ``recrm`` console script, as a user runs it."""
    script = Path(sys.executable).with_name("recrm")
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "from recrm_core.cli import main; main()"
    ]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECRM_")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), clean.get("PYTHONPATH")]))
    clean.update(env)
    return subprocess.run(
        [*command, *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=120
    )


def by_name(listed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in listed}


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in stderr


# -- loading --------------------------------------------------------------------------------


def test_entry_point_plugin_loads_by_name(site: Path, crm_factory: CrmFactory) -> None:
    crm = crm_factory(plugins=["tiny"])
    assert crm.has_plugin("tiny")
    [info] = crm.plugin_infos
    assert (info.name, info.version, info.enabled, info.error) == ("tiny", "0.1", True, None)
    assert info.hooks == ["recrm_customer_created", "recrm_timeline"]
    c = crm.customers.add({"mobile": "13812345678"}).customer
    assert [e.title for e in crm.customers.view(c.id).timeline] == ["tiny was here"]


def test_plugin_not_enabled_is_not_loaded(site: Path, crm_factory: CrmFactory) -> None:
    crm = crm_factory()
    assert not crm.has_plugin("tiny")
    c = crm.customers.add({"name": "boom", "mobile": "13812345678"}).customer
    assert crm.customers.view(c.id).timeline == []


def test_plugins_list_json_subprocess(site: Path, tmp_path: Path) -> None:
    write_config(tmp_path, ["tiny"])
    done = run_recrm("plugins", "list", "--json", site=site, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    listed = by_name(json.loads(done.stdout))
    assert listed["tiny"] == {
        "name": "tiny",
        "version": "0.1",
        "enabled": True,
        "hooks": ["recrm_customer_created", "recrm_timeline"],
        "error": None,
        "warnings": [],
    }
    assert listed["broken"] == {
        "name": "broken",
        "version": "0.1",
        "enabled": False,
        "hooks": [],
        "error": "ImportError: needs the sms-gateway package",
        "warnings": [],
    }


def test_plugins_list_in_process_reports_a_broken_enabled_plugin(
    site: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path, ["tiny", "broken"])
    result = CliRunner().invoke(cli, ["--config", str(config), "plugins", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    listed = by_name(json.loads(result.stdout))
    assert listed["broken"]["enabled"] is True
    assert listed["broken"]["error"] == "ImportError: needs the sms-gateway package"
    assert listed["tiny"]["enabled"] is True and listed["tiny"]["error"] is None
    human = CliRunner().invoke(cli, ["--config", str(config), "plugins", "list"])
    assert human.exit_code == 0
    assert "broken" in human.stdout and "sms-gateway" in human.stdout


def test_broken_enabled_plugin_refuses_data_commands_in_one_line(
    site: Path, tmp_path: Path, recrm_database_url: str
) -> None:
    with pytest.raises(PluginError, match="needs the sms-gateway package") as failed:
        CRM(database_url=recrm_database_url, plugins=["broken"])
    assert (failed.value.plugin, failed.value.hook) == ("broken", "load")

    write_config(tmp_path, ["broken"])
    done = run_recrm("customers", "count", "--json", site=site, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert_one_line_error(done.stderr, "'broken'", "ImportError", "sms-gateway")
    # Listing still works, so the user can see what is wrong.
    assert run_recrm("plugins", "list", site=site, cwd=tmp_path).returncode == 0


def test_unknown_plugin_is_a_config_error(
    site: Path, tmp_path: Path, recrm_database_url: str
) -> None:
    with pytest.raises(ConfigError, match=r"plugin 'nope' is not installed \(installed: .*tiny"):
        CRM(database_url=recrm_database_url, plugins=["nope"])
    write_config(tmp_path, ["nope"])
    done = run_recrm("customers", "count", "--json", site=site, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "'nope' is not installed")


def test_disable_env_var_skips_a_plugin(
    site: Path, tmp_path: Path, crm_factory: CrmFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECRM_DISABLE_PLUGINS", " broken , tiny")
    crm = crm_factory(plugins=["tiny", "broken"])
    assert not crm.has_plugin("tiny") and not crm.has_plugin("broken")
    crm.customers.add({"name": "boom", "mobile": "13812345678"})  # tiny would refuse it

    config = write_config(tmp_path, ["tiny", "broken"])
    result = CliRunner().invoke(cli, ["--config", str(config), "plugins", "list", "--json"])
    listed = by_name(json.loads(result.stdout))
    assert listed["tiny"]["enabled"] is False and listed["broken"]["enabled"] is False

    done = run_recrm("customers", "count", "--json", site=site, cwd=tmp_path,
                     RECRM_DISABLE_PLUGINS="broken")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"count": 0}


def test_plugin_object_with_a_misspelt_argument_is_refused(crm_factory: CrmFactory) -> None:
    class Typo:
        name = "typo"

        @hookimpl
        def recrm_customer_created(self, uow: Any, custmer: Any) -> None:
            raise AssertionError("never called")

    with pytest.raises(PluginError, match=r"(?s)plugin 'typo' failed in load.*\{'custmer'\}"):
        crm_factory(plugins=[Typo()])


# -- a plugin raising inside an operation -------------------------------------------------


def test_plugin_raising_rolls_the_operation_back(site: Path, crm_factory: CrmFactory) -> None:
    crm = crm_factory(plugins=["tiny"])
    with pytest.raises(PluginError, match="tiny refuses boom") as failed:
        crm.customers.add({"name": "boom", "mobile": "13812345678", "project": "XL2"})
    assert (failed.value.plugin, failed.value.hook) == ("tiny", "recrm_customer_created")
    assert isinstance(failed.value.error, RuntimeError)
    # Nothing of the customer is left: no row, no identity, no project link.
    assert crm.customers.count() == 0
    assert crm.customers.find(mobile="13812345678") == []
    assert crm.projects.list() == []
    again = crm.customers.add({"name": "王伟", "mobile": "13812345678"})
    assert again.created


def test_plugin_raising_in_a_cli_command(site: Path, crm_factory: CrmFactory) -> None:
    crm = crm_factory(plugins=["tiny"])
    result = RecrmCliRunner(crm).invoke(
        "customers", "add", "--name", "boom", "--mobile", "13812345678", "--json"
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "plugin 'tiny'", "recrm_customer_created", "boom")
    assert crm.customers.count() == 0


def test_two_crms_with_different_plugins(site: Path, crm_factory: CrmFactory) -> None:
    created: list[str | None] = []

    class Counter:
        name = "counter"

        @hookimpl
        def recrm_customer_created(self, customer: Any) -> None:
            created.append(customer.name)

    strict = crm_factory(plugins=["tiny"])
    counting = crm_factory(plugins=[Counter()])
    lenient = crm_factory()
    # One database, three plugin sets: each CRM fires only its own plugins.
    assert lenient.customers.add({"name": "boom", "mobile": "13812345678"}).created
    with pytest.raises(PluginError):
        strict.customers.add({"name": "boom", "mobile": "13912345678"})
    assert created == []
    counting.customers.add({"name": "boom", "mobile": "13912345678"})
    assert created == ["boom"]
    assert [c.has_plugin("tiny") for c in (strict, counting, lenient)] == [True, False, False]
    assert [c.has_plugin("counter") for c in (strict, counting, lenient)] == [False, True, False]
    assert lenient.customers.count() == 2
