"""Codes and identifiers carry no invisible format characters (Unicode category Cf).

Zero-width and bidirectional-override characters are invisible: ``XL\\u200b1`` and
``X\\u202eL1`` print like ``XL1``, so keeping them would make projects, staff ids and
sources that look the same but are different keys. Mobiles always dropped them; every
code does now, and a code made of nothing else is refused. Names keep theirs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from recrm_core import CRM, Actor, InvalidInput, RejectedRow, clean_code, project_code
from recrm_core.testing import ApiClients, RecrmCliRunner
from recrm_core.testing import problem_of as problem

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


def test_customer_codes_drop_format_characters_and_names_keep_them(crm: CRM) -> None:
    added = crm.customers.add({
        "name": "王\u200d伟",
        "mobile": "13812345678",
        "project": "XL\u200b1",
        "owner_staff": "zh\u202eang",
        "source": "\u2066ad\u2069",
        "external_id": "C-\u200b42",
        "source_system": "m\u200by",
    }).customer
    assert added.name == "王\u200d伟"  # free text: escaped on output, never altered
    assert (added.external_id, added.source_system) == ("C-42", "my")
    [link] = added.projects
    assert (link.project, link.owner_staff, link.source) == ("XL1", "zhang", "ad")
    # the look-alike staff id moves the same links
    assert crm.customers.reassign("zhan\u200bg", "li\ufeff", project="X\u202eL1") == 1
    [moved] = crm.customers.get(added.id).projects
    assert moved.owner_staff == "li"


@pytest.mark.parametrize("field", ["owner_staff", "source", "external_id", "source_system"])
def test_a_customer_code_of_only_invisible_characters_is_refused(crm: CRM, field: str) -> None:
    with pytest.raises(InvalidInput, match=f"{field}: has only invisible characters"):
        crm.customers.add({"mobile": "13812345678", field: "\u200b\u202e"})
    assert crm.customers.count() == 0


def test_reassign_refuses_an_invisible_staff_id(crm: CRM) -> None:
    with pytest.raises(InvalidInput, match="staff id has only invisible"):
        crm.customers.reassign("zhang", "\u200b")


def test_interaction_and_case_codes(crm: CRM) -> None:
    c = crm.customers.add({"mobile": "13812345678"}).customer
    logged = crm.interactions.log(c.id, {"kind": "vi\u200bsit", "channel": "\u202ewechat",
                                         "staff": "zhang\u200b", "project": "XL\u200b1",
                                         "summary": "看房\u200b"})
    assert (logged.kind, logged.channel, logged.staff, logged.project) == (
        "visit", "wechat", "zhang", "XL1")
    assert logged.summary == "看房\u200b"
    case = crm.cases.open({"customer_id": c.id, "category": "re\u200bpair",
                           "subject": "漏水", "department": "\u2066kf\u2069",
                           "assignee": "wang\u00adli"})
    assert (case.category, case.department, case.assignee) == ("repair", "kf", "wangli")
    moved = crm.cases.transfer(case.id, department="eng\u200b", assignee="\u202eliu")
    assert (moved.department, moved.assignee) == ("eng", "liu")
    assert [k.id for k in crm.cases.list(assignee="li\u200bu", department="e\u200dng")] == [
        case.id]
    with pytest.raises(InvalidInput, match="case category has only invisible"):
        crm.cases.open({"customer_id": c.id, "category": "\u200b", "subject": "x"})
    with pytest.raises(InvalidInput, match="interaction kind has only invisible"):
        crm.interactions.log(c.id, {"kind": "\u202e"})


def test_staff_ids_of_actors_and_consent_sources(crm: CRM) -> None:
    assert Actor(staff_id="zh\u200bang", role="con\u200dsultant") == Actor(
        staff_id="zhang", role="consultant")
    with pytest.raises(ValidationError, match="staff id has only invisible"):
        Actor(staff_id="\u200b")
    c = crm.customers.add({"mobile": "13812345678"}).customer
    consent = crm.consent.grant(c.id, "sms", source="\u2066web\u2069")
    assert consent.source == "web"
    with pytest.raises(InvalidInput, match="source has only invisible"):
        crm.consent.grant(c.id, "sms", source="\u200b")


def test_the_cli_refuses_an_invisible_project_code(cli_runner: RecrmCliRunner) -> None:
    result = cli_runner.invoke("customers", "add", "--mobile", "13812345678",
                               "--project", "\u200b\u202e")
    assert result.exit_code == 2
    assert "only invisible characters" in result.stderr
    assert "Traceback" not in result.stderr
    done = cli_runner.invoke("customers", "add", "--mobile", "13812345679",
                             "--project", "X\u202eL1", "--json")
    assert done.exit_code == 0, done.stderr
    assert done.json()["customer"]["projects"][0]["project"] == "XL1"


def test_segments_match_codes_as_they_are_stored(crm: CRM) -> None:
    crm.customers.add({"mobile": "13812345678", "project": "XL1", "owner_staff": "zhang"})
    assert crm.segments.count({"all": [
        {"field": "project", "op": "eq", "value": "X\u202eL1"},
        {"field": "owner_staff", "op": "in", "value": ["zh\u200bang"]},
    ]}) == 1
    with pytest.raises(InvalidInput, match=r"only invisible characters \(field 'project'\)"):
        crm.segments.count({"field": "project", "op": "eq", "value": "\u200b"})


CONTROLLED = ["\x1b[31m\u202e", "X\x1bL1", "XL\t1", "XL\x7f", "XL\x851", "a\nb"]


@pytest.mark.parametrize("raw", CONTROLLED)
def test_a_code_with_a_control_character_is_refused(crm: CRM, raw: str) -> None:
    # Only format characters are dropped; a control character (an escape sequence,
    # a tab, DEL, a C1 code) is refused by the one rule every code goes through.
    with pytest.raises(InvalidInput, match=r"control character \(U\+00"):
        project_code(raw)
    for field in ("project", "owner_staff", "source", "external_id"):
        with pytest.raises(InvalidInput, match=f"{field}: contains a control character"):
            crm.customers.add({"mobile": "13812345678", field: raw})
    with pytest.raises(ValidationError, match="staff id contains a control character"):
        Actor(staff_id=raw)
    with pytest.raises(InvalidInput, match="control character"):
        crm.segments.count({"field": "project", "op": "eq", "value": raw})
    assert crm.customers.count() == 0 and crm.projects.list() == []


def test_the_cli_refuses_control_characters_in_codes(cli_runner: RecrmCliRunner) -> None:
    for args in (("staff", "add", "\x1b[31m\u202e", "--name", "x", "--role", "sales"),
                 ("customers", "add", "--mobile", "13812345678", "--project", "\x1b[31mP"),
                 ("--as", "partner:\x1b[31m", "customers", "add", "--mobile", "13812345678")):
        result = cli_runner.invoke(*args)
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        assert "control character (U+001B)" in result.stderr
        assert "\x1b" not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    assert cli_runner.invoke("customers", "count").stdout.strip() == "0"


def test_the_api_refuses_a_control_character_in_a_project(api_client: ApiClients) -> None:
    client = api_client("admin")
    cid = client.post("/v1/customers", json={"mobile": "13812345678"}).json()["customer"]["id"]
    body = problem(client.post(f"/v1/customers/{cid}/stage",
                               json={"stage": "visitor", "project": "\u001b[31mP"}), 422)
    assert "control character" in body["detail"] and "\x1b" not in body["detail"]
    assert client.get("/v1/projects").json() == []


def test_an_import_rejects_the_row_with_a_control_character(crm: CRM, tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("mobile,project\n13812345678,XL1\n13812345679,\"X\x1bL\"\n"
                    "13812345670,XL1\n", encoding="utf-8")
    rejected: list[RejectedRow] = []
    result = crm.importer.import_file(path, on_reject=rejected.append)
    assert result.created == 2
    assert [(r.row, r.field) for r in rejected] == [(2, "project")]
    assert "control character (U+001B)" in rejected[0].reason
