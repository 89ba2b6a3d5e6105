"""An expiry run cannot be typed into destroying points: a ``--now`` more than a day
ahead needs ``--force``, the run says what it will expire and asks (``--yes`` skips
the question, a refusal or a missing terminal changes nothing), and ``--dry-run``
shows what would expire from the same code as the run.

Before: ``recrm member points --expire --now 9999-12-31`` wrote off every member's
points at once, without a word.
"""

from __future__ import annotations

import datetime as dt

import pytest
from membership_helpers import T0, club, ledger, owner
from recrm_membership import cli as membership_cli

from recrm_core import CRM
from recrm_core.testing import CliResult, RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("membership")


def error_line(result: CliResult, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    return line


def expiries(crm: CRM) -> list[int]:
    return [points for _, kind, points, _ in ledger(crm) if kind == "expire"]


@pytest.fixture
def two_members(crm: CRM) -> CRM:
    """Two members with 100 and 250 points earned in January 2023 (due January 2025)."""
    for mobile, points in (("13812345678", 100), ("13912345678", 250)):
        c = owner(crm, mobile)
        club(crm).earn(c.id, "gift", "old", points=points, occurred_at=T0)
    return crm


# (9999-12-31 is out of the range of entered days, with --force too: test_probe11_dates)
@pytest.mark.parametrize("now", ["9998-12-31", "2999-01-01T00:00+08:00"])
def test_a_now_far_in_the_future_is_a_usage_error(two_members: CRM, cli_runner: RecrmCliRunner,
                                                   now: str) -> None:
    line = error_line(cli_runner.invoke("member", "points", "--expire", "--now", now, "--yes"), 2)
    assert "--now" in line and "more than a day in the future" in line and "--force" in line
    assert expiries(two_members) == []
    # --force is the way to mean it
    done = cli_runner.invoke("member", "points", "--expire", "--now", now, "--yes", "--force",
                             "--json")
    assert done.exit_code == 0, done.stderr
    assert (done.json()["members"], done.json()["points"]) == (2, 350)


def test_up_to_a_day_ahead_is_accepted(two_members: CRM, cli_runner: RecrmCliRunner) -> None:
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)).isoformat()
    done = cli_runner.invoke("member", "points", "--expire", "--now", soon, "--yes", "--json")
    assert done.exit_code == 0, done.stderr
    assert done.json()["points"] == 350


def test_dry_run_shows_what_would_expire_and_changes_nothing(
    two_members: CRM, cli_runner: RecrmCliRunner
) -> None:
    human = cli_runner.invoke("member", "points", "--expire", "--now", "2025-02-01", "--dry-run")
    assert human.exit_code == 0, human.stderr
    assert "would expire 350 points of 2 members" in human.stderr
    assert "nothing was changed" in human.stderr
    preview = cli_runner.invoke("member", "points", "--expire", "--now", "2025-02-01",
                                "--dry-run", "--json").json()
    assert (preview["dry_run"], preview["members"], preview["points"]) == (True, 2, 350)
    assert expiries(two_members) == []
    # the run then writes exactly what the preview listed
    done = cli_runner.invoke("member", "points", "--expire", "--now", "2025-02-01", "--yes",
                             "--json").json()
    assert done["dry_run"] is False
    assert done["entries"] == preview["entries"]
    assert sorted(expiries(two_members)) == [-250, -100]


def test_the_service_preview_is_the_run_without_writing(two_members: CRM) -> None:
    at = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
    svc = club(two_members)
    preview = svc.expire(at, dry_run=True)
    assert expiries(two_members) == []
    done = svc.expire(at)
    assert (preview.entries, preview.points, preview.dry_run) == (done.entries, 350, True)
    assert svc.expire(at, dry_run=True).points == 0  # nothing left: the preview agrees


def test_without_a_terminal_and_without_yes_nothing_changes(
    two_members: CRM, cli_runner: RecrmCliRunner
) -> None:
    # stdin is a pipe (cron, a script): a "y" on it is not a person confirming
    result = cli_runner.invoke("member", "points", "--expire", "--now", "2025-02-01",
                               input="y\n")
    line = error_line(result, 1)
    assert "would expire 350 points of 2 members" in line
    assert "nothing was changed" in line and "--yes" in line
    assert expiries(two_members) == []


def test_a_declined_confirmation_changes_nothing(
    two_members: CRM, cli_runner: RecrmCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(membership_cli, "on_terminal", lambda: True)
    result = cli_runner.invoke("member", "points", "--expire", "--now", "2025-02-01",
                               input="n\n")
    assert "350 points of 2 members" in result.stderr  # what it asked about
    line = error_line(result, 1)
    assert "nothing was changed" in line
    assert expiries(two_members) == []
    # an empty answer is no too
    error_line(cli_runner.invoke("member", "points", "--expire", "--now", "2025-02-01",
                                 input="\n"), 1)
    assert expiries(two_members) == []


def test_a_confirmed_run_expires(two_members: CRM, cli_runner: RecrmCliRunner,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(membership_cli, "on_terminal", lambda: True)
    result = cli_runner.invoke("member", "points", "--expire", "--now", "2025-02-01",
                               input="y\n")
    assert result.exit_code == 0, result.stderr
    assert "expired 350 points of 2 members" in result.stderr
    assert sorted(expiries(two_members)) == [-250, -100]


def test_nothing_to_expire_asks_nothing(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    result = cli_runner.invoke("member", "points", "--expire")
    assert result.exit_code == 0 and "expired 0 points" in result.stderr


@pytest.mark.parametrize("option", ["--dry-run", "--yes", "--force"])
def test_the_guard_options_go_with_expire(crm: CRM, cli_runner: RecrmCliRunner,
                                          option: str) -> None:
    line = error_line(cli_runner.invoke("member", "points", "1", option), 2)
    assert f"{option} goes with --expire" in line
