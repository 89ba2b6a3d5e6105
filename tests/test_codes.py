"""Codes and identifiers carry no invisible format characters (Unicode category Cf).

Zero-width and bidirectional-override characters are invisible: ``XL\\u200b1`` and
``X\\u202eL1`` print like ``XL1``, so keeping them would make projects, staff ids and
sources that look the same but are different keys. Mobiles always dropped them; every
code does now, and a code made of nothing else is refused. Names keep theirs.
"""

from __future__ import annotations

import pytest

from recrm_core import CRM, InvalidInput, project_code
from recrm_core.identity import clean_code

INVISIBLE = [
    "XL\u200b1",  # zero-width space
    "X\u202eL1",  # right-to-left override
    "\u2066XL1\u2069",  # left-to-right isolate ... pop
    "XL\u00ad1",  # soft hyphen
    "\ufeffXL1",  # BOM
    "X\u200dL\u200c1",  # zero-width joiner / non-joiner
    "\u200b XL1 \u200b",  # trimmed after the invisible characters go
]


@pytest.mark.parametrize("raw", INVISIBLE)
def test_format_characters_leave_codes(raw: str) -> None:
    assert clean_code(raw) == "XL1"
    assert project_code(raw) == "XL1"


@pytest.mark.parametrize("raw", ["\u200b", "\u202e\u202c", " \ufeff "])
def test_a_code_of_only_invisible_characters_is_refused(raw: str) -> None:
    with pytest.raises(InvalidInput, match="invisible"):
        project_code(raw)


def test_visible_text_is_kept() -> None:
    # NFKC and trimming as before; letters of any script are not format characters
    assert project_code(" 星隆二期 ") == "星隆二期"
    assert project_code("ＸＬ２") == "XL2"


def test_invisible_variants_are_one_project(crm: CRM) -> None:
    for raw in INVISIBLE:
        crm.customers.add({"mobile": "13812345678", "project": raw})
    assert [p.code for p in crm.projects.list()] == ["XL1"]
    assert crm.projects.get("X\u202eL1").code == "XL1"
