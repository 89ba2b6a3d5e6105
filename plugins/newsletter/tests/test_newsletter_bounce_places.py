"""Found by probing as a new user: ``bounce ingest`` counted what it could not read
("2 unreadable") without saying which line or mail, or why, so nobody could fix the
file; and a JSON string holding U+2028 (valid JSON) split its line in two."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from recrm_newsletter.inbound import ingest

from recrm_core import CRM
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("newsletter")

LINES = (
    '{"address": "hard@example.com", "type": "hard"}\n'
    "\n"
    "not json at all\n"
    '{"address": "a@example.com", "type": "bounced"}\n'
    '{"address": "b@example.com", "type": "soft", "at": "yesterday"}\n'
    '{"type": "hard"}\n'
    '{"address": "not an address", "type": "hard"}\n'
    '{"address": "c@example.com", "type": "hard", "note": "a\u2028b"}\n'
)


def test_each_unreadable_line_is_named_with_its_reason(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "bounces.jsonl"
    path.write_text(LINES, encoding="utf-8")
    result = ingest(crm, path)
    assert (result.reports, result.unreadable) == (2, 5)
    assert [u.where for u in result.unreadable_reports] == [
        "line 3", "line 4", "line 5", "line 6", "line 7"]
    reasons = [u.reason for u in result.unreadable_reports]
    assert "JSON" in reasons[0] and "type" in reasons[1] and "at" in reasons[2]
    assert "address" in reasons[3] and "address" in reasons[4]
    # no personal data in a reason: the address is the user's to find on that line
    assert not any("not an address" in r or "@" in r for r in reasons)


def test_the_cli_prints_where_and_why(crm: CRM, cli_runner: RecrmCliRunner,
                                      tmp_path: Path) -> None:
    path = tmp_path / "bounces.jsonl"
    path.write_text(LINES, encoding="utf-8")
    result = cli_runner.invoke("newsletter", "bounce", "ingest", str(path))
    assert result.exit_code == 0, result.stderr
    assert "line 3: " in result.stderr and "line 7: " in result.stderr
    assert "not an address" not in result.stderr
    again = cli_runner.invoke("newsletter", "bounce", "ingest", str(path), "--json")
    data = json.loads(again.stdout)
    assert data["unreadable"] == 5
    assert data["unreadable_reports"][0]["where"] == "line 3"


def test_a_mail_that_is_no_report_is_named(crm: CRM, tmp_path: Path) -> None:
    folder = tmp_path / "dsn"
    folder.mkdir()
    (folder / "hello.eml").write_bytes(b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
    result = ingest(crm, folder)
    assert [(u.where, u.reason) for u in result.unreadable_reports] == [
        ("hello.eml", "not a delivery or complaint report (text/plain)")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_or_device_in_the_folder_is_named_not_read(crm: CRM, tmp_path: Path) -> None:
    """A FIFO among the .eml files blocked the command for ever, and a link to
    /dev/zero read without end; each is now one unreadable entry with its reason."""
    folder = tmp_path / "dsn"
    folder.mkdir()
    os.mkfifo(folder / "a.eml")
    (folder / "b.eml").symlink_to("/dev/zero")
    (folder / "c.eml").mkdir()
    (folder / "d.eml").write_bytes(b"Subject: hi\r\n\r\nhello\r\n")
    result = ingest(crm, folder)
    assert [(u.where, u.reason) for u in result.unreadable_reports] == [
        ("a.eml", "it is a FIFO (named pipe), not a file"),
        ("b.eml", "it is a character device, not a file"),
        ("c.eml", "it is a directory, not a file"),
        ("d.eml", "not a delivery or complaint report (text/plain)")]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_template_file_that_is_a_fifo_is_refused(crm: CRM, cli_runner: RecrmCliRunner,
                                                   tmp_path: Path) -> None:
    fifo = tmp_path / "body.html"
    os.mkfifo(fifo)
    result = cli_runner.invoke("newsletter", "campaign", "create", "c1", "--channel",
                               "email", "--subject", "hi", "--html", str(fifo))
    assert result.exit_code == 2, result.stderr
    assert "it is a FIFO (named pipe), not a file" in result.stderr
    assert "Traceback" not in result.stderr
