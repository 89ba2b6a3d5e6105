"""A value right of the header's last column: the row's cells are likely shifted (an
unquoted comma in a name), and importing the rest would drop that value unseen, so the
row is rejected and reported; empty or blank cells there are not data (issue 21's
import review)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest

from recrm_core import CRM, importrows
from recrm_core.testing import RecrmCliRunner

REASON = "a value in column {n}, right of the header's last column (2): the row's cells " \
    "may be shifted"


def errors_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


def imported(cli_runner: RecrmCliRunner, path: Path, errors: Path) -> dict[str, int]:
    result = cli_runner.invoke("customers", "import", str(path), "--errors", str(errors),
                               "--json")
    assert result.exit_code == 0, result.stderr
    summary: dict[str, int] = json.loads(result.stdout)
    return summary


@pytest.mark.parametrize("worker", [False, True], ids=["in-process", "worker"])
def test_a_csv_row_with_a_value_right_of_the_header_is_rejected(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, worker: bool) -> None:
    monkeypatch.setattr(importrows, "PARALLEL_MIN_BYTES", 0 if worker else 10**12)
    path = tmp_path / "in.csv"
    path.write_text(
        "name,mobile\n"
        "张三,13800138001,广州\n"        # a value with no column: rejected
        "李四,13800138002,, \n"          # empty and blank cells: not data
        "王五,13800138003\n"
        "赵,六,13800138004\n"            # an unquoted comma shifted the mobile
        "钱七,13800138005,,,备注\n", encoding="utf-8")
    errors = tmp_path / "errors.csv"
    assert imported(cli_runner, path, errors) == {
        "rows": 5, "created": 2, "merged": 0, "rejected": 3, "suspected_duplicates": 0}
    assert errors_of(errors) == [["row", "field", "reason"],
                                 ["1", "", REASON.format(n=3)],
                                 ["4", "", REASON.format(n=3)],
                                 ["5", "", REASON.format(n=5)]]
    assert [c.name for c in crm.customers.find(mobile="13800138002")] == ["李四"]
    assert crm.customers.find(mobile="13800138001") == []


def test_a_workbook_row_with_a_value_right_of_the_header_is_rejected(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "手机号"])
    sheet.append(["张三", "13800138001", "多余"])
    sheet.append(["李四", "13800138002", None, "  "])
    sheet.append(["王五"])  # a short row: the mobile is missing, not shifted
    path = tmp_path / "in.xlsx"
    book.save(path)
    errors = tmp_path / "errors.csv"
    summary = imported(cli_runner, path, errors)
    assert (summary["created"], summary["rejected"]) == (1, 2)
    rows = errors_of(errors)
    assert rows[1] == ["1", "", REASON.format(n=3), "2"]
    assert rows[2][:2] == ["3", "mobile,id_card"]  # no key: the usual reason
    assert [c.name for c in crm.customers.find(mobile="13800138002")] == ["李四"]
