"""``recrm newsletter ...``: the flow on the command line with --json, a refusal's one
line and exit 1, a bad value's exit 2, and terminal values escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from newsletter_testkit import HTML, add_customers

from recrm_core import CRM
from recrm_core.testing import CliResult, RecrmCliRunner

# the messages go to the core's console transport (stderr)
pytestmark = pytest.mark.recrm_plugins("newsletter")


def ok(result: CliResult) -> object:
    assert result.exit_code == 0, result.stderr
    return result.json() if result.stdout.strip() else None


def test_the_whole_flow_on_the_command_line(crm: CRM, cli_runner: RecrmCliRunner,
                                            tmp_path: Path) -> None:
    ids = add_customers(crm, 3)
    run = cli_runner.invoke
    ok(run("newsletter", "segment", "save", "prospects",
           '{"field": "stage", "op": "eq", "value": "prospect"}'))
    assert ok(run("newsletter", "segment", "count", "prospects", "--json")) == {
        "segment": "prospects", "count": 3}
    assert "prospects" in ok(run("newsletter", "segment", "list", "--json"))  # type: ignore[operator]
    html = tmp_path / "body.html"
    html.write_text(HTML, encoding="utf-8")
    created = ok(run("newsletter", "campaign", "create", "launch", "--channel", "email",
                     "--segment", "prospects", "--subject", "开盘 {{ name }}",
                     "--html", str(html), "--json"))
    assert created["state"] == "draft"  # type: ignore[index]
    preview = ok(run("newsletter", "campaign", "preview", "launch", str(ids[0]), "--json"))
    assert preview["subject"] == "开盘 王伟0"  # type: ignore[index]
    assert "List-Unsubscribe" in preview["headers"]  # type: ignore[index]
    ok(run("newsletter", "campaign", "test", "launch", "me@example.com"))
    report = ok(run("newsletter", "campaign", "send", "launch", "--json"))
    assert (report["sent"], report["send"]["state"]) == (3, "sent")  # type: ignore[index]
    status = run("newsletter", "campaign", "status", "launch")
    assert "audience 3, sent 3" in status.stdout
    refused = run("newsletter", "campaign", "pause", "launch")
    assert refused.exit_code == 1 and len(refused.stderr.strip().splitlines()) == 1
    assert "sent" in refused.stderr
    ok(run("newsletter", "suppress", "add", "email", "owner0@example.com"))
    listed = ok(run("newsletter", "suppress", "list", "--json"))
    assert [s["reason"] for s in listed] == ["manual"]  # type: ignore[union-attr]
    assert ok(run("newsletter", "run", "--json"))["sent"] == 0  # type: ignore[index]


def test_user_mistakes_are_one_line(crm: CRM, cli_runner: RecrmCliRunner,
                                    tmp_path: Path) -> None:
    run = cli_runner.invoke
    bad_json = run("newsletter", "segment", "save", "x", "{not json")
    assert bad_json.exit_code == 2 and "Traceback" not in bad_json.stderr
    bad_field = run("newsletter", "segment", "save", "x", '{"field": "nope", "op": "eq", '
                    '"value": 1}')
    assert bad_field.exit_code == 2
    missing = run("newsletter", "campaign", "status", "nope")
    assert missing.exit_code == 1 and len(missing.stderr.strip().splitlines()) == 1
    no_way_out = tmp_path / "t.txt"
    no_way_out.write_text("开盘了", encoding="utf-8")
    ok(run("newsletter", "segment", "save", "all", '{"all": []}'))
    refused = run("newsletter", "campaign", "create", "c", "--channel", "sms", "--segment",
                  "all", "--text", str(no_way_out))
    assert refused.exit_code == 1 and "回T退订" in refused.stderr
    escaped = run("newsletter", "campaign", "status", "\x1b[31mred")
    assert "\x1b" not in escaped.stderr
    # a file that is not there is a usage error, as for every command reading one
    assert run("newsletter", "bounce", "ingest", str(tmp_path / "none")).exit_code == 2


def test_magazine_on_the_command_line(crm: CRM, cli_runner: RecrmCliRunner,
                                      tmp_path: Path) -> None:
    add_customers(crm, 2, purpose="newsletter")
    run = cli_runner.invoke
    ok(run("newsletter", "segment", "save", "owners", '{"all": []}'))
    ok(run("newsletter", "magazine", "create", "XLJ", "--title", "兴隆大家庭",
           "--channel", "email"))
    html = tmp_path / "i.html"
    html.write_text(HTML, encoding="utf-8")
    issue = ok(run("newsletter", "magazine", "issue", "XLJ", "--number", "12", "--segment",
                   "owners", "--subject", "第 12 期", "--html", str(html), "--json"))
    assert issue["name"] == "XLJ#12"  # type: ignore[index]
    sent = run("newsletter", "campaign", "send", "XLJ#12")
    assert sent.exit_code == 0 and "audience 2, sent 2" in sent.stdout
    archive = ok(run("newsletter", "magazine", "archive", "XLJ", "--json"))
    assert [(r["send"]["issue_number"], r["sent"]) for r in archive] == [(12, 2)]  # type: ignore[union-attr]


def test_a_terminal_gets_a_progress_bar(crm: CRM, cli_runner: RecrmCliRunner,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal, `campaign send` shows a rich progress bar on stderr (a pipe or cron
    gets none); the bar is gone when the send ends, the summary line stays."""
    add_customers(crm, 3)
    run = cli_runner.invoke
    ok(run("newsletter", "segment", "save", "prospects",
           '{"field": "stage", "op": "eq", "value": "prospect"}'))
    html = tmp_path / "body.html"
    html.write_text(HTML, encoding="utf-8")
    ok(run("newsletter", "campaign", "create", "launch[bold]", "--channel", "email",
           "--segment", "prospects", "--subject", "开盘", "--html", str(html)))
    seen: list[str] = []
    import rich.progress

    real_update = rich.progress.Progress.update

    def update(self: rich.progress.Progress, task: Any, **kwargs: Any) -> None:
        seen.append(str(kwargs.get("description")))
        real_update(self, task, **kwargs)

    monkeypatch.setattr(rich.progress.Progress, "update", update)
    monkeypatch.setattr("recrm_newsletter.cli._on_terminal", lambda: True)
    sent = run("newsletter", "campaign", "send", "launch[bold]")
    assert sent.exit_code == 0, sent.stderr
    assert seen and seen[-1] == "launch\\[bold]: 3 sent or failed, 0 skipped"
