"""Every bidirectional control is shown as an escape, in tables and in JSON."""

from __future__ import annotations

from recrm_core import CRM
from recrm_core.terminal import printable
from recrm_core.testing import RecrmCliRunner

# Unicode's Bidi_Control property: ALM, LRM, RLM, the embeddings and overrides, the
# isolates. The marks were printed raw: a RLM reorders the text around it.
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_every_bidi_control_is_escaped() -> None:
    shown = printable(f"a{BIDI_CONTROLS}b")
    assert not set(shown) & set(BIDI_CONTROLS)
    assert shown == "a" + "".join(f"\\u{ord(c):04x}" for c in BIDI_CONTROLS) + "b"


def test_a_name_with_a_right_to_left_mark_prints_escaped(
    crm: CRM, cli_runner: RecrmCliRunner
) -> None:
    name = "王\u200f小明 (123)\u061c\u200e"
    crm.customers.add({"name": name, "mobiles": ["13812345678"]})
    shown = cli_runner.invoke("customers", "find", "--mobile", "13812345678")
    assert shown.exit_code == 0, shown.stderr
    assert r"王\u200f小明 (123)\u061c\u200e" in shown.stdout
    as_json = cli_runner.invoke("customers", "find", "--mobile", "13812345678", "--json")
    assert not set(as_json.stdout) & set(BIDI_CONTROLS)
    assert as_json.json()[0]["name"] == name  # the same value, escaped as JSON
