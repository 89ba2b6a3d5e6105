"""The 销控表 import's ``--errors`` file is never the file being imported: naming it
(or a link to it) is refused before anything is read or written, as the customer
import refuses it, instead of truncating the table the office sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from sales_testkit import HEADER, PROJECT, ROWS

from recrm_core import CRM, ImportFileError
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("sales")


def test_errors_file_that_is_the_input_is_refused(crm: CRM, cli_runner: RecrmCliRunner,
                                                  tmp_path: Path) -> None:
    from recrm_sales import service

    crm.projects.ensure(PROJECT, "Xinglong Phase II")
    path = tmp_path / "units.csv"
    text = HEADER + ROWS + "3,1,x,1299,98.5,,,,1970000,,可售\n"  # one row to reject
    path.write_bytes(text.encode("gbk"))
    link = tmp_path / "link.csv"
    link.symlink_to(path)
    for target in (path, link):
        with pytest.raises(ImportFileError, match="is the file being imported"):
            service(crm).units.import_file(path, project=PROJECT, errors_path=str(target))
        done = cli_runner.invoke("sales", "units", "import", str(path), "--project", PROJECT,
                                 "--errors", str(target))
        assert done.exit_code == 2, (done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "is the file being imported" in lines[0], done.stderr
    # Before the fix the errors file replaced the table: 2 lines were left of it.
    assert path.read_bytes() == text.encode("gbk")
    assert service(crm).units.list() == []
