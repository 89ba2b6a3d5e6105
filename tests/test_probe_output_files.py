"""Found by probing as a new user (as root): ``recrm report funnel --svg /dev/null``
said "wrote /dev/null" and left a regular file in the device's place, since every
export is written beside its path and renamed onto it. A path that is a device, a FIFO
or a socket is now refused (exit 2) and left as it was, for reports, the dashboard and
customer list exports alike. The probes use a FIFO: never a real device."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from recrm_core import CRM, InvalidInput
from recrm_core.listexport import open_list_writer, write_bytes_atomically
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


def fifo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def still_a_fifo(path: Path) -> bool:
    return stat.S_ISFIFO(os.stat(path).st_mode)


def test_the_writers_refuse_a_fifo_and_leave_it(tmp_path: Path) -> None:
    pipe = fifo(tmp_path, "out.csv")
    with pytest.raises(InvalidInput, match="is not a regular file"):
        write_bytes_atomically(pipe, b"x")
    with pytest.raises(InvalidInput, match="is not a regular file"):
        open_list_writer(pipe, ["name"])
    assert still_a_fifo(pipe)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # no temporary left
    regular = tmp_path / "ok.csv"
    regular.write_text("old", encoding="utf-8")
    write_bytes_atomically(regular, b"new")  # a regular file is still replaced whole
    assert regular.read_bytes() == b"new"


@pytest.mark.parametrize("option", ["--csv", "--xlsx", "--svg", "--png"])
def test_a_report_is_not_renamed_onto_a_fifo(crm: CRM, cli_runner: RecrmCliRunner,
                                             tmp_path: Path, option: str) -> None:
    pipe = fifo(tmp_path, "funnel")
    result = cli_runner.invoke("report", "funnel", option, str(pipe))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip() == (f"error: Invalid value for {option}: cannot write "
                                     f"'{pipe}': is not a regular file (a device, FIFO or "
                                     "socket)")
    assert still_a_fifo(pipe)


def test_the_dashboard_and_a_list_export_refuse_a_fifo(crm: CRM, cli_runner: RecrmCliRunner,
                                                       tmp_path: Path) -> None:
    crm.customers.add({"name": "王伟", "mobile": "13812345678"})
    page = fifo(tmp_path, "dashboard.html")
    result = cli_runner.invoke("report", "dashboard", "--html", str(page))
    assert result.exit_code == 2, result.stderr
    assert "is not a regular file" in result.stderr and still_a_fifo(page)
    listed = fifo(tmp_path, "list.csv")
    exported = cli_runner.invoke("customers", "export-list", "--segment", '{"all": []}',
                                 "--out", str(listed))
    assert exported.exit_code == 2, exported.stderr
    assert "is not a regular file" in exported.stderr and still_a_fifo(listed)


def test_an_import_refuses_a_fifo_as_its_errors_file(crm: CRM, cli_runner: RecrmCliRunner,
                                                      tmp_path: Path) -> None:
    # Opening a FIFO to write blocks until someone reads it: the import waited forever.
    source = tmp_path / "in.csv"
    source.write_text("name,mobile\n王伟,13812345678\n坏,123\n", encoding="utf-8")
    pipe = fifo(tmp_path, "rejected.csv")
    result = cli_runner.invoke("customers", "import", str(source), "--errors", str(pipe))
    assert result.exit_code == 2, result.stderr
    assert result.stderr.strip().endswith(
        f"cannot write '{pipe}': is not a regular file (a device, FIFO or socket)")
    assert len(result.stderr.strip().splitlines()) == 1
    assert still_a_fifo(pipe) and crm.customers.count() == 0
    # the same rule for the SDK's errors file and the exports' writers
    from recrm_core import ImportFileError
    from recrm_core.errorsfile import ErrorsFile

    with pytest.raises(ImportFileError, match="is not a regular file"), ErrorsFile(pipe):
        pass
