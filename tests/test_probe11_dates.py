"""Found by a new user's probe: ``recrm channel visit --at 1850-05-05`` was logged, a
visit in 1850. A moment a person gives (an option's ``--at``/``--from``/``--now``, a
model's time: an interaction's, a task's due time, a stage move's) is refused when its
day is outside the range of every entered day (``values.check_day``: 1900-01-01 to
9998-12-31), as a receipt's day or ``audit list --from`` are; and a refused channel
registration says its times in the business time zone, not in UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from recrm_core import CRM, InvalidInput
from recrm_core.testing import ApiClients, CliResult, RecrmCliRunner
from recrm_core.testing import problem_of as problem

MOBILE = "13812345678"


def one_error_line(result: CliResult, code: int) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.recrm_plugins("newsletter", "membership", "channels")
@pytest.mark.parametrize("command", [
    ("newsletter", "campaign", "schedule", "spring", "--at"),
    ("member", "points", "--expire", "--yes", "--force", "--now"),
    ("channel", "visit", "--project", "XL2", "--mobile", MOBILE, "--at"),
    ("channel", "rules", "set", "--project", "XL2", "--file", "rules.toml", "--from"),
])
@pytest.mark.parametrize("moment", ["1850-05-05", "1899-12-31T23:59", "9999-01-01",
                                    "1850-05-05T08:00+08:00"])
def test_a_moment_outside_the_range_of_entered_days_is_a_usage_error(
        crm: CRM, cli_runner: RecrmCliRunner, command: tuple[str, ...], moment: str,
        tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    with open("rules.toml", "w", encoding="utf-8") as f:
        f.write("registration_valid_hours = 72\n")
    line = one_error_line(cli_runner.invoke(*command, moment), 2)
    assert f"'{moment}' is out of range (1900-01-01 to 9998-12-31)" in line
    assert f"--{command[-1].lstrip('-')}" in line


@pytest.mark.recrm_plugins("channels")
def test_the_first_day_of_the_range_in_utc_is_named(crm: CRM, cli_runner: RecrmCliRunner
                                                    ) -> None:
    """1900-01-01 at midnight in Shanghai is the last day of 1899 in UTC, which the
    services see: refused at the option, saying so (not as ``--entries[0].occurred-at``)."""
    line = one_error_line(cli_runner.invoke("channel", "visit", "--project", "XL2", "--mobile",
                                            MOBILE, "--at", "1900-01-01"), 2)
    assert "--at: '1900-01-01' is out of range (1900-01-01 to 9998-12-31): it is 1899-12-31" \
        in line
    done = cli_runner.invoke("channel", "visit", "--project", "XL2", "--mobile", MOBILE,
                             "--at", "1900-01-02")
    assert done.exit_code == 0, done.stderr


def test_a_time_out_of_range_is_refused_by_every_model(crm: CRM) -> None:
    cid = crm.customers.add({"mobile": MOBILE}).customer.id
    long_ago = dt.datetime(1850, 5, 5, tzinfo=dt.UTC)
    with pytest.raises(InvalidInput, match=r"occurred_at 1850-05-05 is out of range"):
        crm.interactions.log(cid, {"kind": "call", "occurred_at": long_ago})
    with pytest.raises(InvalidInput, match=r"due_at 1850-05-05 is out of range"):
        crm.tasks.add({"customer_id": cid, "project": "XL2", "kind": "call",
                       "due_at": long_ago})
    assert crm.interactions.list(cid) == []
    # the first and the last day of the range, as written in their own time zone
    first = dt.datetime(1900, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    crm.interactions.log(cid, {"kind": "call", "occurred_at": first})


@pytest.mark.parametrize("value", ["1850-05-05T00:00:00+08:00", "9999-06-01T00:00:00Z"])
def test_a_time_out_of_range_over_http_is_422_naming_the_field(
        api_client: ApiClients, crm: CRM, value: str) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"mobile": MOBILE}).json()["customer"]["id"]
    got = problem(client.post(f"/v1/customers/{cid}/interactions",
                              json={"kind": "call", "occurred_at": value}), 422)
    assert got["field"] == "occurred_at" and "is out of range (1900-01-01 to 9998-12-31)" \
        in got["detail"]
    got = problem(client.post(f"/v1/customers/{cid}/stage", json={
        "stage": "visitor", "project": "XL2", "occurred_at": value}), 422)
    assert got["field"] == "occurred_at"


@pytest.mark.recrm_plugins("channels")
def test_a_refused_registration_says_its_time_in_the_business_zone(
        crm: CRM, cli_runner: RecrmCliRunner) -> None:
    assert cli_runner.invoke("projects", "add", "XL2", "--name", "Xinglong II").exit_code == 0
    for agency, agent in (("AG1", "a1"), ("AG2", "b1")):
        assert cli_runner.invoke("channel", "agency", "add", agency, "--name", agency
                                 ).exit_code == 0
        assert cli_runner.invoke("channel", "agent", "add", agent, "--name", agent,
                                 "--agency", agency).exit_code == 0
    first = cli_runner.invoke("channel", "register", "--agent", "a1", "--project", "XL2",
                              "--mobile", MOBILE, "--json")
    assert first.exit_code == 0, first.stderr
    until = dt.datetime.fromisoformat(first.json()["valid_until"])
    shown = until.astimezone(crm.config.zone).strftime("%Y-%m-%d %H:%M")
    line = one_error_line(cli_runner.invoke("channel", "register", "--agent", "b1",
                                            "--project", "XL2", "--mobile", MOBILE), 1)
    assert line.endswith(f"already registered by another agency until {shown}"), line
    assert "UTC" not in line


@pytest.mark.parametrize("day", ["0001-01-01", "1850-05-05", "1899-12-31"])
def test_a_birth_date_out_of_range_is_refused_everywhere(
        api_client: ApiClients, cli_runner: RecrmCliRunner, crm: CRM, day: str) -> None:
    """A sibling found on the way: a birth date of 0001-01-01 was stored."""
    got = problem(api_client("admin").post("/v1/customers", json={
        "mobile": MOBILE, "birth_date": day}), 422)
    assert got["field"] == "birth_date"
    assert f"{day} is out of range (1900-01-01 to 9998-12-31)" in got["detail"]
    line = one_error_line(cli_runner.invoke("customers", "add", "--mobile", MOBILE,
                                            "--birth-date", day), 2)
    assert "--birth-date" in line and "out of range" in line
    assert crm.customers.count() == 0
