"""Acceptance review: hostile input a new user can type that once ended in an
"internal error", a database error on PostgreSQL only, or an invitation stuck
unsent, instead of a clear refusal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from recrm_survey import (
    answer,
    answers,
    define_survey,
    drivers,
    due,
    invitations,
    invite,
    scores,
    send_due,
    trigger_yearly,
)
from survey_testkit import Capture, ago, answered, checkin_values, customer, owner, utc

from recrm_core import CRM, InvalidInput, NotFound
from recrm_core.testing import CliResult, RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("survey")


def failed(result: CliResult, code: int, message: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "internal error" not in result.stderr


def survey(text: str) -> dict[str, object]:
    return {"key": "quick", "title": "快速回访", "invitation_text": text,
            "questions": [{"id": "nps", "type": "nps", "role": "nps", "text": "推荐意愿"}]}


@pytest.mark.parametrize("text", ["{name!x}您好：{link}", "{name}您好：{link:d}",
                                  "{name:>5}：{link}"])
def test_placeholders_with_a_conversion_or_format_spec_are_refused(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, text: str
) -> None:
    # They passed the definition and raised only in `send`, after the invitation was
    # claimed: it stayed "sending" for ever and the command died with an internal error.
    with pytest.raises(InvalidInput, match="no conversion or format spec"):
        define_survey(crm, survey(text))
    file = tmp_path / "quick.toml"
    file.write_text(f'key = "quick"\ntitle = "t"\ninvitation_text = "{text}"\n'
                    '[[questions]]\nid = "q"\ntype = "text"\ntext = "q"\n', encoding="utf-8")
    failed(cli_runner.invoke("survey", "define", str(file), "--json"), 1,
           "no conversion or format spec")


def test_plain_placeholders_are_sent(crm: CRM, register_plugin: Callable[..., str]) -> None:
    capture = Capture()
    register_plugin(capture)
    define_survey(crm, survey("{name}您好，请参加「{title}」：{link}（{project}，{expires}前）"))
    cid = customer(crm, "13812345678", name="王伟")
    invite(crm, cid, "quick")
    assert send_due(crm).sent == 1
    [message] = capture.messages
    assert message.body.startswith(f"王伟您好，请参加「快速回访」：{crm.config.public_base_url}/s/")


def test_invitation_refs_that_cannot_exist_are_not_found(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    cid = customer(crm, "13812345678")
    inv = invite(crm, cid, "csat", due_at=ago(1))
    for ref in (10**30, "9" * 30, "³", "0", -1):
        with pytest.raises(NotFound, match="no survey invitation"):
            answer(crm, ref, {"satisfaction": 5, "resolved": "已解决"})
    with pytest.raises(InvalidInput, match="not an invitation id or link token"):
        answer(crm, 1.5, {"satisfaction": 5})  # type: ignore[arg-type]
    failed(cli_runner.invoke("survey", "answer", "99999999999999999999999", "-a", "nps=1",
                             "--json"), 1, "no survey invitation")
    failed(cli_runner.invoke("survey", "answer", "³", "-a", "nps=1"), 1,
           "no survey invitation")
    failed(cli_runner.invoke("survey", "answer", "ab\udcff", "-a", "nps=1"), 2, "INVITATION")
    assert [i.status for i in invitations(crm)] == ["pending"]
    assert answer(crm, str(inv.id), {"satisfaction": 5, "resolved": "已解决"}).id > 0


@pytest.mark.parametrize("comment", ["漏水\x00严重", "漏水\ud800"])
def test_text_a_database_cannot_store_is_refused(crm: CRM, comment: str) -> None:
    # With a detractor score the comment went into the service case: on PostgreSQL a
    # DataError (NUL), everywhere a UnicodeEncodeError (lone surrogate).
    owner(crm, "13812345678", handed_over=ago(100))
    [inv] = [i for i in invitations(crm) if i.months_after == 3]
    with pytest.raises(InvalidInput, match="comment: text contains a NUL or an invalid"):
        answer(crm, inv.id, checkin_values(2, 1, 1, 1, comment=comment))
    assert answers(crm) == []
    assert crm.cases.list() == []
    result = answer(crm, inv.id, checkin_values(2, 1, 1, 1, comment="漏水严重"))
    assert result.case_id is not None


def test_undecodable_filters_are_usage_errors(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    cid = customer(crm, "13812345678")
    failed(cli_runner.invoke("survey", "scores", "--project", "ab\udcff", "--json"), 2,
           "--project")
    failed(cli_runner.invoke("survey", "drivers", "--survey", "ab\udcff", "--json"), 2,
           "--survey")
    failed(cli_runner.invoke("survey", "trigger", "--customer", str(cid), "--survey", "csat",
                             "--project", "ab\udcff", "--json"), 2, "--project")
    assert invitations(crm) == []


def test_limits_beyond_any_backend_are_refused(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    for command in ("due", "send"):
        failed(cli_runner.invoke("survey", command, "--limit", "99999999999999999999",
                                 "--json"), 2, "--limit")
    with pytest.raises(InvalidInput, match="limit must be from 1"):
        due(crm, limit=10**20)


def test_days_at_the_edges_of_the_calendar(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    # 0001-01-01 east of UTC and the day after 9999-12-31 have no UTC instant: the
    # filter once raised OverflowError while binding it.
    cid = customer(crm, "13812345678")
    answered(crm, cid, utc(2025, 4, 2, 4), checkin_values(9, 5, 5, 5, quality=5))
    first, last = dt.date(1, 1, 1), dt.date(9999, 12, 31)
    [everything] = scores(crm, since=first, until=last)
    assert (everything.answers, everything.nps_answers, everything.promoters) == (1, 1, 1)
    assert scores(crm, since=last) == []
    assert scores(crm, until=first) == []
    assert [d.n for d in drivers(crm, since=first, until=last)] == [1]
    assert drivers(crm, since=last) == []
    rows = cli_runner.invoke("survey", "scores", "--since", "0001-01-01", "--until",
                             "9999-12-31", "--json")
    assert rows.exit_code == 0 and rows.json()[0]["answers"] == 1


def test_bad_definition_shapes_and_years_are_invalid_input(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match="survey definition is an object"):
        define_survey(crm, [1, 2])  # type: ignore[arg-type]
    owner(crm, "13812345678")
    for year in (10**6, -1, 1999):
        with pytest.raises(InvalidInput, match="is not from 2000 to 2100"):
            trigger_yearly(crm, year=year)
    assert trigger_yearly(crm, year=2030).invited == 1
