"""Acceptance review: hostile input a new user can type that once ended in an
"internal error" (or a database error on PostgreSQL only) instead of a refusal."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from membership_helpers import club, customer, ledger, owner
from recrm_membership import MAX_POINTS

from recrm_core import CRM, Actor, ConfigError, InvalidInput
from recrm_core.testing import CliResult, RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("membership")

BOSS = Actor(staff_id="kf.wangli")


def usage_error(result: CliResult, message: str) -> None:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "internal error" not in result.stderr


def test_points_beyond_one_ledger_entry_are_refused(crm: CRM,
                                                   cli_runner: RecrmCliRunner) -> None:
    # 10**10 once landed in the INTEGER column: OverflowError on SQLite, "integer out
    # of range" on PostgreSQL, both reported as an internal error.
    c = owner(crm, "13812345678")
    svc = club(crm)
    before = ledger(crm)
    with pytest.raises(InvalidInput, match=f"at most {MAX_POINTS}"):
        svc.earn(c.id, "event", "huge", points=MAX_POINTS + 1)
    with pytest.raises(InvalidInput, match=f"at most {MAX_POINTS}"):
        svc.adjust(c.id, 10**12, reason="x", actor=BOSS)
    with pytest.raises(InvalidInput, match=f"at most {MAX_POINTS}"):
        svc.adjust(c.id, -(10**12), reason="x", actor=BOSS)
    with pytest.raises(InvalidInput, match=f"at most {MAX_POINTS}"):
        svc.redeem(c.id, 10**30)
    assert ledger(crm) == before
    cid = str(c.id)
    usage_error(cli_runner.invoke("member", "earn", cid, "--kind", "event", "--ref", "big",
                                  "--points", "99999999999999999999", "--json"), "at most")
    usage_error(cli_runner.invoke("member", "adjust", cid, "--points", "9999999999",
                                  "--reason", "x", "--actor", "kf", "--json"), "at most")
    # the largest allowed award still goes in (the boundary is inclusive)
    assert svc.earn(c.id, "event", "max", points=MAX_POINTS).awarded


@pytest.mark.parametrize("section", [{"earn": {"event": 10**10}},
                                     {"referral_reward": 10**10}])
def test_settings_cannot_award_more_than_one_entry_holds(
    crm_factory: Callable[..., CRM], section: dict[str, object]
) -> None:
    with pytest.raises(ConfigError, match=r"\[membership\]"):
        crm_factory(plugins=["membership"], settings={"membership": section})


def test_a_now_outside_the_calendar_is_a_usage_error(crm: CRM,
                                                     cli_runner: RecrmCliRunner) -> None:
    # 0001-01-01 at +08:00 is before year 1 in UTC: an OverflowError before the fix
    usage_error(cli_runner.invoke("member", "points", "--expire", "--now",
                                  "0001-01-01T00:00+08:00", "--json"), "out of range")


def test_a_staff_id_longer_than_allowed_is_a_usage_error(crm: CRM,
                                                         cli_runner: RecrmCliRunner) -> None:
    c = customer(crm, "13812345678")
    long = "x" * 65
    usage_error(cli_runner.invoke("member", "enroll", str(c.id), "--actor", long, "--json"),
                "--actor")
    club(crm).enroll(c.id)
    club(crm).earn(c.id, "event", "e1", points=100)
    usage_error(cli_runner.invoke("member", "adjust", str(c.id), "--points", "5", "--reason",
                                  "x", "--actor", long, "--json"), "--actor")
    usage_error(cli_runner.invoke("member", "adjust", str(c.id), "--points", "5", "--reason",
                                  "x", "--actor", "", "--json"), "--actor")
    assert club(crm).balance(c.id).balance == 100


def test_text_a_database_cannot_store_is_refused(crm: CRM,
                                                 cli_runner: RecrmCliRunner) -> None:
    # NUL: PostgreSQL text refuses it; "\udcff": what undecodable argv bytes become
    c = customer(crm, "13812345678")
    svc = club(crm)
    with pytest.raises(InvalidInput, match="note"):
        svc.enroll(c.id, note="bad\udcff")
    svc.enroll(c.id)
    with pytest.raises(InvalidInput, match="ref"):
        svc.earn(c.id, "event", "a\x00b", points=5)
    with pytest.raises(InvalidInput, match="project"):
        svc.earn(c.id, "event", "e", points=5, project="XL\udcff")
    with pytest.raises(InvalidInput, match="reason"):
        svc.leave(c.id, reason="\x00")
    assert ledger(crm) == []
    cid = str(c.id)
    usage_error(cli_runner.invoke("member", "earn", cid, "--kind", "event", "--ref",
                                  "ab\udcff", "--json"), "--ref")
    usage_error(cli_runner.invoke("member", "report", "--project", "ab\udcff", "--json"),
                "--project")
    assert svc.get(c.id).status == "active"
