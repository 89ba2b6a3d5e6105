"""A static list's ``--errors`` file is never the file being imported: naming it (or a
link to it) is refused before the list is made, as the customer import refuses it,
instead of truncating the list the office sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from newsletter_testkit import add_customers
from recrm_newsletter import service

from recrm_core import CRM, ImportFileError, NotFound
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("newsletter")


def test_errors_file_that_is_the_input_is_refused(crm: CRM, cli_runner: RecrmCliRunner,
                                                  tmp_path: Path) -> None:
    add_customers(crm, 2)
    path = tmp_path / "vip.csv"
    text = "手机,备注\n13812340000,老业主\nabc,\n13812340001,\n"
    path.write_text(text, encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(path)
    for target in (path, link):
        with pytest.raises(ImportFileError, match="is the file being imported"):
            service(crm).import_list("vip", path, errors_path=target)
        done = cli_runner.invoke("newsletter", "list", "import", "vip", str(path),
                                 "--errors", str(target))
        assert done.exit_code == 2, (done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "is the file being imported" in lines[0], done.stderr
    # Before the fix the errors file replaced the list: 2 lines were left of it.
    assert path.read_text(encoding="utf-8") == text
    with pytest.raises(NotFound):  # no empty list left behind
        service(crm).list_size("vip")
