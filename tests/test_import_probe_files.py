"""Files an acceptance probe fed the import: each one is refused or reported, never
imported with a value silently lost or mis-read."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from test_import_xlsx import M1, M2, M3, M4, one_line_error

from recrm_core import CRM
from recrm_core.csvsource import reader
from recrm_core.testing import RecrmCliRunner


def run(cli_runner: RecrmCliRunner, path: Path, *args: str) -> Any:
    return cli_runner.invoke("customers", "import", str(path), *args)


def summary(cli_runner: RecrmCliRunner, path: Path, errors: Path, *args: str
            ) -> dict[str, Any]:
    result = run(cli_runner, path, "--errors", str(errors), "--json", *args)
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def errors_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))[1:]


def book(path: Path, rows: list[list[Any]]) -> Path:
    """A workbook openpyxl writes (formulas without results, long cells cut)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


# -- a formula whose result was never saved ---------------------------------------------------


def test_a_formula_without_a_saved_value_rejects_its_row(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    # openpyxl writes formulas without their results (only Excel and WPS compute them).
    path = book(tmp_path / "formula.xlsx", [
        [None, "name", "mobile", "budget"],
        ["=ROW()-1", "王伟", M1, "=100*10000"],
        ["=ROW()-1", "李娜", M2, 2000000],
        [None, "张敏", M3, None]])
    errors = tmp_path / "e.csv"
    result = summary(cli_runner, path, errors)
    assert result["created"] == 2
    assert errors_of(errors) == [[
        "1", "budget",
        "column budget holds a formula with no saved value: open and save the workbook"
        " in Excel/WPS", "2"]]
    assert crm.customers.find(mobile=M1) == []
    # The unlabelled column left of the header is not read: its formulas do not count.
    assert [c.budget for c in crm.customers.find(mobile=M2)] == [2000000]
    assert [c.budget for c in crm.customers.find(mobile=M3)] == [None]


# -- a cell longer than the csv module's own limit --------------------------------------------


def test_a_huge_csv_cell_rejects_its_row_only(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "huge.csv"
    # 200,000 characters, beyond the csv module's 131,072 but within the 1 MB line limit.
    path.write_text(f"name,mobile\n{'王' * 200_000},{M1}\n李娜,{M2}\n\"{'张' * 150_000}\",{M3}\n",
                    encoding="utf-8")
    errors = tmp_path / "e.csv"
    assert summary(cli_runner, path, errors)["created"] == 1
    assert [row[:2] for row in errors_of(errors)] == [["1", "name"], ["3", "name"]]
    assert all("longer than 100" in row[2] and len(row[2]) < 200 for row in errors_of(errors))
    assert crm.customers.find(mobile=M2) != []
    assert csv.field_size_limit() == 131_072  # the process's limit is left as it was


# -- UTF-16 without a BOM ---------------------------------------------------------------------

UTF16_ADVICE = "the file is UTF-16 (Excel 'Unicode Text'); save it as 'CSV UTF-8' and import that"


def test_utf16_without_a_bom_gets_the_utf16_advice(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    text = f"姓名,手机\r\n王伟,{M1}\r\n李娜,{M2}\r\n"
    for encoding in ("utf-16-le", "utf-16-be", "utf-16"):  # the last one with its BOM
        path = tmp_path / f"{encoding}.csv"
        path.write_bytes(text.encode(encoding))
        assert UTF16_ADVICE in one_line_error(run(cli_runner, path), 2)
    assert crm.customers.find(mobile=M1) == []


def test_stray_nul_bytes_are_not_utf16() -> None:
    from recrm_core.csvsource import EncodingGuess, sniff_encoding

    sample = f"name,mobile\n王伟,{M1}\n".encode() * 20
    damaged = sample[:100] + b"\x00\x00" + sample[100:201] + b"\x00" + sample[201:]
    assert sniff_encoding(damaged, complete=True) == EncodingGuess("utf-8")


def test_a_tiny_file_with_one_stray_nul_is_not_utf16_and_its_row_names_the_line(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    """Found by a new user's probe: in a file of a few lines one stray NUL was a sixteenth
    of the bytes and on one side, so the file was "UTF-16 (Excel 'Unicode Text')" and
    refused whole. A NUL pattern needs several of them; a stray one rejects its row
    (whichever field holds it: the mobile's reason was "contains letters"), naming the
    file's line, and the other rows are imported. A NUL in the header stops the file."""
    path = tmp_path / "nul.csv"
    path.write_bytes(f"name,mobile\n王伟,{M1}\n\"李\n娜\",1\x00\n张敏,{M3}\n".encode())
    result = run(cli_runner, path)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "row 2: mobile: holds a NUL byte (line 4 of the file), which no text has; remove it")
    assert [c.name for c in crm.customers.find(mobile=M1)] == ["王伟"]
    assert [c.name for c in crm.customers.find(mobile=M3)] == ["张敏"]
    header = tmp_path / "header.csv"
    header.write_bytes(f"name,mob\x00ile\n王伟,{M2}\n".encode())
    assert one_line_error(run(cli_runner, header), 2).rstrip().endswith(
        "the header holds a NUL byte (line 1 of the file), which no text has; remove it")
    assert crm.customers.find(mobile=M2) == []
    # the smallest UTF-16 file worth importing still has its pattern
    tiny = tmp_path / "tiny16.csv"
    tiny.write_bytes(f"姓名,手机\r\n王伟,{M2}\r\n".encode("utf-16-le"))
    assert UTF16_ADVICE in one_line_error(run(cli_runner, tiny), 2)


BIG5_OR_SJIS = ("the file's text reads as GB18030 only as unlikely characters (is it Big5,"
                " Shift-JIS, or traditional Chinese saved as GBK?); save it as 'CSV UTF-8'"
                " and import that, or pass --encoding (big5, shift_jis; gbk if it is right)")


@pytest.mark.parametrize(("encoding", "names"), [
    ("big5", ["陳大文", "張國榮", "林志玲"]), ("shift_jis", ["山田太郎", "佐藤花子", "鈴木一郎"])])
def test_a_big5_or_shift_jis_file_is_refused_not_imported_garbled(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, encoding: str,
        names: list[str]) -> None:
    """Found by a new user's probe: GB18030 decodes almost any bytes, so a Big5 file
    (Taiwan, Hong Kong) or a Shift-JIS one under an English header was imported with
    names like 朝ゅ and 狶в. Such text reads as rare characters, kana and Cyrillic:
    the file is refused with advice, and imported right with its --encoding."""
    path = tmp_path / f"{encoding}.csv"
    mobiles = (M1, M2, M3)
    path.write_bytes(b"name,mobile\n" + "".join(
        f"{name},{mobile}\n" for name, mobile in zip(names, mobiles, strict=True)
    ).encode(encoding))
    assert one_line_error(run(cli_runner, path), 2).rstrip().endswith(BIG5_OR_SJIS)
    assert crm.customers.find(mobile=M1) == []
    assert summary(cli_runner, path, tmp_path / "e.csv", "--encoding", encoding)["created"] == 3
    assert [c.name for c in crm.customers.find(mobile=M2)] == [names[1]]
    # Past a first sample of plain ASCII, the refusal stops the import at its row.
    late = tmp_path / f"late-{encoding}.csv"
    late.write_bytes(f"name,mobile\nA,{M4}\n".encode() + b"x," * 35_000 + b"\n"
                     + "".join(f"{name},\n" for name in names).encode(encoding))
    result = run(cli_runner, late)
    assert result.exit_code == 1, result.stderr
    assert f"row 3: {BIG5_OR_SJIS}; the import stopped there" in result.stderr
    assert [c.name for c in crm.customers.find(mobile=M4)] == ["A"]


def test_traditional_chinese_saved_as_gbk_is_refused_by_default_and_read_when_named(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    """GBK holds traditional characters too, which are no common GB2312 ones: such a
    file reads like Big5 to the guess. The refusal names the case, and --encoding gbk
    imports it as written."""
    names = ["陳大文", "黃美玲", "張國榮"]
    path = tmp_path / "trad.csv"
    path.write_bytes("姓名,手机\r\n".encode("gbk") + "".join(
        f"{name},{mobile}\r\n" for name, mobile in zip(names, (M1, M2, M3), strict=True)
    ).encode("gbk"))
    assert one_line_error(run(cli_runner, path), 2).rstrip().endswith(BIG5_OR_SJIS)
    assert crm.customers.find(mobile=M1) == []
    assert summary(cli_runner, path, tmp_path / "e.csv", "--encoding", "gbk")["created"] == 3
    assert [c.name for c in crm.customers.find(mobile=M3)] == [names[2]]


def test_chinese_text_in_gb18030_reads_as_chinese() -> None:
    """The other side of the Big5 check: names (level-2 hanzi among them), addresses
    and company names in GB18030 are taken, a sample of a row or of many."""
    from faker import Faker

    from recrm_core.csvsource import EncodingGuess, sniff_encoding

    fake = Faker("zh_CN")
    fake.seed_instance(9)
    for size in (1, 3, 50):
        for _ in range(100):
            text = "".join(f"{fake.name()},{fake.address()},{fake.company()}\n"
                           for _ in range(size))
            sample = text.encode("gb18030")
            assert sniff_encoding(sample, complete=True) == EncodingGuess("gb18030"), text
    rare = "name\n" + "\n".join(["璐璐", "昊天", "琪琪", "煜", "鑫鑫", "喆"]) + "\n"
    assert sniff_encoding(rare.encode("gb18030"), complete=True) == EncodingGuess("gb18030")


def test_lines_ended_by_a_carriage_return_alone_are_read(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by a new user: Excel for Mac's "CSV (Macintosh)" ends lines with CR alone,
    # and the whole file was one line: "the header is not valid CSV (new-line
    # character seen in unquoted field - do you need to open the file in
    # universal-newline mode?)", Python's words, or "a line longer than 1 MB".
    # They are read: CR alone ends a line as LF and CRLF do.
    path = tmp_path / "mac.csv"
    path.write_bytes(f"姓名,手机\r王伟,{M1}\r\"李\r娜\",{M2}\r".encode("gb18030"))
    assert summary(cli_runner, path, tmp_path / "m.csv")["created"] == 2
    assert [c.name for c in crm.customers.find(mobile=M1)] == ["王伟"]
    # a quoted cell's CR is its line break
    assert [c.name for c in crm.customers.find(mobile=M2)] == ["李\n娜"]
    semicolons = tmp_path / "mac-semicolons.csv"  # the delimiter of its first line
    semicolons.write_bytes(f"姓名;手机\r张三;{M3}\r备注,其他;{M3}\r".encode("gb18030"))
    assert summary(cli_runner, semicolons, tmp_path / "s.csv")["rows"] == 2
    # Held in memory: a huge one is refused, as all of them were before.
    monkeypatch.setattr(reader, "MAX_CR_FILE_BYTES", 1024 * 1024)
    big = tmp_path / "big-mac.csv"
    big.write_bytes("姓名,手机\r".encode() + f"王伟,{M1}\r".encode("gb18030") * 80_000)
    message = one_line_error(run(cli_runner, big), 2)
    assert message.rstrip().endswith(
        "big-mac.csv' ends its lines with a carriage return alone (Excel for Mac's"
        " 'CSV (Macintosh)') and is larger than 1 MB; save it as 'CSV UTF-8' and"
        " import that")
    assert crm.customers.count() == 3
    crlf = tmp_path / "windows.csv"  # CR before LF is Windows' ending, read as before
    crlf.write_bytes("姓名,手机\r\n王伟,13700000001\r\n".encode("gb18030"))
    assert summary(cli_runner, crlf, tmp_path / "e.csv")["created"] == 1


def test_a_file_without_its_header_is_refused_without_its_first_row(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    # Found by a new user: a list saved without its header was refused naming its
    # first row as "unknown column(s): 王伟, 13812345678, 110105194912310021" - a
    # person's name, mobile and ID number in an error line, and in the API's logs.
    for name, first in (("noheader.csv", f"王伟,{M1},110105194912310021"),
                        ("email.csv", "王伟,wang@example.cn")):
        path = tmp_path / name
        path.write_text(f"{first}\n李娜,{M2},\n", encoding="utf-8")
        message = one_line_error(run(cli_runner, path), 2)
        assert "the file has no header row: its first row holds values" in message
        assert "王伟" not in message and M1 not in message and "@" not in message
    sheet = book(tmp_path / "noheader.xlsx", [["王伟", M1], ["李娜", M2]])
    message = one_line_error(run(cli_runner, sheet), 2)
    assert "no header row" in message and M1 not in message
    assert crm.customers.count() == 0
    typo = tmp_path / "typo.csv"  # a header of unknown names is still named
    typo.write_text(f"Full Name,Mobile Phone\n王伟,{M1}\n", encoding="utf-8")
    assert "unknown column(s): Full Name, Mobile Phone" in one_line_error(
        run(cli_runner, typo), 2)


# -- a long workbook cell ---------------------------------------------------------------------


def test_a_long_workbook_cell_rejects_its_row_only(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    # openpyxl cuts the 40,000 characters to Excel's 32,767: a cell within the limit,
    # judged by the name's rule. (A forged longer cell stops the import: test_import_xlsx.)
    path = book(tmp_path / "long.xlsx", [["name", "mobile"], ["王" * 40_000, M1], ["李娜", M2]])
    errors = tmp_path / "e.csv"
    assert summary(cli_runner, path, errors)["created"] == 1
    [rejected] = errors_of(errors)
    assert rejected[:2] == ["1", "name"] and "longer than 100" in rejected[2]


# -- an empty sheet ---------------------------------------------------------------------------


def test_an_empty_first_sheet_names_itself_and_the_others(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    wb = openpyxl.Workbook()
    empty = wb.active
    assert empty is not None
    empty.title = "说明"
    empty["C3"].number_format = "@"  # a formatted cell is no content
    wb.create_sheet("客户").append(["name", "mobile"])
    wb["客户"].append(["王伟", M1])
    wb.create_sheet("汇总")
    path = tmp_path / "book.xlsx"
    wb.save(path)
    message = one_line_error(run(cli_runner, path), 2)
    assert "sheet '说明' is empty (no header row)" in message
    assert "choose another with --sheet NAME: '客户', '汇总'" in message
    assert summary(cli_runner, path, tmp_path / "e.csv", "--sheet", "客户")["created"] == 1
    alone = openpyxl.Workbook()
    alone.save(tmp_path / "alone.xlsx")
    message = one_line_error(run(cli_runner, tmp_path / "alone.xlsx"), 2)
    assert "sheet 'Sheet' is empty (no header row), and the workbook has no other sheet" \
        in message


def test_a_csv_saved_by_excel_with_long_numbers_in_scientific_notation(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    """A sales office's CSV saved from Excel after the ID-card and mobile columns were
    typed as numbers: each such row is rejected with the reason a workbook's number cell
    gets (digits dropped, format the column as text), not a count of characters or
    "letters"; the other rows are imported."""
    path = tmp_path / "visits.csv"
    path.write_text("姓名,手机,身份证\n王一,13800000601,1.10101E+17\n王二,8.61380E+12,\n"
                    "王三,13800000603,\n", encoding="utf-8")
    errors = tmp_path / "rejected.csv"
    counts = summary(cli_runner, path, errors)
    assert (counts["created"], counts["rejected"]) == (1, 2)
    rejected = errors_of(errors)
    assert [(row, field) for row, field, _ in rejected] == [("1", "id_card"), ("2", "mobile")]
    for _, _, reason in rejected:
        assert "scientific notation" in reason and "format the column as text" in reason
    assert "1.10101E+17" not in errors.read_text(encoding="utf-8-sig")  # no ID number echoed
    assert [c.name for c in crm.customers.find(mobile="13800000603")] == ["王三"]


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_a_budget_holding_a_spreadsheet_error_value_says_so(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, kind: str) -> None:
    """Found by a new user's probe: a budget column computed by a formula that failed
    (``#DIV/0!``, a lookup's ``#N/A``; a workbook's error cell or a CSV export of it) was
    "not a number (ranges are not accepted)", which sends the office looking for a
    range. The row names the sheet's error value; the other rows are imported."""
    rows: list[list[Any]] = [["name", "mobile", "budget"], ["王一", M1, "#DIV/0!"],
                             ["王二", M2, "#N/A"], ["王三", M3, 2000000]]
    if kind == "xlsx":
        path = book(tmp_path / "budgets.xlsx", rows)
    else:
        path = tmp_path / "budgets.csv"
        path.write_text("".join(",".join(map(str, row)) + "\n" for row in rows),
                        encoding="utf-8")
    result = run(cli_runner, path)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[:2] == [
        f"row {row}: budget: budget is the spreadsheet error value {error}, not a number:"
        " fix its formula in the sheet or clear the cell"
        for row, error in ((1, "#DIV/0!"), (2, "#N/A"))]
    assert [c.budget for c in crm.customers.find(mobile=M3)] == [2000000]
