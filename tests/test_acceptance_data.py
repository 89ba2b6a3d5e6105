"""Acceptance review of issue 9 (sales-office data as it really arrives) with lists laid
out the way sales offices lay them out. Each test pins a discrepancy the review found
(and fixed), or a rule it checked end to end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from test_acceptance_core import one_line_error, recrm
from test_import_xlsx import M1, M2, M3, errors_of, import_json, workbook

from recrm_core import (
    CRM,
    CUSTOMER_COLUMNS,
    ConfigError,
    ImportReadError,
    UnknownColumns,
    open_table,
)
from recrm_core.testing import RecrmCliRunner

# -- tables that do not start in column A -------------------------------------------------------


def test_a_workbook_laid_out_from_column_b(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    # A report keeps column A as a margin (or for an unlabelled 序号): its header row's
    # non-empty cells are all known names, so it is the header. It used to be refused
    # as "unknown column(s): (empty header, column 1)".
    path = workbook(tmp_path / "来访登记.xlsx", [
        [None, "星珑湾二期 来访客户登记表"],
        [None, "导出日期", dt.date(2024, 5, 31)],
        [None, "客户姓名", "手机号码", "项目"],
        [1, "王伟", int(M1), "XL2"],
        [2, "李娜", "138 0013 80", "XL2"],
        None,
        [3, "张强", M3, "XL2"],
    ], merge="B1:D1")
    errors = tmp_path / "rejected.csv"
    summary = import_json(cli_runner, str(path), "--errors", str(errors))
    assert (summary["rows"], summary["created"], summary["rejected"]) == (3, 2, 1)
    assert [c.name for c in crm.customers.find(mobile=M1)] == ["王伟"]
    assert [(r[0], r[1], r[3]) for r in errors_of(errors)[1:]] == [("2", "mobile", "5")]


def test_a_csv_with_an_empty_first_column(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    # What Excel writes when it saves such a sheet as CSV: a leading empty cell a line.
    path = tmp_path / "leads.csv"
    path.write_text(",客户姓名,手机号码\n,王伟,13812345678\n7,李娜,13912345678\n",
                    encoding="utf-8-sig")
    assert import_json(cli_runner, str(path))["created"] == 2
    assert [c.name for c in crm.customers.find(mobile=M2)] == ["李娜"]


def test_the_reader_skips_the_margin_only(tmp_path: Path) -> None:
    path = workbook(tmp_path / "b.xlsx", [[None, None, "姓名", "手机"], [9, "x", "王伟", M1]])
    with open_table(path, CUSTOMER_COLUMNS) as source:
        assert source.header.fields == {2: "name", 3: "mobile"}
        assert list(source) == [(1, {"name": "王伟", "mobile": M1})]
    # A gap between names is still a column whose name was lost.
    gap = workbook(tmp_path / "gap.xlsx", [[None, "姓名", None, "手机"], [9, "王伟", "x", M1]])
    with pytest.raises(UnknownColumns, match="empty header, column 3"):
        open_table(gap, CUSTOMER_COLUMNS)


def test_the_reader_stops_where_its_docs_say(tmp_path: Path) -> None:
    # docs/plugins.md: the rows before .stopped_at were yielded. An undecodable sample
    # holds back the rows read with it, so .row alone would over-count them.
    path = tmp_path / "list.csv"
    path.write_bytes("姓名,手机\n王伟,13812345678\n".encode("gb18030") + b"\xff\xff,1\n")
    yielded: list[int] = []
    with pytest.raises(ImportReadError) as info, open_table(path, CUSTOMER_COLUMNS) as source:
        yielded.extend(row for row, _ in source)
    assert (info.value.row, info.value.stopped_at, yielded) == (2, 1, [])


# -- the auto_create_projects switch ----------------------------------------------------------


def test_a_misspelt_setting_is_refused_not_ignored(tmp_path: Path) -> None:
    # `auto_create_project = false` used to be accepted and ignored: projects went on
    # being created from every typo, the very thing the setting is there to stop.
    (tmp_path / "recrm.toml").write_text(
        f'database_url = "sqlite:///{tmp_path / "crm.db"}"\nauto_create_project = false\n'
        '[membership]\nauto_enrol = true\n', encoding="utf-8")
    result = recrm(tmp_path, "projects", "list")
    assert result.returncode == 2
    assert one_line_error(result.stderr) == (
        "error: configuration: unknown setting 'auto_create_project';"
        " did you mean 'auto_create_projects'?")
    with pytest.raises(ConfigError, match=r"unknown setting 'colour'$"):
        CRM(database_url="sqlite://", settings={"colour": "red"}, search_cwd=False)


def test_a_misspelt_section_is_refused_not_ignored(tmp_path: Path) -> None:
    # `[membershp]` used to be accepted and ignored: the club kept its default settings.
    (tmp_path / "recrm.toml").write_text(
        f'database_url = "sqlite:///{tmp_path / "crm.db"}"\nplugins = ["membership"]\n'
        '[membershp]\nauto_enrol = true\n', encoding="utf-8")
    result = recrm(tmp_path, "projects", "list")
    assert result.returncode == 2
    assert one_line_error(result.stderr) == (
        "error: configuration: unknown section [membershp]: no enabled or installed plugin"
        " declares it; did you mean [membership]?")
    config = tmp_path / "other.toml"
    config.write_text('[colours]\nx = 1\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown section \[colours\]: no enabled or "
                       r"installed plugin declares it$"):
        CRM(database_url="sqlite://", config_path=config)
    # An installed plugin's section stays allowed while the plugin is disabled.
    config.write_text('[survey]\nx = 1\n', encoding="utf-8")
    with CRM(database_url="sqlite://", plugins=[], config_path=config) as crm:
        assert crm.plugin_names == []
