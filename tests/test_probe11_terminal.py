"""Found by a new user's probe: a zero-width space (U+200B), a word joiner, a BOM or a
tag character in a value printed raw, so "王\\u200b小明" looked like "王小明" in a
table, and a line separator (U+2028) broke the table's row. Human output shows each
invisible character as an escape; ``--json`` stays exact JSON with the same value."""

from __future__ import annotations

import json

import pytest

from recrm_core import CRM
from recrm_core.cli.output import emit_json
from recrm_core.terminal import INVISIBLE_RANGES, printable
from recrm_core.testing import RecrmCliRunner

INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u2028\u2029\u180e\U000e0041"
MOBILE = "13812345678"


def test_every_invisible_character_is_escaped() -> None:
    for first, last in INVISIBLE_RANGES:
        for code in (first, last):
            shown = printable(f"a{chr(code)}b")
            assert chr(code) not in shown
            assert shown == f"a\\U{code:08x}b" if code > 0xFFFF else \
                shown in (f"a\\u{code:04x}b", f"a\\x{code:02x}b"), shown
    assert printable("王\u200b小明") == "王\\u200b小明"
    assert printable("\U000e0041") == "\\U000e0041"  # not "\ue0041", another text


@pytest.mark.parametrize("kept", ["\ufe0f", "\U000e0100", "\u180b", "é", "王", " "])
def test_variation_selectors_and_visible_text_stay(kept: str) -> None:
    assert printable(f"a{kept}b") == f"a{kept}b"


def test_json_stays_exact(capsys: pytest.CaptureFixture[str]) -> None:
    value = {"name": f"王{INVISIBLE}小明"}
    emit_json(value)
    out = capsys.readouterr().out
    assert not set(out) & set(INVISIBLE)
    assert out.isascii() is False and json.loads(out) == value
    assert "\\udb40\\udc41" in out  # the tag character as JSON writes it: a pair


def test_a_name_with_invisible_characters_shows_them(crm: CRM,
                                                     cli_runner: RecrmCliRunner) -> None:
    name = f"王{INVISIBLE}小明"
    crm.customers.add({"name": name, "mobiles": [MOBILE]})
    shown = cli_runner.invoke("customers", "find", "--mobile", MOBILE)
    assert shown.exit_code == 0, shown.stderr
    assert not set(shown.stdout) & set(INVISIBLE)
    row = next(line for line in shown.stdout.splitlines() if "王" in line)
    assert "王\\u200b\\u200c\\u200d\\u2060\\ufeff\\xad\\u2028\\u2029\\u180e" \
           "\\U000e0041小明" in row
    as_json = cli_runner.invoke("customers", "find", "--mobile", MOBILE, "--json")
    assert not set(as_json.stdout) & set(INVISIBLE)
    assert as_json.json()[0]["name"] == name
