"""Found by probing as a new user: ``bounce ingest`` given a file it cannot read —
not UTF-8, a FIFO, a line nested thousands deep — answers one line (exit 2), or
counts the line as unreadable, instead of an internal error."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from recrm_newsletter.inbound import ingest

from recrm_core import CRM, InvalidInput
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("newsletter")

HARD = '{"address": "owner0@example.com", "type": "hard"}\n'


def test_a_line_nested_too_deeply_is_unreadable(crm: CRM, cli_runner: RecrmCliRunner,
                                                tmp_path: Path) -> None:
    lines = tmp_path / "bounces.jsonl"
    lines.write_text("[" * 5000 + "]" * 5000 + "\n" + HARD, encoding="utf-8")
    result = cli_runner.invoke("newsletter", "bounce", "ingest", str(lines), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"reports": 1, "suppressed": 1, "unreadable": 1,
                                         "already_read": 0, "unreadable_reports": [
                                             {"where": "line 1",
                                              "reason": "nested too deeply"}]}


def test_a_file_that_is_not_utf8_is_refused_before_reading(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    lines = tmp_path / "bounces.jsonl"
    lines.write_bytes(HARD.encode("utf-8") + "退订".encode("gbk") + b"\n")
    result = cli_runner.invoke("newsletter", "bounce", "ingest", str(lines))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip() == (
        "error: Invalid value for 'PATH': 'bounces.jsonl' is neither a mailbox nor UTF-8 "
        "JSON lines (byte 50 is not UTF-8)")
    with pytest.raises(InvalidInput):
        ingest(crm, lines)
    bom = tmp_path / "bom.jsonl"
    bom.write_text(HARD, encoding="utf-8-sig")  # Notepad's UTF-8
    assert ingest(crm, bom).reports == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_rather_than_read(crm: CRM, cli_runner: RecrmCliRunner,
                                            tmp_path: Path) -> None:
    fifo = tmp_path / "bounces"
    os.mkfifo(fifo)
    result = cli_runner.invoke("newsletter", "bounce", "ingest", str(fifo))
    assert result.exit_code == 2, result.stderr
    assert "is neither a regular file nor a directory" in result.stderr
