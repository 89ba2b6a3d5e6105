"""A new user's mistakes in the channel commands: the error names the option they typed."""

from __future__ import annotations

from pathlib import Path

import pytest
from channels_testkit import PROJECT

from recrm_core import CRM
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("channels")


def test_a_refused_rules_file_names_file_the_option_of_rules_set(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    # `rules set` takes --file; the service's field is `rules`, which named --rules
    # (an option only `simulate` has)
    crm.projects.ensure(PROJECT)
    rules = tmp_path / "rules.toml"
    rules.write_text("registration_valid_hours = 0\n", encoding="utf-8")
    result = cli_runner.invoke("channel", "rules", "set", "--project", PROJECT,
                               "--file", str(rules))
    assert result.exit_code == 2
    assert "Invalid value for --file: registration_valid_hours" in result.stderr
    assert "--rules" not in result.stderr
    # simulate's option is --rules: its message stays as it was
    result = cli_runner.invoke("channel", "simulate", "--project", PROJECT,
                               "--rules", str(rules))
    assert result.exit_code == 2
    assert "Invalid value for --rules: registration_valid_hours" in result.stderr
