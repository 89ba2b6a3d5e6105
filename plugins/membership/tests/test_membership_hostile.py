"""Hostile values reach the terminal as written (issue 7): markup and control
characters in what a member's ledger and lines show, through ``recrm member``."""

from __future__ import annotations

import pytest
from membership_helpers import customer

from recrm_core import CRM
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("membership")

# rich markup that would fail or turn into a live link, a terminal title sequence, a C1 CSI
REASON = "[/bold]x [link=http://evil.example/]click[/link] \x1b]0;pwned\x07 \x9b2J"
SHOWN = ("[/bold]x", "[link=http://evil.example/]click[/link]", r"\x1b]0;pwned\x07",
         r"\x9b2J")
RAW = ("\x1b", "\x07", "\x9b")


def test_ledger_and_lines_show_hostile_text_as_written(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    c = customer(crm, "13812345678", name="王伟")
    assert cli_runner.invoke("member", "enroll", str(c.id)).exit_code == 0
    # a reference is a key: an escape in one is refused (test_membership_points), so
    # the hostile text here is the reason's, free text shown as written
    earned = cli_runner.invoke("member", "earn", str(c.id), "--kind", "event",
                               "--ref", "ev[2J1", "--points", "100", "--reason", REASON)
    assert earned.exit_code == 0, earned.stderr
    for args in (("member", "show", str(c.id)), ("member", "points", str(c.id))):
        result = cli_runner.invoke(*args)
        assert result.exit_code == 0, result.stderr  # no MarkupError
        for raw in RAW:
            assert raw not in result.stdout
        assert all(part in result.stdout for part in SHOWN), result.stdout
    again = cli_runner.invoke("member", "earn", str(c.id), "--kind", "event",
                              "--ref", "ev[2J1", "--points", "100")
    assert again.exit_code == 0, again.stderr
    assert "event ev[2J1 was awarded before" in again.stderr
