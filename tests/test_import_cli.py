"""``recrm customers import``: output, exit codes, the errors file, progress."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recrm_core import CRM, Customer, ImportedCustomer, hookimpl
from recrm_core.testing import RecrmCliRunner

M1, M2 = "13812345678", "13912345678"


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / "customers.csv"
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_json_summary_is_one_line(cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    text = f"姓名,手机号,邮箱\n王伟,{M1},a@x.cn\n王伟,{M1},\n坏,12,\n李娜,{M2},a@x.cn\n"
    path = write(tmp_path, text)
    result = cli_runner.invoke("customers", "import", path, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n")
    assert json.loads(result.stdout) == {
        "rows": 4, "created": 2, "merged": 1, "rejected": 1, "suspected_duplicates": 2}
    # not a terminal: no progress bar, nothing on stderr
    assert result.stderr == ""


def test_human_summary(cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    result = cli_runner.invoke("customers", "import", write(tmp_path, f"mobile\n{M1}\nbad\n"))
    assert result.exit_code == 0
    assert "created" in result.stdout and "rejected" in result.stdout
    assert "--errors" in result.stderr


def test_rejected_rows_are_listed_with_their_numbers_and_reasons(
        cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    # Found by a new user: without --errors the import said only "use --errors FILE
    # to see why rows were rejected", where the plugins' imports list them.
    rows = "".join(f"{M1[:-3]}{i:03d}\n" if i % 2 else f"12{i}\n" for i in range(60))
    result = cli_runner.invoke("customers", "import", write(tmp_path, "mobile\n" + rows))
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "row 1: mobile: '120' is not a valid phone number"
    assert lines[19] == "row 39: mobile: '1238' is not a valid phone number"
    assert lines[20:] == ["… and 10 more (use --errors FILE)"]
    errors = tmp_path / "rejected.csv"
    few = cli_runner.invoke("customers", "import", write(tmp_path, f"mobile\n{M2}\nbad\n"),
                            "--errors", str(errors))
    assert few.stderr.splitlines() == ["row 2: mobile: mobile 'bad' contains letters or an"
                                       " extension", f"rejected rows written to {errors}"]


def test_errors_option(cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    errors = tmp_path / "rejected.csv"
    path = write(tmp_path, f"手机,预算\n{M1},100-200万\n{M2},200万\n", "gb18030")
    result = cli_runner.invoke("customers", "import", path, "--errors", str(errors), "--json")
    assert result.exit_code == 0
    assert result.json()["rejected"] == 1
    raw = errors.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["row", "field", "reason"] and rows[1][:2] == ["1", "budget"]


def test_encoding_option(cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, f"name,mobile\n王伟,{M1}\n", "gb18030")
    bad = cli_runner.invoke("customers", "import", path, "--encoding", "utf-8", "--json")
    assert bad.exit_code == 1 and bad.stdout == ""
    assert "row 1" in bad.stderr and bad.stderr.count("\n") == 1
    ok = cli_runner.invoke("customers", "import", path, "--encoding", "gb18030", "--json")
    assert ok.exit_code == 0 and ok.json()["created"] == 1
    unknown = cli_runner.invoke("customers", "import", path, "--encoding", "nope")
    assert unknown.exit_code == 2 and "nope" in unknown.stderr


def test_unknown_column_exit_2(crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, f"姓名,手机,微信号\n王伟,{M1},wx1\n")
    result = cli_runner.invoke("customers", "import", path, "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert "微信号" in result.stderr and "置业顾问" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert crm.customers.count() == 0


@pytest.mark.parametrize("target", ["missing.csv", "."])
def test_unreadable_file_exit_2(cli_runner: RecrmCliRunner, tmp_path: Path, target: str) -> None:
    result = cli_runner.invoke("customers", "import", str(tmp_path / target))
    assert result.exit_code == 2 and result.stdout == ""


def test_empty_file_exit_2(cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    result = cli_runner.invoke("customers", "import", write(tmp_path, ""))
    assert result.exit_code == 2 and "header" in result.stderr


@pytest.mark.recrm_settings(import_batch_size=500)
def test_undecodable_row_exit_1(crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    # 3000 Chinese rows fill the 64 KB window (so: UTF-8), then a GBK row.
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        ("name,mobile\n" + "".join(f"客户-{i},139{i:08d}\n" for i in range(3000))).encode()
        + "王伟,15012345678\n".encode("gbk")
    )
    result = cli_runner.invoke("customers", "import", str(path), "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert "row 3001" in result.stderr and result.stderr.count("\n") == 1
    assert crm.customers.count() == 3000


class Broken:
    @hookimpl
    def recrm_customers_imported(self, records: list[ImportedCustomer],
                                 load: Callable[[list[int]], dict[int, Customer]]) -> None:
        created = load([r.customer_id for r in records if r.created])
        if any(c.name == "炸" for c in created.values()):
            raise ValueError("refused")


@pytest.mark.recrm_settings(import_batch_size=2)
def test_plugin_failure_exit_1_then_rerun(
    crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path, register_plugin: Callable[..., str]
) -> None:
    register_plugin(Broken(), name="broken-loyalty")
    path = write(tmp_path, f"name,mobile\na,{M1}\nb,{M2}\n炸,13712345678\nd,15012345678\n")
    result = cli_runner.invoke("customers", "import", path, "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert "broken-loyalty" in result.stderr and "2 row(s)" in result.stderr
    assert result.stderr.count("\n") == 1
    assert crm.customers.count() == 2
    crm.pm.unregister(name="broken-loyalty")
    again = cli_runner.invoke("customers", "import", path, "--json")
    assert again.exit_code == 0
    assert again.json() == {"rows": 4, "created": 2, "merged": 2, "rejected": 0,
                            "suspected_duplicates": 0}
    assert crm.customers.count() == 4


def test_progress_bar_only_on_a_terminal(
    cli_runner: RecrmCliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recrm_core.cli import importing

    shown: list[bool] = []
    original = importing._progress_bar

    def spy(enabled: bool) -> Any:
        shown.append(enabled)
        return original(enabled)

    monkeypatch.setattr(importing, "_progress_bar", spy)
    result = cli_runner.invoke("customers", "import", write(tmp_path, f"mobile\n{M1}\n"), "--json")
    assert result.exit_code == 0 and shown == [False] and result.stderr == ""


def test_progress_bar_renders_to_stderr() -> None:
    from recrm_core.cli.importing import _progress_bar
    from recrm_core.importing import ImportProgress

    with _progress_bar(True) as update:
        assert update is not None
        update(ImportProgress(rows=10, bytes_read=50, total_bytes=100))
    with _progress_bar(False) as nothing:
        assert nothing is None


def test_binary_file_is_a_usage_error(
    cli_runner: RecrmCliRunner, tmp_path: Path, crm: CRM
) -> None:
    path = tmp_path / "photo.csv"
    path.write_bytes(bytes([0x81, 0x30, 0xFF, 0xFE, 0xFF]) * 50 + b"\n13812345678\n")
    result = cli_runner.invoke("customers", "import", str(path))
    assert result.exit_code == 2
    assert "header cannot be decoded" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert crm.customers.count() == 0


def test_utf16_file_is_refused_with_advice(
    cli_runner: RecrmCliRunner, tmp_path: Path, crm: CRM
) -> None:
    path = tmp_path / "unicode.txt"
    path.write_bytes("姓名\t手机\n王伟\t13812345678\n".encode("utf-16"))
    result = cli_runner.invoke("customers", "import", str(path))
    assert result.exit_code == 2
    assert "UTF-16" in result.stderr and "CSV UTF-8" in result.stderr
    assert crm.customers.count() == 0
