"""Found by probing as a new user: a misspelt project in a sales read (the report,
tickets, deals, receivables) is "no such project" (exit 1, 404) as in `units list`
and every core read, not an empty list or a report of zeros read as "nothing sold";
a payment plan file nested too deeply is a usage error, not an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest
from recrm_sales.payments import file_lines
from recrm_sales.report import report
from sales_testkit import setup_units

from recrm_core import CRM, InvalidInput, UnknownProject
from recrm_core.testing import ApiClients, RecrmCliRunner, problem_of

pytestmark = pytest.mark.recrm_plugins("sales")

READS = [("report",), ("tickets", "list"), ("deal", "list"), ("receivables",)]


@pytest.mark.parametrize("command", READS, ids=" ".join)
def test_the_cli_refuses_an_unknown_project(crm: CRM, cli_runner: RecrmCliRunner,
                                            tmp_path: Path, command: tuple[str, ...]) -> None:
    setup_units(crm, tmp_path)
    result = cli_runner.invoke("sales", *command, "--project", "XL3", "--json")
    assert result.exit_code == 1, result.stderr
    assert result.stderr.strip() == "error: no such project 'XL3' (known: XL2)"
    assert result.stdout == ""
    known = cli_runner.invoke("sales", *command, "--project", " XL2 ", "--json")
    assert known.exit_code == 0, known.stderr


def test_the_sdk_and_the_api_refuse_an_unknown_project(crm: CRM, api_client: ApiClients,
                                                       tmp_path: Path) -> None:
    sales = setup_units(crm, tmp_path)
    for read in (sales.tickets.list, sales.deals.list, sales.payments.receivables):
        with pytest.raises(UnknownProject):
            read(project="XL3")
    with pytest.raises(UnknownProject):
        report(crm, project="XL3")
    assert report(crm, project=" XL2 ").project == "XL2"
    manager = api_client("manager", staff="m1")
    for route in ("/v1/sales/report", "/v1/sales/tickets", "/v1/sales/receivables"):
        body = problem_of(manager.get(route, params={"project": "XL3"}), 404)
        assert "no such project 'XL3'" in body["detail"], route


def test_a_plan_file_nested_too_deeply_is_a_usage_error(crm: CRM, cli_runner: RecrmCliRunner,
                                                        tmp_path: Path) -> None:
    # found by the same probe: tomllib recurses per level, so a hostile plan file was an
    # internal RecursionError; it names the plan (exit 2) before any deal is looked up
    plan = tmp_path / "plan.toml"
    plan.write_text("payment = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="nested too deeply"):
        file_lines(plan)
    result = cli_runner.invoke("sales", "payments", "schedule", "1", "--plan", str(plan))
    assert "internal error" not in result.stderr
    assert result.exit_code == 2, result.stderr
