"""Files the import must not mis-read or half-read: the encoding decided from a sample,
unbalanced quotes, and paths that are not regular files (issue 7)."""

from __future__ import annotations

import csv
import io
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from recrm_core import CRM
from recrm_core.csvsource import (
    INVALID_UTF8,
    MAX_LINE_BYTES,
    MAX_QUOTED_BYTES,
    MAX_QUOTED_LINES,
    SNIFF_BYTES,
    CsvSource,
    EncodingGuess,
    ImportFileError,
    ImportReadError,
    sniff_encoding,
)
from recrm_core.models import RejectedRow
from recrm_core.testing import RecrmCliRunner

#: enough plain-ASCII rows to fill the first 64 KB
ASCII_ROWS = "".join(f"customer-{i},139{i:08d}\n" for i in range(3000))


def mobile(i: int) -> str:
    return f"150{i:08d}"


def one_line_error(result: object, code: int) -> str:
    exit_code, stdout, stderr = (getattr(result, n) for n in ("exit_code", "stdout", "stderr"))
    assert exit_code == code, stderr
    assert stdout == "" and stderr.count("\n") == 1 and "Traceback" not in stderr
    return str(stderr)


def errors_of(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))[1:]


# -- the sample decides the encoding ----------------------------------------------------------


def test_a_few_invalid_sequences_keep_utf8() -> None:
    text = "姓名,手机\n" + "".join(f"客户{i},{mobile(i)}\n" for i in range(2000))
    data = text.encode()
    damaged = data[:500] + b"\xff" + data[500:]
    assert sniff_encoding(damaged[:SNIFF_BYTES], complete=False) == EncodingGuess(
        "utf-8", rejects_invalid=True
    )
    assert sniff_encoding(data[:SNIFF_BYTES], complete=False) == EncodingGuess("utf-8")


def test_the_share_of_valid_sequences_decides() -> None:
    # Each run of invalid bytes is one sequence, each valid character one: 19 of 20
    # valid is UTF-8, 18 of 19 is not.
    assert sniff_encoding(("王" * 19).encode() + b"\xff\xfe", True) == EncodingGuess(
        "utf-8", rejects_invalid=True
    )
    guess = sniff_encoding(("王" * 18).encode() + b"\xff\xfe", True)
    assert guess.encoding != "utf-8" or not guess.rejects_invalid


def test_gb18030_and_undecodable_samples() -> None:
    assert sniff_encoding("姓名,手机\n王伟,1\n".encode("gbk"), True) == EncodingGuess("gb18030")
    # 0xff starts nothing in either: undecodable, at the encoding that read further.
    assert sniff_encoding(b"name\n\xffabc\n", True) == EncodingGuess("utf-8", undecodable=True)
    gbk_then_ff = "王伟\n".encode("gbk") + b"x\xff\n"
    assert sniff_encoding(gbk_then_ff, True) == EncodingGuess("gb18030", undecodable=True)


def test_plain_ascii_decides_only_at_the_end() -> None:
    assert sniff_encoding(b"name,mobile\n" * 10, complete=False) == EncodingGuess(None)
    assert sniff_encoding(b"name,mobile\n", complete=True) == EncodingGuess("utf-8")


def test_utf8_file_with_one_invalid_byte(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    # The file: decoded whole as GB18030, 客户1 was stored as 瀹㈡埛1.
    rows = [f"客户{i},{mobile(i)}".encode() for i in range(1, 201)]
    rows[56] = "客户57".encode() + b"\xe5\xae," + mobile(57).encode()  # a cut character
    rows[99] = "客户100,".encode() + b"150\xff0000100"
    path = tmp_path / "in.csv"
    path.write_bytes("姓名,手机\n".encode() + b"\n".join(rows) + b"\n")
    errors = tmp_path / "errors.csv"
    result = cli_runner.invoke("customers", "import", str(path), "--errors", str(errors),
                               "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"rows": 200, "created": 198, "merged": 0, "rejected": 2,
                             "suspected_duplicates": 0}
    assert errors_of(errors) == [["57", "name", INVALID_UTF8], ["100", "mobile", INVALID_UTF8]]
    assert [c.name for c in crm.customers.find(mobile=mobile(1))] == ["客户1"]
    assert crm.customers.find(mobile=mobile(57)) == []


def test_a_header_with_invalid_utf8_is_refused(crm: CRM, cli_runner: RecrmCliRunner,
                                               tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    body = "".join(f"客户{i},{mobile(i)}\n" for i in range(100)).encode()
    path.write_bytes("姓名".encode() + b"\xff,mobile\n" + body)
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 2)
    assert "header is not valid UTF-8" in message
    assert crm.customers.count() == 0


def test_gbk_after_64_kb_of_ascii_is_read_right(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    # The first non-ASCII byte is in the second line of a quoted multi-line cell: the
    # row it belongs to is neither lost nor read twice. (The cell is a name: a newline
    # in a code such as the source would reject the row.)
    text = ("name,mobile,source\n" + "".join(f"customer-{i},139{i:08d},web\n"
                                             for i in range(3000))
            + f'"wang\n王伟",{mobile(1)},agency\n'
            + "".join(f"客户{i},{mobile(i)},来源\n" for i in range(2, 50)))
    path = tmp_path / "gbk.csv"
    path.write_bytes(text.encode("gbk"))
    assert path.read_bytes()[:SNIFF_BYTES].isascii()
    result = cli_runner.invoke("customers", "import", str(path), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json()["rows"] == 3049 and result.json()["created"] == 3049
    first = crm.customers.find(mobile=mobile(1))[0]
    assert first.name == "wang\n王伟"
    assert crm.customers.find(mobile=mobile(49))[0].name == "客户49"
    assert crm.customers.count() == 3049


def undecodable_file(tmp_path: Path, head: str) -> Path:
    """``head``, then a GBK row (3001 when ``head`` is ASCII_ROWS), an ASCII row and a
    row with a byte neither UTF-8 nor GB18030 decodes (3003)."""
    path = tmp_path / "neither.csv"
    path.write_bytes(("name,mobile\n" + head).encode() + f"王伟,{mobile(1)}\n".encode("gbk")
                     + f"ok,{mobile(2)}\n".encode() + b"bad\xff," + mobile(3).encode() + b"\n")
    return path


@pytest.mark.parametrize(("head", "row"), [
    ("first,13900000001\nsecond,13900000002\n", 5),
    # decided only after 64 KB of ASCII, still in the first batch
    pytest.param(ASCII_ROWS, 3003, marks=pytest.mark.recrm_settings(import_batch_size=5000)),
])
def test_undecodable_sample_in_the_first_batch_writes_nothing(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, head: str, row: int
) -> None:
    path = undecodable_file(tmp_path, head)
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 2)
    assert f"row {row}: cannot be decoded as UTF-8 or GB18030" in message
    assert "--encoding" in message
    assert crm.customers.count() == 0


@pytest.mark.recrm_settings(import_batch_size=500)
def test_undecodable_late_sample_after_a_batch_stops_with_the_count(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = undecodable_file(tmp_path, ASCII_ROWS)
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 1)
    # The failing bytes are in row 3003, but rows 3001-3002 are of the same unknown
    # encoding: the plain-ASCII rows before them are imported, they are not.
    assert message.startswith("error: row 3003: cannot be decoded as UTF-8 or GB18030")
    assert "stopped at row 3001, 3000 row(s) before it were imported" in message
    assert crm.customers.count() == 3000
    assert crm.customers.find(mobile=mobile(2)) == []


def test_csv_source_yields_the_rejected_row(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    rows = [f"客户{i},{mobile(i)}".encode() for i in range(100)]
    rows[3] = b"\xc0\xaf," + mobile(3).encode()  # an overlong "/": never valid UTF-8
    path.write_bytes(b"name,mobile\n" + b"\n".join(rows))
    with CsvSource(path) as source:
        read = list(source)
    assert source.encoding == "utf-8"
    assert read[3] == (4, RejectedRow(row=4, field="name", reason=INVALID_UTF8))
    assert read[4] == (5, {"name": "客户4", "mobile": mobile(4)}) and len(read) == 100


# -- unbalanced quotes ------------------------------------------------------------------------


@pytest.mark.parametrize(("good_rows", "why"), [
    (5, "is never closed"), (500, f"runs over more than {MAX_QUOTED_LINES} lines")])
def test_a_quote_never_closed_stops_at_its_row(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, good_rows: int, why: str
) -> None:
    # The file swallowed 500 good rows into one field: "rows: 2", exit 0.
    text = (f"name,mobile\na,{mobile(1)}\nb,{mobile(2)}\n\"c,{mobile(3)}\n"
            + "".join(f"good-{i},{mobile(i)}\n" for i in range(10, 10 + good_rows)))
    path = tmp_path / "in.csv"
    path.write_text(text)
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 1)
    assert f"row 3: opens a quoted field that {why}" in message
    assert "2 row(s) before it were imported" in message
    assert crm.customers.count() == 2


def multiline(lines: int, width: int = 1) -> str:
    return '"' + "\n".join("x" * width for _ in range(lines)) + '"'


def test_a_quoted_field_over_more_than_100_lines_is_malformed(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"name,mobile,source\na,{mobile(1)},{multiline(MAX_QUOTED_LINES)}\n"
                    f"b,{mobile(2)},{multiline(MAX_QUOTED_LINES + 1)}\nc,{mobile(3)},web\n")
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 1)
    assert f"row 2: opens a quoted field that runs over more than {MAX_QUOTED_LINES}" in message
    # Row 1's 100-line cell was read (and rejected: a source is 64 characters at most).
    assert "1 row(s) before it were imported" in message
    assert crm.customers.count() == 0


def test_a_quoted_field_over_64_kb_is_malformed(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    # Within the limits, a multi-line cell is read whole.
    path = tmp_path / "in.csv"
    cell = "\n".join("y" * 650 for _ in range(MAX_QUOTED_LINES))
    assert MAX_QUOTED_BYTES - 1000 < len(cell) < MAX_QUOTED_BYTES
    path.write_text(f'mobile,source\n{mobile(1)},"{cell}"\n{mobile(2)},"a\nb"\n')
    with CsvSource(path) as source:
        assert list(source) == [(1, {"mobile": mobile(1), "source": cell}),
                                (2, {"mobile": mobile(2), "source": "a\nb"})]
    path.write_text(f"name,mobile,source\na,{mobile(1)},web\n"
                    f"b,{mobile(2)},{multiline(3, MAX_QUOTED_BYTES // 3 + 10)}\n")
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 1)
    assert "row 2: opens a quoted field longer than 64 KB" in message
    assert crm.customers.count() == 1


def test_an_open_quote_in_the_header_is_a_usage_error(
    cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f'name,"mobile\n{mobile(1)}\n')
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 2)
    assert "the header opens a quoted field that is never closed" in message


# -- files that are not files -------------------------------------------------------------------


def recrm_process(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``recrm --db URL ARGS`` in a process that may use 2 GB at most and 60 s."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    env = {k: v for k, v in os.environ.items() if k not in ("RECRM_DATABASE_URL", "RECRM_DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", "from recrm_core.cli import main; main()", "--db", database_url,
         *args],
        env=env, capture_output=True, text=True, timeout=60, preexec_fn=limit_memory,
    )


def test_a_link_to_dev_zero_is_refused(recrm_database_url: str, tmp_path: Path) -> None:
    link = tmp_path / "zero.csv"
    link.symlink_to("/dev/zero")
    started = time.monotonic()
    proc = recrm_process(recrm_database_url, "customers", "import", str(link))
    assert time.monotonic() - started < 30
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "character device, not a file" in proc.stderr


def test_a_fifo_is_refused_without_waiting(recrm_database_url: str, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    # An import that waits for a writer is killed by the time limit: the test fails.
    proc = recrm_process(recrm_database_url, "customers", "import", str(fifo))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "FIFO (named pipe), not a file" in proc.stderr


def test_a_device_is_refused(cli_runner: RecrmCliRunner) -> None:
    message = one_line_error(cli_runner.invoke("customers", "import", os.devnull), 2)
    assert "character device, not a file" in message


def test_an_endless_line_is_cut_while_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "endless.csv"
    with path.open("wb") as fh:
        fh.write(b"mobile\n")
        fh.truncate(64 * MAX_LINE_BYTES)  # 64 MB of NUL bytes, no newline
    tracemalloc.start()
    try:
        with CsvSource(path) as source, pytest.raises(ImportReadError) as info:
            list(source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.row == 1 and "longer than 1024 KB" in str(info.value)
    assert peak < 4 * MAX_LINE_BYTES


def test_an_endless_header_is_a_usage_error(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "endless.csv"
    path.write_bytes(b"mobile," * (MAX_LINE_BYTES // 7 + 1))
    message = one_line_error(cli_runner.invoke("customers", "import", str(path)), 2)
    assert "the header has a line longer than 1024 KB" in message
    with pytest.raises(ImportFileError):
        CsvSource(path)
