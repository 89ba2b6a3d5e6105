"""The list export's file writer: CSV (UTF-8 with a BOM) or XLSX by extension, streamed
through a temporary file that is renamed onto the path only when complete."""

from __future__ import annotations

import csv
import datetime as dt
import errno
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from recrm_core.errors import InvalidInput
from recrm_core.listexport import (
    MAX_CELL_CHARS,
    SHEET_TITLE,
    ListWriter,
    open_list_writer,
    spreadsheet_text,
    workbook_text,
)

COLUMNS = ["name", "mobile", "note"]
CHINESE_ROWS: list[list[object]] = [
    ["王伟", "13812345678", "首次到访"],
    ["欧阳娜娜", "13987654321", None],
]
#: hostile values and what both formats must show for them
HOSTILE = {
    '=HYPERLINK("http://x","y")': '\'=HYPERLINK("http://x","y")',
    "@SUM(A1)": "'@SUM(A1)",
    "-1+2": "'-1+2",
    "+cmd|' /C calc'!A0": "'+cmd|' /C calc'!A0",
    "\t=1+1": "'\t=1+1",
    "=1+1": "'=1+1",
}
#: values that look a little like formulas but are harmless, kept as they are
HARMLESS = ["+8613812345678", "138****5678", "-12.5", "+86 138 1234 5678", "a=b", "'=x"]


def read_csv(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def read_xlsx(path: Path) -> list[list[Any]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        assert workbook.sheetnames == [SHEET_TITLE]
        rows = [list(row) for row in workbook[SHEET_TITLE].iter_rows(values_only=True)]
    finally:
        workbook.close()
    # Empty values are no cells at all, so a row read without the sheet's dimension (a
    # streamed sheet has none) ends at its last value.
    width = max(map(len, rows))
    return [row + [None] * (width - len(row)) for row in rows]


def write(path: Path, rows: list[list[object]], columns: list[str] = COLUMNS) -> None:
    with open_list_writer(path, columns) as out:
        for row in rows:
            out.write_row(row)


@pytest.fixture
def openpyxl_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temporary directory, where openpyxl streams a write-only sheet."""
    directory = tmp_path / "system-tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


# --- spreadsheet_text ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), HOSTILE.items())
def test_formula_looking_text_is_quoted(value: str, expected: str) -> None:
    assert spreadsheet_text(value) == expected


@pytest.mark.parametrize("value", ["+", "-", "-\n", "\r=1", "-12.5\n=1", "+86１３８"])
def test_almost_numbers_are_quoted(value: str) -> None:
    # A lone sign, a trailing line after a number, full-width digits: no plain number.
    assert spreadsheet_text(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS)
def test_numbers_and_plain_text_stay_as_they_are(value: str) -> None:
    assert spreadsheet_text(value) == value


def test_values_become_text() -> None:
    assert spreadsheet_text(None) == ""
    assert spreadsheet_text(dt.date(2024, 1, 2)) == "2024-01-02"
    assert spreadsheet_text(dt.datetime(2024, 1, 2, 9, 30)) == "2024-01-02T09:30:00"
    assert spreadsheet_text(42) == "42"
    assert spreadsheet_text(-5) == "-5"  # a negative number is a plain number
    assert spreadsheet_text(1.5) == "1.5"


def test_workbook_text_removes_what_xml_cannot_hold() -> None:
    assert workbook_text("a\x00b\x01c\x0bd\x1fe\ud800f\ufffe") == "abcdef"
    assert workbook_text("tab\tline\ncr\r") == "tab\tline\ncr\r"
    every_c0 = "".join(map(chr, range(32)))
    assert not ILLEGAL_CHARACTERS_RE.search(workbook_text(every_c0))


def test_workbook_text_cuts_at_excels_limit_in_utf16_units() -> None:
    assert len(workbook_text("x" * 40_000)) == MAX_CELL_CHARS
    assert workbook_text("x" * MAX_CELL_CHARS) == "x" * MAX_CELL_CHARS
    # An emoji is two UTF-16 units in Excel; the cut never splits one.
    cut = workbook_text("😀" * 20_000)
    assert cut == "😀" * (MAX_CELL_CHARS // 2)


# --- CSV ----------------------------------------------------------------------------


def test_csv_has_bom_crlf_and_reads_back_with_chinese_names(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    write(path, [*CHINESE_ROWS, ["张三", 13800000000, dt.date(2024, 5, 1)]])

    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\r\n") == 4 and raw.count(b"\n") == 4
    assert read_csv(path) == [
        COLUMNS,
        ["王伟", "13812345678", "首次到访"],
        ["欧阳娜娜", "13987654321", ""],
        ["张三", "13800000000", "2024-05-01"],
    ]
    assert os.listdir(tmp_path) == ["customers.csv"]


def test_csv_keeps_commas_quotes_and_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    note = 'says "hi", then\r\nleaves'
    write(path, [["李四", "13812345678", note]])
    assert read_csv(path)[1] == ["李四", "13812345678", note]


def test_csv_neutralises_formulas(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write(path, [[value, "", ""] for value in [*HOSTILE, *HARMLESS]], COLUMNS)
    names = [row[0] for row in read_csv(path)[1:]]
    assert names == [*HOSTILE.values(), *HARMLESS]


def test_csv_survives_a_lone_surrogate(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write(path, [["a\ud800b", "13812345678", "ok"]])
    assert read_csv(path)[1] == ["a?b", "13812345678", "ok"]


# --- XLSX ---------------------------------------------------------------------------


def test_xlsx_reads_back_as_text(tmp_path: Path) -> None:
    path = tmp_path / "customers.xlsx"
    write(path, [*CHINESE_ROWS, ["张三", 13800000000, dt.datetime(2024, 5, 1, 8, 0)]])

    assert read_xlsx(path) == [
        COLUMNS,
        ["王伟", "13812345678", "首次到访"],
        ["欧阳娜娜", "13987654321", None],
        ["张三", "13800000000", "2024-05-01T08:00:00"],
    ]
    sheet = openpyxl.load_workbook(path)[SHEET_TITLE]
    mobile = sheet["B2"]
    assert mobile.value == "13812345678" and mobile.data_type == "s"
    assert sheet["B4"].data_type == "s"  # an int is written as text too
    assert sheet["A1"].font.b
    assert os.listdir(tmp_path) == ["customers.xlsx"]


def test_xlsx_neutralises_formulas(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write(path, [[value, value, ""] for value in [*HOSTILE, *HARMLESS]])

    rows = read_xlsx(path)[1:]
    expected = [*HOSTILE.values(), *HARMLESS]
    assert [row[0] for row in rows] == expected
    assert [row[1] for row in rows] == expected
    sheet = openpyxl.load_workbook(path)[SHEET_TITLE]
    assert {cell.data_type for row in sheet.iter_rows() for cell in row if cell.value} == {"s"}
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in xml and b"<f " not in xml


def test_xlsx_removes_control_characters(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write(path, [["王\x00伟\x07", "138\x1b12345678", "a\tb\nc\ud800\uffff"]])
    assert read_xlsx(path)[1] == ["王伟", "13812345678", "a\tb\nc"]


def test_xlsx_cuts_over_long_text(tmp_path: Path) -> None:
    path = tmp_path / "out.xlsx"
    write(path, [["x" * 40_000, "=" + "y" * 40_000, "ok"]])
    name, formula, note = read_xlsx(path)[1]
    assert name == "x" * MAX_CELL_CHARS
    assert formula == "'=" + "y" * (MAX_CELL_CHARS - 2)
    assert note == "ok"


def test_xlsx_leaves_no_openpyxl_temporary_file(tmp_path: Path, openpyxl_tmp: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write(out / "done.xlsx", CHINESE_ROWS)
    assert os.listdir(openpyxl_tmp) == []

    writer = open_list_writer(out / "aborted.xlsx", COLUMNS)
    writer.write_row(CHINESE_ROWS[0])
    assert os.listdir(openpyxl_tmp) != []  # the sheet streams there...
    writer.abort()
    assert os.listdir(openpyxl_tmp) == []  # ...and goes with the abort
    assert os.listdir(out) == ["done.xlsx"]


# --- both formats: file handling ----------------------------------------------------


@pytest.mark.parametrize("name", ["OUT.CSV", "Out.Csv", "out.XLSX", "out.xlsx"])
def test_the_extension_chooses_the_format_in_any_case(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write(path, CHINESE_ROWS)
    if name.lower().endswith(".csv"):
        assert path.read_bytes().startswith(b"\xef\xbb\xbfname,mobile,note\r\n")
    else:
        assert zipfile.is_zipfile(path)
        assert read_xlsx(path)[1] == CHINESE_ROWS[0]


@pytest.mark.parametrize("name", ["out.txt", "out.xls", "out", "out.csv.bak", "out.xlsx/"])
def test_an_unknown_extension_is_invalid_input(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        open_list_writer(f"{tmp_path}/{name}", COLUMNS)
    assert raised.value.field == "--out"
    assert "must end in .csv or .xlsx" in raised.value.reason
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["out.csv", "out.xlsx"])
def test_a_missing_directory_is_invalid_input(tmp_path: Path, name: str) -> None:
    path = tmp_path / "no-such-dir" / name
    with pytest.raises(InvalidInput) as raised:
        open_list_writer(path, COLUMNS)
    assert raised.value.field == "--out"
    assert raised.value.reason == f"cannot write {str(path)!r}: No such file or directory"
    assert os.listdir(tmp_path) == []


def test_a_directory_is_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "taken.csv").mkdir()
    with pytest.raises(InvalidInput) as raised:
        open_list_writer(tmp_path / "taken.csv", COLUMNS)
    assert raised.value.field == "--out"
    assert "it is a directory" in raised.value.reason
    assert os.listdir(tmp_path / "taken.csv") == []


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions, not root"
)
def test_a_read_only_directory_is_invalid_input(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(InvalidInput) as raised:
            open_list_writer(locked / "out.csv", COLUMNS)
        assert raised.value.reason.endswith(": Permission denied")
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("name", ["out.csv", "out.xlsx"])
def test_an_error_in_the_block_leaves_no_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(KeyError), open_list_writer(tmp_path / name, COLUMNS) as out:
        out.write_row(CHINESE_ROWS[0])
        raise KeyError("the query failed")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["out.csv", "out.xlsx"])
def test_an_error_in_the_block_keeps_an_existing_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"the previous export")
    with pytest.raises(KeyboardInterrupt), open_list_writer(path, COLUMNS) as out:
        for _ in range(5000):
            out.write_row(CHINESE_ROWS[0])
        raise KeyboardInterrupt
    assert path.read_bytes() == b"the previous export"
    assert os.listdir(tmp_path) == [name]


@pytest.mark.parametrize("name", ["out.csv", "out.xlsx"])
def test_a_complete_export_replaces_an_existing_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"the previous export")
    write(path, CHINESE_ROWS)
    assert path.read_bytes() != b"the previous export"
    rows = read_csv(path) if name.endswith(".csv") else read_xlsx(path)
    assert rows[1] == CHINESE_ROWS[0]
    assert os.listdir(tmp_path) == [name]


@pytest.mark.parametrize("name", ["out.csv", "out.xlsx"])
def test_the_path_appears_only_when_complete(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    writer = open_list_writer(path, COLUMNS)
    writer.write_row(CHINESE_ROWS[0])
    assert not path.exists()
    (temporary,) = os.listdir(tmp_path)
    assert temporary.startswith(f".{name}.") and temporary.endswith(".tmp")
    writer.close()
    assert os.listdir(tmp_path) == [name]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_file_gets_the_permissions_the_umask_gives(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write(tmp_path / "out.csv", CHINESE_ROWS)
    finally:
        os.umask(old)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("name", ["out.csv", "out.xlsx"])
def test_a_failing_rename_is_invalid_input_and_leaves_nothing(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    writer = open_list_writer(path, COLUMNS)
    writer.write_row(CHINESE_ROWS[0])
    path.mkdir()
    (path / "inside").write_text("keep")  # a directory that is not empty: no rename onto it
    with pytest.raises(InvalidInput) as raised:
        writer.close()
    assert raised.value.field == "--out"
    assert raised.value.reason.startswith(f"cannot write {str(path)!r}: ")
    assert os.listdir(tmp_path) == [name]
    assert os.listdir(path) == ["inside"]


def test_the_writer_refuses_misuse(tmp_path: Path) -> None:
    writer = open_list_writer(tmp_path / "out.csv", COLUMNS)
    with pytest.raises(ValueError, match="a row of 2 values for 3 columns"):
        writer.write_row(["王伟", "13812345678"])
    writer.write_row(CHINESE_ROWS[0])  # a refused row leaves the writer usable
    writer.close()
    writer.close()  # closing again does nothing
    writer.abort()  # and an abort after the close keeps the file
    assert read_csv(tmp_path / "out.csv") == [COLUMNS, CHINESE_ROWS[0]]
    with pytest.raises(RuntimeError, match="closed"):
        writer.write_row(CHINESE_ROWS[0])

    aborted = open_list_writer(tmp_path / "aborted.csv", COLUMNS)
    aborted.abort()
    with pytest.raises(RuntimeError, match="aborted"):
        aborted.close()
    assert os.listdir(tmp_path) == ["out.csv"]


@pytest.mark.parametrize("name", ["out.csv", "out.xlsx"])
def test_ten_thousand_rows_stream(tmp_path: Path, openpyxl_tmp: Path, name: str) -> None:
    path = tmp_path / name
    rows = 10_000
    with open_list_writer(path, COLUMNS) as out:
        for i in range(rows):
            out.write_row([f"客户{i}", f"138{i:08d}", "=1+1" if i % 2 else None])
            if i == rows // 2:
                # Half way, half the rows are on disk already, not held in memory.
                spooled = [*os.scandir(tmp_path), *os.scandir(openpyxl_tmp)]
                assert sum(entry.stat().st_size for entry in spooled) > 100_000
        assert not path.exists()

    read = read_csv(path) if name.endswith(".csv") else read_xlsx(path)
    assert len(read) == rows + 1
    assert read[1][:2] == ["客户0", "13800000000"]
    assert read[-1] == ["客户9999", "13800009999", "'=1+1"]
    assert sorted(os.listdir(tmp_path)) == sorted([name, "system-tmp"])
    assert os.listdir(openpyxl_tmp) == []


def test_open_list_writer_returns_a_list_writer(tmp_path: Path) -> None:
    with open_list_writer(str(tmp_path / "out.csv"), ("a",)) as out:
        assert isinstance(out, ListWriter)
        out.write_row(["x"])
    assert read_csv(tmp_path / "out.csv") == [["a"], ["x"]]


def test_importing_the_module_does_not_load_openpyxl() -> None:
    code = "import sys, recrm_core.listexport; print('openpyxl' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["out.csv", "out.xlsx"])
def test_a_full_disk_is_invalid_input_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"the previous export")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(InvalidInput) as raised, open_list_writer(path, COLUMNS) as out:
        out.write_row(CHINESE_ROWS[0])
    assert raised.value.reason == f"cannot write {str(path)!r}: {os.strerror(errno.ENOSPC)}"
    assert path.read_bytes() == b"the previous export"
    assert os.listdir(tmp_path) == [name]
