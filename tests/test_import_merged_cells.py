"""Merged cells in a workbook's rows: Excel shows the merged value on every row the
range spans, so each of those rows carries it (a 项目 or 置业顾问 column merged over a
block of visitors, a 楼栋 merged over its units)."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from recrm_core import CRM


def _workbook(path: Path, rows: list[list[object]], merges: list[str]) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    for ref in merges:
        ws.merge_cells(ref)
    wb.save(path)
    return path


def test_a_column_merged_over_rows_gives_each_row_its_value(crm: CRM, tmp_path: Path) -> None:
    """Found by probing as a new user: only the first row of a merged 项目 / 置业顾问
    block got the project and owner; the rows below were imported without them, exit
    0, while Excel shows them under XL9 and zhang."""
    path = _workbook(tmp_path / "visits.xlsx", [
        ["来访登记"],
        ["项目", "置业顾问", "姓名", "手机"],
        ["XL9", "zhang", "甲", "13711110001"],
        [None, None, "乙", "13711110002"],
        [None, None, "丙", "13711110003"],
        ["YH1", None, "丁", "13711110004"],
    ], ["A1:D1", "A3:A5", "B3:B5"])
    result = crm.importer.import_file(path)
    assert (result.created, result.rejected) == (4, 0), result
    for mobile, project, owner in (("13711110002", "XL9", "zhang"),
                                   ("13711110003", "XL9", "zhang"),
                                   ("13711110004", "YH1", None)):
        [found] = crm.customers.find(mobile=mobile)
        [link] = found.projects
        assert (link.project, link.owner_staff) == (project, owner)


def test_merged_cells_add_no_rows_and_leave_row_merges_alone(
        crm: CRM, tmp_path: Path) -> None:
    """A merged block running past the last filled row adds no row, and a merge
    across columns of one row (a remark spanning two cells) is not copied sideways."""
    path = _workbook(tmp_path / "tail.xlsx", [
        ["项目", "姓名", "手机", "来源"],
        ["XL9", "甲", "13711110001", "到访"],
        [None, "乙", "13711110002", None],
        [None, None, None, None],
        [None, None, None, None],
    ], ["A2:A5", "C3:D3"])
    result = crm.importer.import_file(path)
    assert (result.rows, result.created, result.rejected) == (2, 2, 0), result
    [second] = crm.customers.find(mobile="13711110002")
    assert [(p.project, p.source) for p in second.projects] == [("XL9", None)]


@pytest.mark.recrm_plugins("sales")
def test_a_building_merged_over_its_units(crm: CRM, tmp_path: Path) -> None:
    from recrm_sales import service

    crm.projects.ensure("XL2", "Xinglong Phase II")
    path = _workbook(tmp_path / "units.xlsx", [
        ["楼栋", "楼层", "房号", "建筑面积", "总价"],
        ["8", 5, "501", 89.5, 1500000],
        [None, 5, "502", 89.5, 1500000],
        [None, 6, "601", 89.5, 1500000],
    ], ["A2:A4"])
    outcome = service(crm).units.import_file(path, project="XL2")
    assert (outcome.created, outcome.rejected) == (3, 0), outcome.rejections
