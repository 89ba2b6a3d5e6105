"""A new user's configuration mistakes: one line naming the mistake, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_plugins import assert_one_line_error

from recrm_core import CRM, ConfigError
from recrm_core.cli import cli


def test_a_plugin_listed_twice_is_named_in_one_line(
    tmp_path: Path, recrm_database_url: str
) -> None:
    # pluggy refused the second registration with a repr of every registered module
    # (paths included), and every command failed with it
    with pytest.raises(ConfigError, match=r"plugins: 'membership' listed more than once"):
        CRM(database_url=recrm_database_url, plugins=["membership", "survey", "membership"])
    config = tmp_path / "recrm.toml"
    config.write_text(f'database_url = "{recrm_database_url}"\n'
                      'plugins = ["membership", "membership"]\n', encoding="utf-8")
    for command in (["customers", "count"], ["member", "tiers"]):
        done = CliRunner().invoke(cli, ["--config", str(config), *command])
        assert done.exit_code == 2, done.stderr
        assert_one_line_error(done.stderr, "'membership' listed more than once")
        assert "<module" not in done.stderr


def test_a_plugin_listed_twice_but_disabled_is_skipped(
    recrm_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RECRM_DISABLE_PLUGINS skips a plugin however often it is listed
    monkeypatch.setenv("RECRM_DISABLE_PLUGINS", "membership")
    crm = CRM(database_url=recrm_database_url, plugins=["membership", "membership"])
    try:
        assert not crm.has_plugin("membership")
    finally:
        crm.close()
