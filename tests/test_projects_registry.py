"""A project registry (issue 9): ``recrm projects add|list|rename``, the
``auto_create_projects`` setting, and one convention for unknown project names.

Every test runs on SQLite and PostgreSQL. The races run in separate processes, each
with its own CRM on the same database: the UNIQUE code decides, not a Python check.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recrm_core import (
    CRM,
    InvalidInput,
    NotFound,
    PluginError,
    Project,
    ProjectIn,
    Refused,
    RejectedRow,
    UnitOfWork,
    UnknownProject,
    hookimpl,
)
from recrm_core.config import load_settings
from recrm_core.tables import ProjectRow
from recrm_core.testing import CliResult, RecrmCliRunner, StartLine, run_together

Factory = Callable[..., CRM]
OFF = {"auto_create_projects": False}


def ok(result: CliResult) -> Any:
    assert result.exit_code == 0, result.stderr
    return result.json() if result.stdout.startswith(("{", "[")) else None


def refused(result: CliResult, code: int, message: str) -> None:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def codes(crm: CRM) -> list[str]:
    return [p.code for p in crm.projects.list()]


# -- projects add / list --------------------------------------------------------------------


def test_add_and_list(cli_runner: RecrmCliRunner) -> None:
    added = ok(cli_runner.invoke("projects", "add", "XL2", "--name", "星珑湾二期", "--city",
                                 "深圳", "--service-department", "万物云客服", "--json"))
    assert {k: v for k, v in added.items() if k != "id"} == {
        "code": "XL2", "name": "星珑湾二期", "city": "深圳", "service_department": "万物云客服"}
    ok(cli_runner.invoke("projects", "add", " YH1 ", "--name", "御湖一期"))
    listed = ok(cli_runner.invoke("projects", "list", "--json"))
    assert [(p["code"], p["city"]) for p in listed] == [("XL2", "深圳"), ("YH1", None)]
    human = cli_runner.invoke("projects", "list")
    assert human.exit_code == 0 and "星珑湾二期" in human.stdout and "万物云客服" in human.stdout


def test_add_refuses_an_existing_code_and_bad_values(cli_runner: RecrmCliRunner) -> None:
    ok(cli_runner.invoke("projects", "add", "XL2", "--name", "星珑湾二期"))
    refused(cli_runner.invoke("projects", "add", "XL2", "--name", "别的", "--json"), 1,
            "project 'XL2' already exists")
    refused(cli_runner.invoke("projects", "add", " ", "--name", "空"), 2, "project code is empty")
    refused(cli_runner.invoke("projects", "add", "X" * 65, "--name", "长"), 2, "64 characters")
    refused(cli_runner.invoke("projects", "add", "YH1", "--name", " "), 2, "name is empty")
    refused(cli_runner.invoke("projects", "add", "YH1", "--name", "御湖", "--city", "c" * 65),
            2, "--city")
    refused(cli_runner.invoke("projects", "add", "YH1"), 2, "--name")
    assert codes(cli_runner.crm) == ["XL2"]
    assert cli_runner.crm.projects.get("XL2").name == "星珑湾二期"


def test_sdk_takes_and_returns_models(crm: CRM) -> None:
    project = crm.projects.add(ProjectIn(code="XL2", name="星珑湾二期", city="深圳"))
    assert isinstance(project, Project) and project.city == "深圳"
    assert crm.projects.add({"code": "YH1", "name": "御湖一期"}).service_department is None
    assert crm.projects.get(" XL2 ") == project
    assert crm.projects.list() == [project, crm.projects.get("YH1")]
    with pytest.raises(InvalidInput) as info:
        crm.projects.add({"code": "", "name": "x"})
    assert info.value.field == "code"
    with pytest.raises(Refused, match="already exists"):
        crm.projects.add({"code": "XL2", "name": "again"})


# -- projects rename ------------------------------------------------------------------------


def test_rename_keeps_every_link(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    cid = crm.customers.add({"mobile": "13812345678", "project": "XL2",
                             "owner_staff": "zhang"}).customer.id
    crm.customers.set_stage(cid, "buyer", "XL2", unit="3-1201")
    crm.interactions.log(cid, {"kind": "visit", "project": "XL2"})
    case = crm.cases.open({"customer_id": cid, "category": "repair", "subject": "漏水",
                           "project": "XL2"})
    renamed = ok(cli_runner.invoke("projects", "rename", "XL2", "XL2B", "--json"))
    assert (renamed["code"], renamed["name"]) == ("XL2B", "XL2")
    view = crm.customers.view(cid)
    assert [(p.project, p.stage, p.owner_staff) for p in view.customer.projects] == [
        ("XL2B", "buyer", "zhang")]
    assert {i.project for i in crm.interactions.list(cid)} == {"XL2B"}
    assert [c.id for c in crm.cases.list(project="XL2B")] == [case.id]
    assert crm.segments.count({"field": "project", "op": "eq", "value": "XL2B"}) == 1
    assert codes(crm) == ["XL2B"]
    # The old code names nothing now: reads refuse it, a stage change at the new one
    # moves the same link.
    refused(cli_runner.invoke("cases", "list", "--project", "XL2"), 1,
            "no such project 'XL2' (known: XL2B)")
    crm.customers.set_stage(cid, "owner", "XL2B")
    assert [(p.project, p.stage) for p in crm.customers.get(cid).projects] == [("XL2B", "owner")]


def test_rename_refusals(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    crm.projects.add({"code": "XL2", "name": "星珑湾二期"})
    crm.projects.add({"code": "YH1", "name": "御湖一期"})
    refused(cli_runner.invoke("projects", "rename", "XL2", "YH1"), 1,
            "project 'YH1' already exists")
    refused(cli_runner.invoke("projects", "rename", "XL2", " YH1 ", "--json"), 1,
            "already exists")
    refused(cli_runner.invoke("projects", "rename", "XL3", "XL4"), 1,
            "no such project 'XL3' (known: XL2, YH1)")
    refused(cli_runner.invoke("projects", "rename", "XL2", "XL2"), 1, "already has that code")
    refused(cli_runner.invoke("projects", "rename", "XL2", " "), 2, "project code is empty")
    assert codes(crm) == ["XL2", "YH1"]
    assert crm.projects.get("XL2").name == "星珑湾二期"


def test_hook_recrm_project_renamed(crm: CRM, register_plugin: Callable[..., str]) -> None:
    seen: list[tuple[str, str, str]] = []

    class Keeper:
        @hookimpl
        def recrm_project_renamed(self, uow: UnitOfWork, old_code: str, new_code: str) -> None:
            # Inside the rename's transaction: the core's row already has the new code.
            now = uow.session.scalar(select(ProjectRow.code).where(ProjectRow.code == new_code))
            seen.append((old_code, new_code, str(now)))

    class Broken:
        @hookimpl
        def recrm_project_renamed(self, uow: UnitOfWork, old_code: str, new_code: str) -> None:
            raise RuntimeError("cannot move codes")

    register_plugin(Keeper())
    crm.projects.add({"code": "XL2", "name": "星珑湾二期"})
    crm.projects.rename("XL2", "XL2B")
    assert seen == [("XL2", "XL2B", "XL2B")]
    with pytest.raises(Refused):
        crm.projects.rename("XL2B", "XL2B")
    assert len(seen) == 1  # a refused rename fires nothing
    register_plugin(Broken(), "broken")
    with pytest.raises(PluginError, match="'broken'"):
        crm.projects.rename("XL2B", "XL2C")
    assert codes(crm) == ["XL2B"]  # rolled back with the plugin's failure


# -- races: several processes on one database -----------------------------------------------


def _race_worker(url: str, action: str, args: tuple[str, ...], start: StartLine) -> str:
    crm = CRM(database_url=url)
    try:
        start.wait()
        if action == "add":
            crm.projects.add({"code": args[0], "name": args[1]})
        else:
            crm.projects.rename(args[0], args[1])
        return "ok"
    except Refused:
        return "refused"
    finally:
        crm.close()


def _race(url: str, jobs: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    return sorted(run_together(_race_worker, [(url, action, args) for action, args in jobs]))


def test_concurrent_adds_of_one_code_make_one_project(
    crm: CRM, recrm_database_url: str
) -> None:
    jobs = [("add", ("HOT", f"name {i}")) for i in range(4)]
    assert _race(recrm_database_url, jobs) == ["ok", "refused", "refused", "refused"]
    assert codes(crm) == ["HOT"]


def test_concurrent_renames_to_one_code_leave_one_winner(
    crm: CRM, recrm_database_url: str
) -> None:
    for code in ("A1", "A2", "A3"):
        crm.projects.add({"code": code, "name": code})
    jobs = [("rename", (code, "NEW")) for code in ("A1", "A2", "A3")]
    assert _race(recrm_database_url, jobs) == ["ok", "refused", "refused"]
    assert len(codes(crm)) == 3 and "NEW" in codes(crm)


# -- auto_create_projects -----------------------------------------------------------------------


def test_the_setting_defaults_to_creating_and_reads_from_recrm_toml(tmp_path: Path) -> None:
    assert load_settings(search_cwd=False).auto_create_projects is True
    config = tmp_path / "recrm.toml"
    config.write_text("auto_create_projects = false\n", encoding="utf-8")
    assert load_settings(config).auto_create_projects is False
    config.write_text('auto_create_projects = "sometimes"\n', encoding="utf-8")
    with pytest.raises(Exception, match="auto_create_projects"):
        load_settings(config)


def test_by_default_naming_a_project_creates_it(cli_runner: RecrmCliRunner) -> None:
    added = ok(cli_runner.invoke("customers", "add", "--mobile", "13812345678", "--project",
                                 "XL2", "--json"))
    cid = str(added["customer"]["id"])
    ok(cli_runner.invoke("customers", "stage", cid, "visitor", "--project", "YH1"))
    ok(cli_runner.invoke("interactions", "log", cid, "--kind", "call", "--project", "QJ1"))
    ok(cli_runner.invoke("cases", "open", cid, "--category", "inquiry", "--subject", "价格",
                         "--project", "SZ9"))
    assert codes(cli_runner.crm) == ["QJ1", "SZ9", "XL2", "YH1"]


def test_when_off_an_unknown_project_rejects_the_import_row(crm_factory: Factory) -> None:
    crm = crm_factory(settings=OFF)
    crm.projects.add({"code": "XL2", "name": "星珑湾二期"})
    rejected: list[RejectedRow] = []
    result = crm.importer.import_rows(
        [{"mobile": "13812345678", "project": "XL2"},
         {"mobile": "13912345678", "project": "XL3"},
         {"mobile": "13712345678"},
         {"mobile": "13812345678", "project": "XL3"}],  # a known customer: still rejected
        on_reject=rejected.append,
    )
    assert (result.rows, result.created, result.merged, result.rejected) == (4, 2, 0, 2)
    assert [(r.row, r.field, r.reason) for r in rejected] == [
        (2, "project", "no such project 'XL3'"), (4, "project", "no such project 'XL3'")]
    assert codes(crm) == ["XL2"]
    assert crm.customers.find(mobile="13912345678") == []


def test_when_off_an_unknown_project_in_a_csv_goes_to_the_errors_file(
    crm_factory: Factory, tmp_path: Path
) -> None:
    crm = crm_factory(settings=OFF)
    crm.projects.add({"code": "XL2", "name": "星珑湾二期"})
    source = tmp_path / "leads.csv"
    source.write_text("姓名,手机,项目\n王伟,13812345678,XL2\n李娜,13912345678,XL3\n",
                      encoding="utf-8")
    errors = tmp_path / "rejected.csv"
    cli = RecrmCliRunner(crm)
    result = ok(cli.invoke("customers", "import", str(source), "--errors", str(errors),
                           "--json"))
    assert (result["created"], result["rejected"]) == (1, 1)
    assert errors.read_text(encoding="utf-8-sig").splitlines() == [
        "row,field,reason", "2,project,no such project 'XL3'"]


def test_when_off_every_other_command_exits_1(crm_factory: Factory) -> None:
    crm = crm_factory(settings=OFF)
    crm.projects.add({"code": "XL2", "name": "星珑湾二期"})
    cli = RecrmCliRunner(crm)
    refused(cli.invoke("customers", "add", "--mobile", "13812345678", "--project", "XL3"), 1,
            "no such project 'XL3' (known: XL2)")
    assert crm.customers.find(mobile="13812345678") == []  # nothing was created
    cid = str(crm.customers.add({"mobile": "13912345678", "project": "XL2"}).customer.id)
    refused(cli.invoke("customers", "stage", cid, "buyer", "--project", "XL3"), 1,
            "no such project 'XL3'")
    refused(cli.invoke("interactions", "log", cid, "--kind", "call", "--project", "XL3"), 1,
            "no such project 'XL3'")
    refused(cli.invoke("cases", "open", cid, "--category", "repair", "--subject", "漏水",
                       "--project", "XL3", "--json"), 1, "no such project 'XL3'")
    assert codes(crm) == ["XL2"]
    assert crm.interactions.list(int(cid)) == [] and crm.cases.list() == []
    # A known project still works, and projects add still creates.
    ok(cli.invoke("customers", "stage", cid, "buyer", "--project", "XL2"))
    ok(cli.invoke("projects", "add", "XL3", "--name", "星珑湾三期"))
    ok(cli.invoke("customers", "stage", cid, "visitor", "--project", "XL3"))
    with pytest.raises(UnknownProject):
        crm.customers.add({"mobile": "13712345678", "project": "QJ1"})


# -- unknown names in reads: one convention ---------------------------------------------------


def test_every_read_refuses_an_unknown_project(cli_runner: RecrmCliRunner) -> None:
    crm = cli_runner.crm
    cid = str(crm.customers.add({"mobile": "13812345678", "project": "XL2",
                                 "owner_staff": "zhang"}).customer.id)
    crm.projects.add({"code": "YH1", "name": "御湖一期"})
    message = "no such project 'NOPE' (known: XL2, YH1)"
    segment = '{"all":[{"field":"project","op":"in","value":["XL2","NOPE"]}]}'
    for args in (
        ("cases", "list", "--project", "NOPE"),
        ("cases", "list", "--project", "NOPE", "--json"),
        ("customers", "reassign", "zhang", "li", "--project", "NOPE"),
        ("interactions", "list", cid, "--project", "NOPE"),
        ("customers", "count", "--segment", segment),
        ("customers", "count", "--segment",
         '{"not":{"field":"project","op":"ne","value":"NOPE"}}', "--json"),
    ):
        refused(cli_runner.invoke(*args), 1, message)
    # Known projects answer as before; a project's interactions are filtered.
    ok(cli_runner.invoke("interactions", "log", cid, "--kind", "call", "--project", "YH1"))
    listed = ok(cli_runner.invoke("interactions", "list", cid, "--project", "YH1", "--json"))
    assert [i["project"] for i in listed] == ["YH1"]
    assert ok(cli_runner.invoke("interactions", "list", cid, "--project", "XL2",
                                "--json")) == []
    assert ok(cli_runner.invoke("customers", "count", "--segment",
                                segment.replace("NOPE", "YH1"), "--json")) == {"count": 1}
    # A code the definition does not name exactly (contains) is no name to check.
    assert ok(cli_runner.invoke("customers", "count", "--segment",
                                '{"field":"project","op":"contains","value":"NOPE"}',
                                "--json")) == {"count": 0}


def test_the_known_codes_are_listed_only_when_ten_or_fewer(crm: CRM) -> None:
    with pytest.raises(UnknownProject) as none:
        crm.projects.get("NOPE")
    assert str(none.value) == "no such project 'NOPE' (there are no projects)"
    for i in range(10):
        crm.projects.add({"code": f"P{i:02d}", "name": f"项目{i}"})
    with pytest.raises(NotFound) as ten:
        crm.projects.get("NOPE")
    assert str(ten.value) == ("no such project 'NOPE' (known: P00, P01, P02, P03, P04, P05, "
                              "P06, P07, P08, P09)")
    crm.projects.add({"code": "P10", "name": "项目10"})
    with pytest.raises(UnknownProject) as eleven:
        crm.projects.get("NOPE")
    assert str(eleven.value) == "no such project 'NOPE'"
    assert eleven.value.code == "NOPE" and eleven.value.known is None


def test_streaming_a_segment_checks_its_projects_first(crm: CRM) -> None:
    crm.customers.add({"mobile": "13812345678", "project": "XL2"})
    definition = {"field": "project", "op": "eq", "value": "XL3"}
    with pytest.raises(UnknownProject):
        crm.segments.iter_ids(definition)
    with pytest.raises(UnknownProject):
        crm.segments.iter_customers(definition)
    assert list(crm.segments.iter_ids({"field": "project", "op": "eq", "value": "XL2"}))
