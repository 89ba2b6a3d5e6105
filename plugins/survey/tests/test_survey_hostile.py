"""Hostile values reach the terminal as written (issue 7): markup and control
characters in survey titles and in customers' names, through ``recrm survey`` and
the console transport that prints invitations."""

from __future__ import annotations

from pathlib import Path

import pytest
from survey_testkit import ago, owner

from recrm_core import CRM
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("survey")

# rich markup that would fail or turn into a live link, and a terminal title sequence;
# the table wraps the title at its spaces
SHOWN_TITLE = ("[/bold]x", "[link=http://evil.example/]click[/link]", r"\x1b]0;pwned\x07")


def test_survey_list_shows_a_hostile_title_as_written(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    definition = tmp_path / "hostile.toml"
    definition.write_text(
        'key = "hostile"\ntitle = "[/bold]x [link=http://evil.example/]click[/link] '
        '\\u001b]0;pwned\\u0007"\n\n[[questions]]\nid = "nps"\ntype = "nps"\n'
        'text = "推荐意愿"\nrole = "nps"\n', encoding="utf-8")
    defined = cli_runner.invoke("survey", "define", str(definition))
    assert defined.exit_code == 0, defined.stderr
    listed = cli_runner.invoke("survey", "list")
    assert listed.exit_code == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "\x07" not in listed.stdout
    assert all(part in listed.stdout for part in SHOWN_TITLE), listed.stdout


def test_the_console_transport_prints_a_hostile_name_as_escapes(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    owner(crm, "13812345678", handed_over=ago(100), name="王\x1b[2J伟\x9b")
    sent = cli_runner.invoke("survey", "send")
    assert sent.exit_code == 0, sent.stderr
    assert "\x1b" not in sent.stderr and "\x9b" not in sent.stderr
    assert r"王\x1b[2J伟\x9b您好" in sent.stderr
