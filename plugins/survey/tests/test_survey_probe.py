"""Found by probing as a new user: a misspelt survey key in ``scores``/``drivers`` is
"no survey" (exit 1, 404) like an unknown project, not an empty table read as
"nobody answered"; a definition file or ``--answers`` nested thousands deep is a
usage error (exit 2), not an internal RecursionError."""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path

import pytest
from recrm_survey import drivers, scores
from survey_testkit import answered, checkin_values, customer, utc

from recrm_core import CRM, NotFound
from recrm_core.testing import ApiClients, RecrmCliRunner
from recrm_core.testing import problem_of as problem

pytestmark = pytest.mark.recrm_plugins("survey")
#: the module (the package exports its function ``scores`` under the same name)
survey_scores = import_module("recrm_survey.scores")


@pytest.mark.parametrize("command", ["scores", "drivers"])
def test_an_unknown_survey_key_is_refused(crm: CRM, cli_runner: RecrmCliRunner,
                                          command: str) -> None:
    result = cli_runner.invoke("survey", command, "--survey", "handover_chekin")
    assert result.exit_code == 1, result.stderr
    assert result.stderr.strip() == "error: no survey 'handover_chekin'"
    known = cli_runner.invoke("survey", command, "--survey", "handover_checkin", "--json")
    assert known.exit_code == 0, known.stderr
    assert known.stdout.strip() == "[]"


def test_the_api_answers_404_for_an_unknown_survey(crm: CRM,
                                                   api_client: ApiClients) -> None:
    client = api_client("admin")
    for route in ("/v1/survey/scores", "/v1/survey/drivers"):
        assert "no survey 'nope'" in problem(client.get(route, params={"survey": "nope"}),
                                             404)["detail"]


def test_answers_of_a_survey_no_longer_defined_still_count(
        crm: CRM, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = customer(crm, "13812340000", name="王伟")
    answered(crm, cid, utc(2025, 4, 2, 4), checkin_values(9, 4, 5, 5))

    def dropped(session: object, crm: CRM, key: str) -> None:
        raise NotFound(f"no survey {key!r}")

    # as if its [survey.definitions] entry had been removed from recrm.toml
    monkeypatch.setattr(survey_scores, "definition_in", dropped)
    [row] = scores(crm, survey="handover_checkin", period="all")
    assert row.answers == 1
    with pytest.raises(NotFound):
        drivers(crm, survey="yearly_2019")


@pytest.mark.parametrize(("name", "text"), [
    ("deep.json", '{"a":' * 5000 + "1" + "}" * 5000),
    ("deep.toml", "a = " + "[" * 5000 + "]" * 5000 + "\n"),
])
def test_a_definition_nested_too_deeply_is_a_usage_error(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = cli_runner.invoke("survey", "define", str(path))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().endswith("nested too deeply")
    assert "internal error" not in result.stderr
    deep = cli_runner.invoke("survey", "answer", "1", "--answers", "[" * 5000 + "]" * 5000)
    assert deep.exit_code == 2, deep.stderr
    assert deep.stderr.strip() == "error: Invalid value for --answers: not JSON: nested too deeply"


@pytest.mark.parametrize("name", ["fifo.json", "fifo.toml"])
def test_a_fifo_named_as_a_definition_is_refused_without_waiting(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, name: str) -> None:
    # Opening a FIFO for reading waits for a writer: the define command must look first.
    path = tmp_path / name
    os.mkfifo(path)
    result = cli_runner.invoke("survey", "define", str(path))
    assert result.exit_code == 2, result.stderr
    assert "not a file" in result.stderr and "internal error" not in result.stderr
