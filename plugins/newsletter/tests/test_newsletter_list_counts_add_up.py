"""Every row of a list file falls in one count of the import's summary, so the counts
add up to the rows read: a row naming a customer already on the list, or one an
earlier row of the same file named, is counted as such (printed and in ``--json``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from newsletter_testkit import add_customers
from recrm_newsletter import service

from recrm_core import CRM
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("newsletter")

COUNTS = ("added", "already", "repeated", "unknown", "rejected")

#: a messy file: a title row, an ignored column, a repeated customer (once by
#: mobile, once by a second mobile column of the same row), a stranger, a typo, a
#: cell right of the header, blank lines
MESSY = ("VIP 名单\n"
         "手机,联系电话,备注\n"
         "13812340000,,\n"
         "13812340001,13812340000,\n"
         "\n"
         "13812340000,,又一次\n"
         "13999999999,,陌生人\n"
         "abc,,\n"
         "13812340002,,,多出的一格\n"
         ",,,\n"
         "13812340002,,\n")


def _assert_adds_up(counts: dict[str, int]) -> None:
    assert sum(counts[name] for name in COUNTS) == counts["rows"], counts


def test_the_counts_of_a_messy_list_file_add_up_to_its_rows(
        crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    add_customers(crm, 3)
    csv = tmp_path / "vip.csv"
    csv.write_text(MESSY, encoding="utf-8")
    result = cli_runner.invoke("newsletter", "list", "import", "vip", str(csv), "--json")
    assert result.exit_code == 0, result.stderr
    first = json.loads(result.stdout)
    _assert_adds_up(first)
    assert [first[name] for name in ("rows", *COUNTS)] == [7, 3, 0, 1, 1, 2]
    again = cli_runner.invoke("newsletter", "list", "import", "vip", str(csv))
    assert again.exit_code == 0, again.stderr
    assert ("0 added from 7 row(s); 1 named nobody, 2 rejected, 3 already on the list,"
            " 1 repeated in the file") in again.stderr
    assert service(crm).list_size("vip") == 3


def test_the_probe_s_five_rows_fall_in_five_counts(crm: CRM, tmp_path: Path) -> None:
    add_customers(crm, 3)
    csv = tmp_path / "five.csv"
    csv.write_text("手机\n13812340000\n13812340001\n13812340001\n13812340002\nabc\n",
                   encoding="utf-8")
    counts = service(crm).import_list("five", csv)
    _assert_adds_up(counts)
    assert (counts["added"], counts["repeated"], counts["rejected"]) == (3, 1, 1)
