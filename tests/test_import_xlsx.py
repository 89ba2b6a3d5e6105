"""Excel workbooks: the import reads them under the CSV rules, and the tabular reader is
public API a plugin uses with its own columns (issue 9)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from recrm_core import (
    CRM,
    CUSTOMER_COLUMNS,
    ErrorsFile,
    ImportFileError,
    ImportReadError,
    RejectedRow,
    UnknownColumns,
    Vocabulary,
    open_table,
)
from recrm_core.identity import id_card_check_character
from recrm_core.testing import RecrmCliRunner
from recrm_core.xlsxsource import (
    INFLATION_FLOOR,
    MAX_CELL_CHARS,
    STORED_AS_NUMBER,
    XlsxSource,
    cell_text,
)

M1, M2, M3, M4 = "13812345678", "13912345678", "13712345678", "13612345678"


CARD = "11010519800101001" + id_card_check_character("11010519800101001")


def workbook(path: Path, rows: Sequence[Sequence[Any] | None], *, sheet: str = "线索",
             merge: str | None = None, more_sheets: Sequence[str] = ()) -> Path:
    """Write ``rows`` (None for an empty row) to the first sheet of a new workbook."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    for index, row in enumerate(rows, start=1):
        for column, value in enumerate(row or (), start=1):
            ws.cell(row=index, column=column, value=value)
    if merge:
        ws.merge_cells(merge)
    for name in more_sheets:
        wb.create_sheet(name).append(["mobile"])
        wb[name].append([M4])
    wb.save(path)
    return path


def one_line_error(result: Any, code: int) -> str:
    assert result.exit_code == code, result.stderr
    assert result.stdout == "" and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    return str(result.stderr)


def import_json(cli_runner: RecrmCliRunner, *args: str) -> dict[str, Any]:
    result = cli_runner.invoke("customers", "import", *args, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # openpyxl's warnings do not reach the terminal
    summary: dict[str, Any] = result.json()
    return summary


def errors_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))


# A sales office's list: a report title merged across the columns, the export date, an
# empty row, then the header and the rows, typed as Excel types them.
LEADS: list[Sequence[Any] | None] = [
    ["星隆二期 来访客户登记表"],
    ["导出日期", dt.datetime(2024, 5, 3, 9, 30)],
    None,
    ["姓名", "手机", "身份证号", "出生日期", "项目", "预算"],
    ["王伟", float(M1), CARD, None, "XL2", 2_000_000],  # mobile stored as 13812345678.0
    ["李娜", int(M2), None, dt.datetime(1985, 6, 7), "XL2", None],  # a date(-time) cell
    None,  # blank: not counted
    ["张强", M3, 110105198001010019, None, "XL2", None],  # an ID card stored as a number
    ["赵敏", "12", None, dt.date(1990, 1, 2), "XL2", None],
]


def test_a_sales_office_workbook(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = workbook(tmp_path / "leads.xlsx", LEADS, merge="A1:F1")
    errors = tmp_path / "rejected.csv"
    summary = import_json(cli_runner, str(path), "--errors", str(errors))
    assert summary == {"rows": 4, "created": 2, "merged": 0, "rejected": 2,
                       "suspected_duplicates": 0}
    wang = crm.customers.find(mobile=M1)[0]
    assert (wang.name, wang.id_card, wang.birth_date, wang.budget) == (
        "王伟", CARD, dt.date(1980, 1, 1), 2_000_000)
    li = crm.customers.find(mobile=M2)[0]
    assert (li.name, li.birth_date, [p.project for p in li.projects]) == (
        "李娜", dt.date(1985, 6, 7), ["XL2"])
    # Data rows are numbered as in CSV (from 1 after the header, the blank row not
    # counted); sheet_row is the row Excel shows.
    assert errors_of(errors) == [
        ["row", "field", "reason", "sheet_row"],
        ["3", "id_card", STORED_AS_NUMBER, "8"],
        ["4", "mobile", errors_of_csv_reason(crm, "12"), "9"],
    ]
    assert crm.customers.find(mobile=M3) == []


def errors_of_csv_reason(crm: CRM, mobile: str) -> str:
    """The reason the CSV import gives for ``mobile``: the workbook gives the same."""
    rejected: list[RejectedRow] = []
    crm.importer.import_rows([{"mobile": mobile}], on_reject=rejected.append)
    return rejected[0].reason


def test_rerun_is_idempotent_and_batches_commit(
    crm_factory: Any, tmp_path: Path
) -> None:
    crm = crm_factory(settings={"import_batch_size": 2})
    rows = [["mobile", "name"]] + [[13800000000 + i, f"客户{i}"] for i in range(7)]
    path = workbook(tmp_path / "leads.xlsx", rows)
    seen: list[RejectedRow] = []
    progress: list[int] = []
    first = crm.importer.import_file(path, on_reject=seen.append,
                                     progress=lambda p: progress.append(p.rows))
    assert (first.rows, first.created, first.rejected) == (7, 7, 0)
    assert progress == [2, 4, 6, 7]
    again = crm.importer.import_file(path)
    assert (again.created, again.merged) == (0, 7)
    assert crm.customers.count() == 7


def test_conflicts_and_invalid_rows_name_their_sheet_row(
    crm: CRM, tmp_path: Path
) -> None:
    crm.customers.add({"name": "甲", "mobile": M1})
    crm.customers.add({"name": "乙", "mobile": M2})
    rows: list[list[Any] | None] = [["报表"], ["mobile", "联系电话", "gender"], [M1, M2, None],
                                    None, None, [M3, None, "x"]]
    path = workbook(tmp_path / "in.xlsx", rows)
    seen: list[RejectedRow] = []
    crm.importer.import_file(path, on_reject=seen.append)
    assert [(r.row, r.field, r.sheet_row) for r in seen] == [
        (1, "mobile,id_card", 3), (2, "gender", 6)]


_NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_EXCEL_PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
        'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
        'worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/><Override '
        'PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'spreadsheetml.styles+xml"/></Types>'),
    "_rels/.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>'),
    "xl/workbook.xml": (
        f'<workbook {_NS} xmlns:r="{_REL}"><sheets><sheet name="客户" sheetId="1" r:id="rId1"/>'
        '</sheets></workbook>'),
    "xl/_rels/workbook.xml.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
        f'<Relationship Id="rId3" Type="{_REL}/styles" Target="styles.xml"/></Relationships>'),
    # Style 1 is the built-in date format 14 (what Excel gives a typed-in date).
    "xl/styles.xml": (
        f'<styleSheet {_NS}><fonts count="1"><font/></fonts><fills count="1"><fill>'
        '<patternFill patternType="none"/></fill></fills>'
        '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/>'
        '</cellXfs></styleSheet>'),
    "xl/sharedStrings.xml": (
        f'<sst {_NS} count="4" uniqueCount="4"><si><t>客户名单</t></si><si><t>姓名</t></si>'
        '<si><t>手机号码</t></si><si><t>出生日期</t></si></sst>'),
    # No row 2 at all (Excel leaves out empty rows); the mobile and the date are numbers.
    "xl/worksheets/sheet1.xml": (
        f'<worksheet {_NS}><dimension ref="A1:C3"/><sheetData>'
        '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
        '<row r="3"><c r="A3" t="s"><v>1</v></c><c r="B3" t="s"><v>2</v></c>'
        '<c r="C3" t="s"><v>3</v></c></row>'
        '<row r="4"><c r="A4" t="inlineStr"><is><t>王伟</t></is></c><c r="B4"><v>1.3812345678E10'
        '</v></c><c r="C4" s="1"><v>29221</v></c></row></sheetData></worksheet>'),
}


def test_a_workbook_as_excel_writes_it(crm: CRM, cli_runner: RecrmCliRunner,
                                       tmp_path: Path) -> None:
    path = tmp_path / "excel.xlsx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, xml in _EXCEL_PARTS.items():
            zf.writestr(name, xml)
    errors = tmp_path / "e.csv"
    assert import_json(cli_runner, str(path), "--errors", str(errors))["created"] == 1
    wang = crm.customers.find(mobile=M1)[0]
    assert (wang.name, wang.birth_date) == ("王伟", dt.date(1980, 1, 1))


# -- what the file is, from its bytes -----------------------------------------------------------


def test_a_workbook_named_csv_and_a_csv_named_xlsx(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    named_csv = workbook(tmp_path / "leads.csv", [["姓名", "手机"], ["王伟", float(M1)]])
    assert import_json(cli_runner, str(named_csv))["created"] == 1
    named_xlsx = tmp_path / "leads.xlsx"
    named_xlsx.write_bytes(f"姓名,手机\n李娜,{M2}\n".encode("gbk"))
    errors = tmp_path / "e.csv"
    assert import_json(cli_runner, str(named_xlsx), "--errors", str(errors))["created"] == 1
    assert [c.name for c in crm.customers.find(mobile=M2)] == ["李娜"]
    assert errors_of(errors) == [["row", "field", "reason"]]  # a CSV's: no sheet_row


@pytest.mark.parametrize("name", ["old.xls", "wps.et", "named.xlsx"])
def test_old_binary_workbooks_are_refused_with_advice(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 4096)
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 2)
    assert ".xls" in message and "save it as .xlsx (or CSV)" in message


@pytest.mark.parametrize(("start", "what"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
])
def test_a_picture_or_a_pdf_is_named_for_what_it_is(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, start: bytes, what: str
) -> None:
    # A scan or a photo picked by mistake was read as CSV: "unknown column(s): 塒NG".
    path = tmp_path / "客户.csv"
    path.write_bytes(start + bytes(range(256)) * 8)
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 2)
    assert message.rstrip().endswith(f"客户.csv' is {what}, not a CSV file or an .xlsx workbook")


@pytest.mark.parametrize(("start", "what"), [
    (b"\xef\xbb\xbf\r\n<HTML xmlns:x=\"urn:schemas-microsoft-com:office:excel\">",
     "a web page (HTML)"),
    (b"<!DOCTYPE html><html><body>", "a web page (HTML)"),
    (b"  <table border=1><tr><td>\xe5\xa7\x93\xe5\x90\x8d</td>", "a web page (HTML)"),
    (b'<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n<Workbook',
     "an XML file (such as Excel's XML Spreadsheet 2003)"),
    (b"MIME-Version: 1.0\r\nContent-Type: multipart/related;", "a web archive (MHTML)"),
])
def test_a_table_saved_as_a_web_page_is_named_for_what_it_is(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, start: bytes, what: str
) -> None:
    # Found by a new user: an ERP's "Excel export" (a web page named .xls, which Excel
    # opens) was read as CSV: "unknown column(s): <html><body><table><tr><td>姓名…".
    path = tmp_path / "客户.xls"
    path.write_bytes(start + "<tr><td>姓名</td><td>手机</td></tr></table>".encode() * 4)
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 2)
    assert f"客户.xls' is {what}, not a CSV file or an .xlsx workbook; open it in Excel" \
        in message


def test_a_missing_sheet_lists_the_sheets(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = workbook(tmp_path / "in.xlsx", [["mobile"], [M1]], sheet="五月",
                    more_sheets=["June", "汇总"])
    message = one_line_error(
        cli_runner.invoke("customers", "import", str(path), "--sheet", "六月"), 2)
    assert "no sheet '六月'" in message and "'五月', 'June', '汇总'" in message
    # A named sheet is read instead of the first; Excel's names ignore case.
    assert import_json(cli_runner, str(path), "--sheet", "june")["created"] == 1
    assert crm.customers.find(mobile=M1) == [] and crm.customers.find(mobile=M4) != []
    assert import_json(cli_runner, str(path))["created"] == 1
    assert crm.customers.find(mobile=M1) != []


def test_the_first_visible_sheet_is_read(crm: CRM, tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    hidden = wb.active
    assert hidden is not None
    hidden.append(["项目代码"])  # a lookup list, hidden from the person
    hidden.sheet_state = "hidden"
    wb.create_sheet("客户").append(["mobile"])
    wb["客户"].append([M1])
    wb.save(tmp_path / "in.xlsx")
    with open_table(tmp_path / "in.xlsx") as source:
        assert source.sheet == "客户" and [v for _, v in source] == [{"mobile": M1}]


@pytest.mark.parametrize(("args", "why"), [
    (("--sheet", "Sheet1"), "is a CSV file, which has no sheets"),
])
def test_sheet_for_a_csv_is_a_usage_error(
    cli_runner: RecrmCliRunner, tmp_path: Path, args: tuple[str, ...], why: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"mobile\n{M1}\n")
    assert why in one_line_error(cli_runner.invoke("customers", "import", str(path), *args), 2)


def test_encoding_for_a_workbook_is_a_usage_error(
    cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = workbook(tmp_path / "in.xlsx", [["mobile"], [M1]])
    message = one_line_error(
        cli_runner.invoke("customers", "import", str(path), "--encoding", "gbk"), 2)
    assert "an encoding applies to CSV files only" in message


# -- damaged and hostile workbooks ------------------------------------------------------------


def test_damaged_workbooks_are_one_line_usage_errors(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    good = workbook(tmp_path / "good.xlsx", [["mobile"], [M1]]).read_bytes()
    cases = {
        "truncated.xlsx": good[: len(good) // 2],
        "garbage.xlsx": b"PK\x03\x04" + os.urandom(2000),
        "empty-zip.xlsx": b"PK\x05\x06" + b"\x00" * 18,
    }
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("word/document.xml", "<w:document/>")
    cases["report.docx"] = archive.getvalue()
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        message = one_line_error(cli_runner.invoke("customers", "import", str(tmp_path / name)),
                                 2)
        assert "damaged workbook" in message or "zip archive but not a workbook" in message, name
    assert crm.customers.count() == 0


def forge(path: Path, member: str, edit: Any) -> None:
    """Rewrite ``member`` of the workbook at ``path`` with ``edit(text)``."""
    with zipfile.ZipFile(path) as zf:
        parts = {info.filename: zf.read(info) for info in zf.infolist()}
    parts[member] = edit(parts[member].decode()).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)


def test_a_zip_bomb_is_refused_before_it_is_inflated(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = workbook(tmp_path / "bomb.xlsx", [["mobile"], [M1]])
    with zipfile.ZipFile(path) as zf:
        parts = {info.filename: zf.read(info) for info in zf.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            if name != "xl/worksheets/sheet1.xml":
                zf.writestr(name, data)
        # One cell of 2 * INFLATION_FLOOR spaces: a few tens of KB on disk.
        with zf.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
                        b'2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>')
            chunk = b" " * (1 << 20)
            for _ in range(2 * INFLATION_FLOOR // len(chunk)):
                sheet.write(chunk)
            sheet.write(b"</t></is></c></row></sheetData></worksheet>")
    assert path.stat().st_size < INFLATION_FLOOR // 100
    tracemalloc.start()
    try:
        message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "zip bomb" in message
    assert peak < 8 * 2**20


def test_a_forged_huge_dimension_reads_only_the_rows_there_are(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = workbook(tmp_path / "in.xlsx", [["mobile", "name"], [M1, "王伟"], [M2, "李娜"]])
    forge(path, "xl/worksheets/sheet1.xml",
          lambda xml: re.sub(r'<dimension ref="[^"]*"', '<dimension ref="A1:XFD1048576"', xml))
    with zipfile.ZipFile(path) as zf:
        assert b"A1:XFD1048576" in zf.read("xl/worksheets/sheet1.xml")
    started = time.monotonic()
    assert import_json(cli_runner, str(path))["created"] == 2
    assert time.monotonic() - started < 10


def too_long_cell(path: Path) -> Path:
    """Excel (and openpyxl) cut a cell at MAX_CELL_CHARS; a forged file need not."""
    forge(path, "xl/worksheets/sheet1.xml",
          lambda xml: xml.replace("TOO-LONG", "x" * (MAX_CELL_CHARS + 1)))
    return path


def test_a_cell_longer_than_excel_allows_stops_at_its_row(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    rows = [["mobile", "source"], [M1, "web"], [M2, "TOO-LONG"], [M3, "web"]]
    path = too_long_cell(workbook(tmp_path / "in.xlsx", rows))
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 1)
    assert f"row 2: has a cell longer than {MAX_CELL_CHARS} characters (sheet row 3)" in message
    assert "1 row(s) before it were imported" in message
    assert crm.customers.count() == 1
    title = too_long_cell(workbook(tmp_path / "title.xlsx", [["TOO-LONG"], ["mobile"], [M1]]))
    message = one_line_error(cli_runner.invoke("customers", "import", str(title)), 2)
    assert "the header has a cell longer than" in message


def test_a_device_named_xlsx_is_refused(cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    link = tmp_path / "zero.xlsx"
    link.symlink_to(os.devnull)
    assert "character device, not a file" in one_line_error(
        cli_runner.invoke("customers", "import", str(link)), 2)


# -- title rows and headers, in both formats ---------------------------------------------------


@pytest.mark.parametrize("sep", [",", "\t", ";"])
def test_title_rows_before_a_csv_header(crm: CRM, cli_runner: RecrmCliRunner,
                                        tmp_path: Path, sep: str) -> None:
    # The delimiter comes from the first line holding one, not from the title.
    path = tmp_path / "in.csv"
    path.write_text(f"客户名单\n导出日期：2024-05-03{sep}{sep}\n\n姓名{sep}手机\n"
                    f"王伟{sep}{M1}\n李娜{sep}{M2}\n")
    assert import_json(cli_runner, str(path))["created"] == 2
    assert crm.customers.find(mobile=M2)[0].name == "李娜"


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_more_than_ten_title_rows_leave_no_header(tmp_path: Path, kind: str) -> None:
    titles = [[f"title {i}"] for i in range(11)]
    rows = [*titles, ["mobile", "备注"], [M1, "x"]]
    if kind == "csv":
        path = tmp_path / "in.csv"
        path.write_text("".join(",".join(r) + "\n" for r in rows))
    else:
        path = workbook(tmp_path / "in.xlsx", rows)
    with pytest.raises(UnknownColumns) as info:
        open_table(path)
    assert info.value.unknown == ["title 0"]
    # Within ten title rows, the header meant is the one reported.
    rows = [*titles[:10], ["mobile", "备注"], [M1, "x"]]
    if kind == "csv":
        path.write_text("".join(",".join(r) + "\n" for r in rows))
    else:
        workbook(path, rows)
    with pytest.raises(UnknownColumns) as info:
        open_table(path)
    assert info.value.unknown == ["备注"]


def test_a_workbook_without_a_header(cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    path = workbook(tmp_path / "in.xlsx", [])
    assert "no header row" in one_line_error(cli_runner.invoke("customers", "import", str(path)),
                                             2)


def test_cell_text_is_what_a_person_typed() -> None:
    assert cell_text(13812345678.0) == "13812345678"
    assert cell_text(13812345678) == "13812345678"
    assert cell_text(0.1 + 0.2) == "0.3"
    assert cell_text(1.5) == "1.5"
    assert cell_text(dt.datetime(2024, 1, 2, 15, 4)) == "2024-01-02"
    assert cell_text(dt.date(2024, 1, 2)) == "2024-01-02"
    assert cell_text(True) == "TRUE" and cell_text(None) == ""


def test_openpyxl_is_imported_only_to_read_a_workbook() -> None:
    code = ("import sys, recrm_core, recrm_core.cli, recrm_core.importing;"
            "print('openpyxl' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


# -- the public building blocks, with a plugin's own columns ------------------------------


MAILING_LIST = Vocabulary(
    {"email": "email", "邮箱": "email", "Member No": "member_no", "会员编号": "member_no",
     "phone": "phone", "备用电话": "phone"},
    lists={"phone": "phones"},
    text_only=["member_no"],
)


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_plugin_reads_its_own_list_under_the_core_rules(tmp_path: Path, kind: str) -> None:
    rows: list[list[Any]] = [
        ["业主杂志订阅名单"],
        ["会员编号", "邮箱", "Phone", "备用电话"],
        ["0012", "a@x.cn", M1, M2],
        [],
        ["0013", "b@x.cn", "", M3],
    ]
    if kind == "csv":
        path = tmp_path / "list.xlsx"  # the name says workbook; the bytes say CSV
        path.write_text("".join(",".join(map(str, r)) + "\n" for r in rows), encoding="gbk")
    else:
        rows.append([14, "c@x.cn", M4, None])  # Excel dropped the leading zeros
        path = workbook(tmp_path / "list.csv", rows)
    errors = tmp_path / "errors.csv"
    with open_table(path, MAILING_LIST) as source, ErrorsFile(
        errors, sheet_rows=source.sheet is not None
    ) as rejected:
        assert source.kind == kind
        read = []
        for row, values in source:
            if isinstance(values, RejectedRow):
                rejected.write(values)
            else:
                read.append((row, source.sheet_row, values))
    expected_sheet_rows = [3, 5] if kind == "xlsx" else [None, None]
    assert read == [
        (1, expected_sheet_rows[0], {"member_no": "0012", "email": "a@x.cn",
                                     "phones": [M1, M2]}),
        (2, expected_sheet_rows[1], {"member_no": "0013", "email": "b@x.cn", "phones": [M3]}),
    ]
    if kind == "xlsx":
        assert errors_of(errors) == [["row", "field", "reason", "sheet_row"],
                                     ["3", "member_no", STORED_AS_NUMBER, "6"]]
    else:
        assert errors_of(errors) == [["row", "field", "reason"]]


def test_a_plugin_vocabulary_lists_its_own_names_when_refusing(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email,mobile\na@x.cn,1\n")
    with pytest.raises(UnknownColumns) as info:
        open_table(path, MAILING_LIST)
    assert info.value.unknown == ["mobile"]
    assert info.value.known == ["email", "邮箱", "Member No", "会员编号", "phone", "备用电话"]
    # The customer columns are a vocabulary like any other.
    with open_table(path, CUSTOMER_COLUMNS) as source:
        assert list(source) == [(1, {"email": "a@x.cn", "mobile": "1"})]


def docs_example() -> dict[str, Any]:
    """The code of docs/plugins.md's "Importing your own lists", run."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text("utf-8")
    section = text.split("## Importing your own lists", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)
    return namespace


def test_the_plugin_docs_example_reads_a_workbook(tmp_path: Path) -> None:
    read_mailing_list = docs_example()["read_mailing_list"]
    rows: list[list[Any]] = [
        ["订阅名单"], ["会员编号", "邮箱", "手机", "备用电话"], ["0012", "a@x.cn", M1, M2],
        [12, "b@x.cn", M3, None], ["0014", None, M4, None],
    ]
    path = workbook(tmp_path / "list.xlsx", rows)
    errors = tmp_path / "errors.csv"
    assert read_mailing_list(path, errors) == [
        {"member_no": "0012", "email": "a@x.cn", "phones": [M1, M2]}]
    assert errors_of(errors)[1:] == [["2", "member_no", STORED_AS_NUMBER, "4"],
                                     ["3", "email", "no email", "5"]]


def test_xlsx_source_stops_with_the_row(tmp_path: Path) -> None:
    path = too_long_cell(workbook(tmp_path / "in.xlsx", [["mobile"], [M1], ["TOO-LONG"]]))
    with XlsxSource(path) as source, pytest.raises(ImportReadError) as info:
        list(source)
    assert info.value.row == 2


def test_open_table_refuses_what_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="is a directory"):
        open_table(tmp_path)
