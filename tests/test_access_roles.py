"""Who sees what (docs/access.md, recrm_core/access.py): every read path of the CLI and
the SDK, per role, against one small world, on both backends."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pydantic import ValidationError

from recrm_core import CRM, Actor, Refused, normalise_id_card
from recrm_core.testing import CliResult, RecrmCliRunner

ID_CARD = "11010519491231002X"
UNIONID = "oAbCdEfGhIjKlMnOpQrStUvWx_12"
ROLES_LISTED = "admin, manager, sales, service, partner, analyst"
HIDDEN = "(hidden)"
SUMMARY_A = "王伟来电: 手机 13812345678, 身份证 11010519491231002X"
SUMMARY_B = "欧阳娜娜到访, 邮箱 ouyang.nana@example.org"
SUBJECT = "欧阳娜娜投诉卫生间漏水"
DESCRIPTION = "回电 13998765432, 住址星珑二期 3-1202"
NOTE = "已致电 139 9876 5432"
FREE_TEXT = (SUMMARY_A, SUMMARY_B, SUBJECT, DESCRIPTION, NOTE)
FULL_COLUMNS = ["id", "name", "mobiles", "id_card", "email", "wechat_unionids", "gender",
                "birth_date", "persona", "budget", "stage", "projects", "owners", "masked"]
PARTNER_COLUMNS = ["id", "name", "mobiles", "stage", "projects"]
XL1 = '{"field": "project", "op": "eq", "value": "XL1"}'


@dataclass(frozen=True)
class Person:
    """A customer of the world, with what each presentation must show of them."""

    name: str
    entered_mobile: str
    mobile: str  # national digits, as dialled
    email: str
    masked_name: str
    masked_mobile: str
    masked_email: str
    id_card: str | None = None
    masked_id_card: str | None = None
    wechat: str | None = None
    masked_wechat: str | None = None
    gender: str | None = None
    birth_date: str | None = None
    persona: str | None = None
    budget: int | None = None
    birthplace: str | None = None
    timeline: tuple[str, str] | None = None  # (kind, summary)

    @property
    def e164(self) -> str:
        return "+86" + self.mobile

    def shown(self, how: str) -> dict[str, Any]:
        """The customer fields a read shows, as JSON."""
        if how == "full":
            return {"name": self.name, "mobiles": [self.e164], "id_card": self.id_card,
                    "email": self.email, "wechat_unionids": [self.wechat] if self.wechat else [],
                    "gender": self.gender, "birth_date": self.birth_date,
                    "persona": self.persona, "budget": self.budget, "masked": False}
        if how == "masked":
            return {"name": self.masked_name, "mobiles": [self.masked_mobile],
                    "id_card": self.masked_id_card, "email": self.masked_email,
                    "wechat_unionids": [self.masked_wechat] if self.wechat else [],
                    "gender": self.gender, "birth_date": None, "persona": self.persona,
                    "budget": self.budget, "masked": True}
        assert how == "minimal"
        return {"name": self.masked_name, "mobiles": [self.masked_mobile], "id_card": None,
                "email": None, "wechat_unionids": [], "gender": None, "birth_date": None,
                "persona": None, "budget": None, "masked": True}

    def visible(self, how: str) -> list[str]:
        """Strings a table of this customer must hold."""
        s = self.shown(how)
        return [v for v in (s["name"], *s["mobiles"], s["id_card"], s["email"]) if v]

    def secrets(self) -> list[str]:
        """What only a full presentation may show, in every spelling."""
        m = self.mobile
        found = [self.name, m, self.e164, f"{m[:3]} {m[3:7]} {m[7:]}", f"{m[:3]}-{m[3:7]}-{m[7:]}",
                 self.entered_mobile, self.email, self.id_card, self.wechat, self.birth_date]
        return [s for s in found if s]


PEOPLE = {
    "A": Person("王伟", "138 1234 5678", "13812345678", "zhang.wei@example.com", "王*",
                "138****5678", "z***@example.com", ID_CARD, "110105********002X", UNIONID,
                "oAbC****", "female", "1949-12-31", "investor", 3_000_000, "北京市 朝阳区",
                ("call", SUMMARY_A)),
    "B": Person("欧阳娜娜", "+86 139 9876 5432", "13998765432", "ouyang.nana@example.org",
                "欧***", "139****5432", "o***@example.org", timeline=("visit", SUMMARY_B)),
    # shares A's email: a suspected duplicate
    "C": Person("张三丰", "13700000003", "13700000003", "zhang.wei@example.com", "张**",
                "137****0003", "z***@example.com"),
}


@dataclass(frozen=True)
class Seen:
    """What a role must see of A (owned by zhang at XL1), B (XL2, no owner, a case
    assigned to kf1 of KF) and C (XL1, no owner)."""

    acting_as: str
    how: dict[str, str]
    may_disclose: frozenset[str]
    free_text: bool

    @property
    def actor(self) -> Actor:
        role, _, staff = self.acting_as.partition(":")
        return Actor(staff_id=staff, role=role, channel="api")


def _all(how: str) -> dict[str, str]:
    return dict.fromkeys(PEOPLE, how)


ROLES = {
    "admin": Seen("admin:root", _all("full"), frozenset("ABC"), True),
    # allowed A and C (XL1 is XL-SALES's) but shown masked until they disclose
    "manager": Seen("manager:wang", _all("masked"), frozenset("AC"), True),
    "sales": Seen("sales:zhang", {"A": "full", "B": "masked", "C": "masked"},
                  frozenset("A"), True),
    "service": Seen("service:kf1", {"A": "masked", "B": "full", "C": "masked"},
                    frozenset("B"), True),
    "partner": Seen("partner:li", _all("minimal"), frozenset(), False),
    "analyst": Seen("analyst:ana", _all("masked"), frozenset(), False),
}
role_param = pytest.mark.parametrize("role", list(ROLES))


@dataclass
class World:
    crm: CRM
    cli: RecrmCliRunner
    ids: dict[str, int]
    case_id: int
    tmp: Path

    def key_of(self, customer_id: int) -> str:
        return next(k for k, v in self.ids.items() if v == customer_id)

    def invoke(self, seen: Seen, *args: str) -> CliResult:
        return self.cli.invoke("--as", seen.acting_as, *args)

    def run(self, seen: Seen, *args: str) -> CliResult:
        r = self.invoke(seen, *args)
        assert r.exit_code == 0, (args, r.stderr)
        assert "Traceback" not in r.stderr
        return r


@pytest.fixture
def world(crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> World:
    assert normalise_id_card(ID_CARD) == ID_CARD
    for code, name in (("XL1", "星珑一期"), ("XL2", "星珑二期")):
        crm.projects.add({"code": code, "name": name})
    crm.directory.add_department({"code": "XL-SALES", "name": "星珑湾销售部", "projects": ["XL1"]})
    crm.directory.add_department({"code": "KF", "name": "客服部"})
    for sid, name, role, dept in (
        ("root", "管理员", "admin", None), ("wang", "王经理", "manager", "XL-SALES"),
        ("zhang", "张顾问", "sales", "XL-SALES"), ("kf1", "客服一", "service", "KF"),
        ("kf2", "客服二", "service", "KF"), ("li", "李代理", "partner", None),
        ("ana", "分析师", "analyst", None),
    ):
        crm.directory.add_staff({"id": sid, "name": name, "role": role, "department": dept})
    a = crm.customers.add({"name": "王伟", "mobiles": ["138 1234 5678"], "id_card": ID_CARD,
                           "email": "zhang.wei@example.com", "wechat_unionids": [UNIONID],
                           "persona": "investor", "budget": 3_000_000, "project": "XL1",
                           "owner_staff": "zhang"}).customer
    b = crm.customers.add({"name": "欧阳娜娜", "mobiles": ["+86 139 9876 5432"],
                           "email": "ouyang.nana@example.org", "project": "XL2"}).customer
    c = crm.customers.add({"name": "张三丰", "mobiles": ["13700000003"],
                           "email": "zhang.wei@example.com", "project": "XL1"})
    assert c.suspected_duplicate_of == [a.id]
    crm.consent.grant(a.id, "sms")
    crm.interactions.log(a.id, {"kind": "call", "project": "XL1", "staff": "zhang",
                                "summary": SUMMARY_A, "data": {"caller": "13812345678"}})
    crm.interactions.log(b.id, {"kind": "visit", "project": "XL2", "summary": SUMMARY_B})
    case = crm.cases.open({"customer_id": b.id, "category": "complaint", "subject": SUBJECT,
                           "project": "XL2", "department": "KF", "assignee": "kf1",
                           "description": DESCRIPTION})
    crm.cases.start(case.id, actor=Actor(staff_id="kf1", role="service"), note=NOTE)
    return World(crm, cli_runner, {"A": a.id, "B": b.id, "C": c.customer.id}, case.id, tmp_path)


# -- checks ----------------------------------------------------------------------------------

def customer_fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in PEOPLE["A"].shown("full")}


def assert_customer(doc: dict[str, Any], key: str, how: str) -> None:
    assert customer_fields(doc) == PEOPLE[key].shown(how), (key, how)


def assert_not_leaked(text: str, how: dict[str, str]) -> None:
    """No full value of a customer shown other than in full, unless another customer in
    the same output is shown in full with it (A and C share an email)."""
    allowed = {s for k, h in how.items() if h == "full" for s in PEOPLE[k].secrets()}
    for key, h in how.items():
        if h != "full":
            leaked = [s for s in PEOPLE[key].secrets() if s not in allowed and s in text]
            assert not leaked, (key, h, leaked)


def assert_table(text: str, how: dict[str, str]) -> None:
    for key, h in how.items():
        for value in PEOPLE[key].visible(h):
            assert value in text, (key, h, value)
    assert_not_leaked(text, how)


def assert_free_text(text: str, seen: Seen, *expected: str) -> None:
    for words in expected:
        assert (words in text) == seen.free_text, (words, seen.acting_as)
    if not seen.free_text:
        assert HIDDEN in text
        assert not [t for t in FREE_TEXT if t in text]


def refused(r: CliResult, code: int, *needles: str) -> None:
    """Refused: the exit code, nothing on stdout, one line on stderr, no traceback."""
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def assert_view(w: World, doc: dict[str, Any], key: str, seen: Seen) -> None:
    """A 360 view (JSON) of customer ``key`` as ``seen`` must see it."""
    p, how = PEOPLE[key], seen.how[key]
    assert_customer(doc["customer"], key, how)
    shown = p.shown(how)
    idents = [("mobile", p.e164 if how == "full" else p.masked_mobile)]
    if how != "minimal" and p.id_card:
        idents += [("id_card", shown["id_card"]), ("wechat", shown["wechat_unionids"][0])]
    assert [(e["kind"], e["value"]) for e in doc["identities"]] == idents
    assert doc["birthplace"] == (None if how == "minimal" else p.birthplace)
    consents = [c["channel"] for c in doc["consents"]]
    assert consents == ([] if how == "minimal" or key != "A" else ["sms"])
    titles = [(e["kind"], e["title"]) for e in doc["timeline"]]
    if p.timeline is None:
        assert titles == []
    else:
        kind, summary = p.timeline
        assert titles == [(kind, summary if seen.free_text else f"{kind} {HIDDEN}")]
        if not seen.free_text:
            assert [e["data"] for e in doc["timeline"]] == [{}]
    cases = [(c["id"], c["subject"], c["description"]) for c in doc["cases"]]
    if key == "B":
        assert cases == [(w.case_id, SUBJECT, DESCRIPTION) if seen.free_text
                         else (w.case_id, HIDDEN, HIDDEN)]
    else:
        assert cases == []
    if not seen.free_text:
        assert not [t for t in FREE_TEXT if t in json.dumps(doc, ensure_ascii=False)]


def read_export(path: Path) -> tuple[list[str], dict[int, dict[str, str]], str]:
    """Header, rows by id, and every cell as one text."""
    if path.suffix == ".csv":
        text = path.read_text(encoding="utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
    else:
        sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
        rows = [["" if v is None else str(v) for v in row]
                for row in sheet.iter_rows(values_only=True)]
        text = "\n".join(",".join(r) for r in rows)
    header = rows[0]
    return header, {int(r[0]): dict(zip(header, r, strict=True)) for r in rows[1:]}, text


def assert_export_rows(w: World, path: Path, seen: Seen, keys: Iterable[str]) -> None:
    header, rows, text = read_export(path)
    keys = list(keys)
    partner = seen.acting_as.startswith("partner")
    assert header == (PARTNER_COLUMNS if partner else FULL_COLUMNS)
    assert sorted(rows) == sorted(w.ids[k] for k in keys)
    for key in keys:
        p, how = PEOPLE[key], seen.how[key]
        shown, row = p.shown(how), rows[w.ids[key]]
        assert row["name"] == shown["name"]
        assert row["mobiles"] == (p.mobile if how == "full" else p.masked_mobile)
        if not partner:
            assert row["id_card"] == (shown["id_card"] or "")
            assert row["email"] == shown["email"]
            assert row["wechat_unionids"] == " ".join(shown["wechat_unionids"])
            assert row["masked"] == ("no" if how == "full" else "yes")
    assert_not_leaked(text, {k: seen.how[k] for k in keys})


# -- every read path, per role: the command line (and the SDK's 360 view) ---------------

@role_param
def test_show_and_view_as_role(world: World, role: str) -> None:
    seen = ROLES[role]
    for key, cid in world.ids.items():
        view = world.crm.customers.view(cid, actor=seen.actor)
        assert_view(world, view.model_dump(mode="json"), key, seen)
        doc = world.run(seen, "customers", "show", str(cid), "--json").json()
        assert_view(world, doc, key, seen)
        table = world.run(seen, "customers", "show", str(cid)).stdout
        # the customer's own tables; the free text below them is checked on its own
        assert_table(table.split("\ntimeline")[0], {key: seen.how[key]})
        if key == "A":
            assert_free_text(table, seen, SUMMARY_A)
        elif key == "B":
            assert_free_text(table, seen, SUMMARY_B, SUBJECT)


@role_param
def test_find_as_role(world: World, role: str) -> None:
    seen = ROLES[role]
    searches: list[tuple[tuple[str, ...], list[str]]] = [
        (("--mobile", "13812345678"), ["A"]), (("--mobile", "+86 139-9876-5432"), ["B"]),
        (("--id-card", ID_CARD.lower()), ["A"]), (("--email", "Zhang.Wei@example.com"), ["A", "C"]),
        (("--wechat", UNIONID), ["A"]),
    ]
    for args, keys in searches:
        if role == "partner" and args[0] != "--mobile":
            # finding by a key they never see would tell them whose it is
            refused(world.invoke(seen, "customers", "find", *args), 1,
                    "role partner may find customers by mobile only")
            continue
        found = world.run(seen, "customers", "find", *args, "--json").json()
        assert [world.key_of(c["id"]) for c in found] == keys, args
        for doc in found:
            assert_customer(doc, world.key_of(doc["id"]), seen.how[world.key_of(doc["id"])])
        table = world.run(seen, "customers", "find", *args).stdout
        assert_table(table, {k: seen.how[k] for k in keys})


@role_param
def test_duplicates_and_counts_as_role(world: World, role: str) -> None:
    seen = ROLES[role]
    a_email = PEOPLE["A"].email
    if role == "partner":
        for as_json in ((), ("--json",)):
            refused(world.invoke(seen, "customers", "duplicates", *as_json), 1,
                    "role partner may not review duplicates")
    else:
        shown = a_email if role == "admin" else PEOPLE["A"].masked_email
        pairs = world.run(seen, "customers", "duplicates", "--json").json()
        assert pairs == [{"email": shown, "customer_ids": [world.ids["A"], world.ids["C"]]}]
        table = world.run(seen, "customers", "duplicates").stdout
        assert shown in table and (role == "admin") == (a_email in table)
    assert world.run(seen, "customers", "count", "--json").json() == {"count": 3}
    assert world.run(seen, "customers", "count", "--segment", XL1).stdout.strip() == "2"
    by_mobile = '{"field": "mobile", "op": "eq", "value": "13812345678"}'
    assert world.run(seen, "customers", "count", "--segment", by_mobile).stdout.strip() == "1"
    never_seen = [("id_card", ID_CARD), ("email", a_email), ("wechat_unionid", UNIONID),
                  ("birth_date", "1949-12-31"), ("gender", "female"), ("persona", "investor"),
                  ("budget", 3_000_000)]
    for field, value in never_seen:
        segment = json.dumps({"all": [{"field": "stage", "op": "eq", "value": "prospect"},
                                      {"field": field, "op": "eq", "value": value}]})
        r = world.invoke(seen, "customers", "count", "--segment", segment)
        if role == "partner":
            refused(r, 1, f"role partner may not select customers by {field}")
        else:
            # A and C share the email
            assert (r.exit_code, r.stdout.strip()) == (0, "2" if field == "email" else "1"), \
                (field, r.stderr)


@role_param
def test_export_list_as_role(world: World, role: str) -> None:
    seen = ROLES[role]
    out = world.tmp / "all.csv"
    r = world.run(seen, "customers", "export-list", "--all", "--out", str(out), "--json")
    assert r.json() == {"rows": 3, "out": str(out)}
    assert_export_rows(world, out, seen, "ABC")
    xlsx = world.tmp / "xl1.xlsx"
    r = world.run(seen, "customers", "export-list", "--segment", XL1, "--out", str(xlsx))
    assert "wrote 2 customer(s)" in r.stderr + r.stdout
    assert_export_rows(world, xlsx, seen, "AC")
    entries = world.crm.audit.entries(action="export")
    staff = seen.acting_as.partition(":")[2]
    assert [(e.actor_staff, e.details["rows"], e.details["masked_rows"], e.details["format"])
            for e in entries] == [
        (staff, 3, sum(h != "full" for h in seen.how.values()), "csv"),
        (staff, 2, sum(seen.how[k] != "full" for k in "AC"), "xlsx")]
    assert "XL1" in json.dumps(entries[1].details)
    by_id_card = json.dumps({"field": "id_card", "op": "eq", "value": ID_CARD})
    bad = world.tmp / "by-id-card.csv"
    r = world.invoke(seen, "customers", "export-list", "--segment", by_id_card, "--out", str(bad))
    if role == "partner":
        refused(r, 1, "role partner may not select customers by id_card")
        assert not bad.exists()
    else:
        assert r.exit_code == 0, r.stderr
        assert_export_rows(world, bad, seen, "A")
        # the audit entry names the segment, the ID card only as a keyed hash
        details = json.dumps(world.crm.audit.entries(action="export")[-1].details)
        assert ID_CARD not in details and ID_CARD.lower() not in details


@role_param
def test_interactions_and_cases_as_role(world: World, role: str) -> None:
    seen = ROLES[role]
    a, b = str(world.ids["A"]), str(world.ids["B"])
    for cid, summary in ((a, SUMMARY_A), (b, SUMMARY_B)):
        items = world.run(seen, "interactions", "list", cid, "--json").json()
        assert [i["summary"] for i in items] == [summary if seen.free_text else HIDDEN]
        assert_free_text(world.run(seen, "interactions", "list", cid).stdout, seen, summary)
    case = world.run(seen, "cases", "show", str(world.case_id), "--json").json()
    expected = (SUBJECT, DESCRIPTION, [None, NOTE]) if seen.free_text \
        else (HIDDEN, HIDDEN, [None, HIDDEN])
    assert (case["subject"], case["description"], [h["note"] for h in case["history"]]) \
        == expected
    table = world.run(seen, "cases", "show", str(world.case_id)).stdout
    assert_free_text(table, seen, SUBJECT, DESCRIPTION, NOTE)
    for args in ((), ("--customer", b)):
        listed = world.run(seen, "cases", "list", *args, "--json").json()
        assert [(c["id"], c["subject"], c["description"]) for c in listed] == [
            (world.case_id, *expected[:2])]
        assert_free_text(world.run(seen, "cases", "list", *args).stdout, seen, SUBJECT)


@role_param
def test_write_commands_show_what_the_role_may_see(world: World, role: str) -> None:
    seen = ROLES[role]
    a, how = str(world.ids["A"]), seen.how["A"]
    idents, shown = ("id", "name", "id_card", "email", "wechat_unionids", "masked"), \
        {"id": world.ids["A"], **PEOPLE["A"].shown(how)}

    def check(doc: dict[str, Any], mobiles: str = "A") -> None:
        assert [doc[k] for k in idents] == [shown[k] for k in idents]
        assert doc["mobiles"] == [PEOPLE[k].shown(how)["mobiles"][0] for k in mobiles]

    writes = [("customers", "add", "--mobile", "138 1234 5678", "--json"),
              ("customers", "update", a, "--budget", "500万"),
              ("customers", "stage", a, "visitor", "--project", "XL1"),
              ("customers", "merge", a, str(world.ids["C"])),
              ("customers", "reassign", "zhang", "wang"),
              ("interactions", "log", a, "--kind", "call"),
              ("cases", "open", a, "--category", "repair", "--subject", "x"),
              ("cases", "resolve", str(world.case_id)),
              ("consent", "grant", a, "sms"),
              ("projects", "add", "NEW", "--name", "新项目")]
    if role in ("partner", "analyst"):
        # roles that only read change nothing: a write would also tell them whose an
        # ID card is (an add that merges), or show what a read hides (a case's text)
        for args in writes:
            refused(world.invoke(seen, *args), 1, f"role {role} may not change data")
        assert world.crm.audit.entries(action="merge") == []
        return
    added = world.run(seen, "customers", "add", "--mobile", "138 1234 5678", "--json").json()
    assert added["outcome"] == "unchanged"
    check(added["customer"])
    assert_table(world.run(seen, "customers", "add", "--mobile", "13812345678").stdout,
                 {"A": how})
    check(world.run(seen, "customers", "update", a, "--budget", "500万", "--json").json())
    check(world.run(seen, "customers", "stage", a, "visitor", "--project", "XL1",
                    "--json").json())
    check(world.run(seen, "customers", "merge", a, str(world.ids["C"]), "--json").json(), "AC")


# -- every read path, per role: the SDK ------------------------------------------------------

@role_param
def test_sdk_reads_as_role(world: World, role: str) -> None:
    seen, crm, ids = ROLES[role], world.crm, world.ids
    actor = seen.actor

    def dump(customers: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
        return [(world.key_of(c.id), customer_fields(c.model_dump(mode="json")))
                for c in customers]

    def expect(keys: str) -> list[tuple[str, dict[str, Any]]]:
        return [(k, PEOPLE[k].shown(seen.how[k])) for k in keys]

    for key, cid in ids.items():
        assert dump([crm.customers.get(cid, actor=actor)]) == expect(key)
        assert crm.access.can_see(actor, crm.customers.get(cid)) == seen.how[key]
    assert dump(crm.customers.get_many([ids["C"], ids["A"], ids["B"]], actor=actor)) \
        == expect("CAB")
    assert dump(crm.customers.find(mobile="138-1234-5678", actor=actor)) == expect("A")
    hidden_keys = {"id_card": ID_CARD, "email": "zhang.wei@example.com",
                   "wechat_unionid": UNIONID}
    if role == "partner":
        for key, value in hidden_keys.items():
            with pytest.raises(Refused, match="partner may find customers by mobile only"):
                crm.customers.find(**{key: value}, actor=actor)
    else:
        assert dump(crm.customers.find(id_card=ID_CARD, actor=actor)) == expect("A")
        assert dump(crm.customers.find(email="zhang.wei@example.com", actor=actor)) \
            == expect("AC")
        assert dump(crm.customers.find(wechat_unionid=UNIONID, actor=actor)) == expect("A")
    assert dump(crm.customers.find(mobile="13998765432", actor=actor)) == expect("B")
    assert dump(crm.segments.iter_customers(None, actor=actor)) == expect("ABC")
    assert dump(crm.segments.iter_customers(json.loads(XL1), batch_size=1, actor=actor)) \
        == expect("AC")
    for key in "AB":
        summary = PEOPLE[key].timeline
        assert summary is not None
        assert [i.summary for i in crm.interactions.list(ids[key], actor=actor)] == [
            summary[1] if seen.free_text else HIDDEN]
    case = crm.cases.get(world.case_id, actor=actor)
    listed = crm.cases.list(actor=actor)
    texts = (SUBJECT, DESCRIPTION) if seen.free_text else (HIDDEN, HIDDEN)
    assert (case.subject, case.description) == texts
    assert [h.note for h in case.history] == [None, NOTE if seen.free_text else HIDDEN]
    assert [(c.subject, c.description) for c in listed] == [texts]
    assert crm.access.free_text(actor, SUMMARY_A) == (SUMMARY_A if seen.free_text else HIDDEN)
    if role == "service":  # kf2: kf1's department (KF) has B's case, not kf2 themselves
        kf2 = Actor(staff_id="kf2", role="service")
        assert dump(crm.customers.get_many([ids["A"], ids["B"]], actor=kf2)) == expect("AB")


@role_param
def test_disclose_as_role(world: World, role: str) -> None:
    seen, crm = ROLES[role], world.crm
    for key, cid in world.ids.items():
        if key in seen.may_disclose:
            doc = world.run(seen, "customers", "disclose", str(cid), "--reason", "投诉升级",
                            "--json").json()
            assert_customer(doc["customer"], key, "full")
            view = crm.customers.disclose(cid, "回访核实", actor=seen.actor)
            assert_customer(view.customer.model_dump(mode="json"), key, "full")
        else:
            refused(world.invoke(seen, "customers", "disclose", str(cid), "--reason", "好奇"), 1,
                    f"may not see customer {cid} in full")
            with pytest.raises(Refused):
                crm.customers.disclose(cid, "好奇", actor=seen.actor)
    entries = crm.audit.entries(action="disclose")
    staff = seen.acting_as.partition(":")[2]
    assert [(e.actor_staff, e.customer_id, e.reason, e.channel) for e in entries] == [
        row for key in sorted(seen.may_disclose)
        for row in ((staff, world.ids[key], "投诉升级", "cli"),
                    (staff, world.ids[key], "回访核实", "api"))]


# -- the rules, one by one -------------------------------------------------------------------

def test_a_partner_never_sees_a_full_identifier(world: World) -> None:
    """Every command a partner may run, JSON and tables, files read back: no full mobile
    in any spelling, no ID card, email, WeChat unionid, full name, birth date or free
    text anywhere (A's call carries the caller's number in its details)."""
    seen, ids = ROLES["partner"], world.ids
    a, b, c, case = str(ids["A"]), str(ids["B"]), str(ids["C"]), str(world.case_id)
    commands: list[tuple[str, ...]] = [
        *(("customers", "show", x) for x in (a, b, c)),
        ("customers", "find", "--mobile", "13812345678"),
        ("customers", "find", "--mobile", "+8613812345678"),
        ("customers", "find", "--mobile", "138 1234 5678"),
        ("customers", "find", "--id-card", ID_CARD), ("customers", "find", "--wechat", UNIONID),
        ("customers", "find", "--email", "zhang.wei@example.com"),
        ("customers", "duplicates"), ("customers", "count", "--segment", XL1),
        ("customers", "count", "--segment", json.dumps({"field": "id_card", "op": "eq",
                                                        "value": ID_CARD})),
        ("customers", "disclose", a, "--reason", "看看"),
        ("interactions", "list", a), ("interactions", "list", b),
        ("cases", "show", case), ("cases", "list"), ("cases", "list", "--customer", b),
    ]
    outputs: list[tuple[str, str]] = []  # (what ran, what it printed or wrote)
    for command in commands:
        for as_json in ((), ("--json",)):
            r = world.invoke(seen, *command, *as_json)
            assert r.exit_code in (0, 1) and "Traceback" not in r.stderr, (command, r.stderr)
            outputs.append((" ".join((*command, *as_json)), r.stdout + r.stderr))
    for args in (("--all", "--out", "all.csv"), ("--all", "--out", "all.xlsx"),
                 ("--segment", XL1, "--out", "xl1.csv")):
        out = world.tmp / args[-1]
        r = world.run(seen, "customers", "export-list", *args[:-1], str(out))
        outputs.append((f"export-list {args[-1]}", r.stdout + r.stderr + read_export(out)[2]))
    for command in (("customers", "add", "--mobile", "138 1234 5678"),
                    ("customers", "update", a, "--persona", "luxury"),
                    ("customers", "stage", a, "visitor", "--project", "XL1"),
                    ("customers", "merge", a, c)):
        for as_json in ((), ("--json",)):
            r = world.invoke(seen, *command, *as_json)
            outputs.append((" ".join((*command, *as_json)), r.stdout + r.stderr))
    text = "\n".join(t for _, t in outputs)
    assert "138****5678" in text and "欧***" in text  # what a partner does see
    forbidden = [s for p in PEOPLE.values() for s in p.secrets()] + list(FREE_TEXT)
    forbidden += ["zhang.wei", "ouyang", "oAbC"]
    assert [(ran, s) for ran, t in outputs for s in forbidden if s in t] == []


def test_manager_sees_masked_until_disclosing(world: World) -> None:
    seen, ids = ROLES["manager"], world.ids
    a = str(ids["A"])
    found = world.run(seen, "customers", "find", "--mobile", "13812345678", "--json").json()
    assert_customer(found[0], "A", "masked")
    out = world.tmp / "mine.csv"
    world.run(seen, "customers", "export-list", "--segment", XL1, "--out", str(out))
    assert_export_rows(world, out, seen, "AC")
    assert world.crm.audit.entries(action="disclose") == []
    disclosed = world.run(seen, "customers", "disclose", a, "--reason", "客户投诉升级到我",
                          "--json").json()
    assert_customer(disclosed["customer"], "A", "full")
    assert [(e["kind"], e["value"]) for e in disclosed["identities"]][:2] == [
        ("mobile", "+8613812345678"), ("id_card", ID_CARD)]
    table = world.run(seen, "customers", "disclose", a, "--reason", "再核对一次").stdout
    assert all(v in table for v in PEOPLE["A"].visible("full"))
    entries = world.crm.audit.entries(action="disclose")
    assert [(e.actor_staff, e.actor_role, e.customer_id, e.channel, e.reason)
            for e in entries] == [("wang", "manager", ids["A"], "cli", "客户投诉升级到我"),
                                  ("wang", "manager", ids["A"], "cli", "再核对一次")]
    # B is at XL2, not their department's: refused, nothing recorded
    refused(world.invoke(seen, "customers", "disclose", str(ids["B"]), "--reason", "x"), 1,
            "role manager (wang) may not see customer")
    refused(world.invoke(seen, "customers", "disclose", a, "--reason", " "), 2, "reason")
    assert len(world.crm.audit.entries(action="disclose")) == 2
    # disclosing changes no later read: still masked
    assert_customer(world.crm.customers.get(ids["A"], actor=seen.actor).model_dump(mode="json"),
                    "A", "masked")
    doc = world.run(seen, "customers", "show", a, "--json").json()
    assert_view(world, doc, "A", seen)


def test_sales_see_their_own_customer_in_full_and_others_masked(world: World) -> None:
    seen = ROLES["sales"]
    out = world.tmp / "sales.csv"
    world.run(seen, "customers", "export-list", "--all", "--out", str(out))
    rows = read_export(out)[1]
    assert [(world.key_of(i), r["name"], r["mobiles"], r["masked"]) for i, r in rows.items()] \
        == [("A", "王伟", "13812345678", "no"), ("B", "欧***", "139****5432", "yes"),
            ("C", "张**", "137****0003", "yes")]
    # another consultant owns nothing here: everything masked
    other = Actor(staff_id="zhao", role="sales")
    assert [c.masked for c in world.crm.customers.get_many(world.ids.values(), actor=other)] \
        == [True, True, True]


def test_a_partner_may_not_select_by_what_they_never_see(world: World) -> None:
    """docs/access.md: a partner's segment may not select customers by ID card, email,
    WeChat, ...; the SDK's segment listing with a partner actor as well as the CLI."""
    partner = ROLES["partner"].actor
    for field, value in (("id_card", ID_CARD), ("email", PEOPLE["A"].email),
                         ("wechat_unionid", UNIONID)):
        with pytest.raises(Refused, match=f"may not select customers by {field}"):
            list(world.crm.segments.iter_customers(
                {"field": field, "op": "eq", "value": value}, actor=partner))


def test_sdk_without_an_actor_sees_everything(world: World) -> None:
    crm = world.crm
    for key, cid in world.ids.items():
        assert customer_fields(crm.customers.get(cid).model_dump(mode="json")) \
            == PEOPLE[key].shown("full")
    view = crm.customers.view(world.ids["A"])
    assert [e.title for e in view.timeline] == [SUMMARY_A]
    assert crm.cases.get(world.case_id).description == DESCRIPTION
    assert crm.access.free_text(None, NOTE) == NOTE


def test_an_unknown_role_is_a_usage_error_listing_the_roles(world: World) -> None:
    for acting_as in ("boss:li", "boss", "root:zhang"):
        r = world.cli.invoke("--as", acting_as, "customers", "show", str(world.ids["A"]))
        refused(r, 2, f"unknown role {acting_as.partition(':')[0]!r}", ROLES_LISTED)
    with pytest.raises(ValidationError, match=ROLES_LISTED):
        Actor(staff_id="li", role="boss")


def test_recrm_as_in_the_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    a = str(world.ids["A"])
    monkeypatch.setenv("RECRM_AS", "partner:li")
    doc = world.cli.invoke("customers", "find", "--mobile", "13812345678", "--json").json()
    assert_customer(doc[0], "A", "minimal")
    refused(world.cli.invoke("customers", "duplicates"), 1, "partner")
    # the option wins over the environment
    doc = world.cli.invoke("--as", "sales:zhang", "customers", "show", a, "--json").json()
    assert_customer(doc["customer"], "A", "full")
    monkeypatch.setenv("RECRM_AS", "boss:li")
    refused(world.cli.invoke("customers", "show", a), 2, "unknown role 'boss'", ROLES_LISTED)
    # without a role, the directory's for RECRM_STAFF, else admin
    monkeypatch.delenv("RECRM_AS")
    for staff, how in (("li", "minimal"), ("zhang", "full"), ("nobody", "full")):
        monkeypatch.setenv("RECRM_STAFF", staff)
        doc = world.cli.invoke("customers", "show", a, "--json").json()
        assert_customer(doc["customer"], "A", how)


def test_a_role_the_directory_contradicts_is_refused(world: World) -> None:
    a = str(world.ids["A"])
    for args in (("customers", "show", a, "--json"), ("customers", "find", "--mobile", "138"),
                 ("customers", "export-list", "--all", "--out", str(world.tmp / "x.csv"))):
        refused(world.cli.invoke("--as", "admin:li", *args), 1,
                "staff 'li' is partner in the directory, not admin")
    assert not (world.tmp / "x.csv").exists()
    refused(world.cli.invoke("--as", "sales:wang", "customers", "show", a), 1,
            "staff 'wang' is manager in the directory, not sales")
    # a directory admin may act in any role, to see what it sees
    doc = world.cli.invoke("--as", "partner:root", "customers", "show", a, "--json").json()
    assert_customer(doc["customer"], "A", "minimal")


def test_per_command_actor_sets_only_the_staff_id(world: World) -> None:
    a = str(world.ids["A"])
    for acting_as, staff, name in (("sales", "zhang", "王伟"), ("sales:zhang", "zhao", "王*")):
        r = world.cli.invoke("--as", acting_as, "customers", "stage", a, "visitor", "--project",
                             "XL1", "--actor", staff, "--json")
        assert (r.exit_code, r.json()["name"], r.json()["masked"]) == (0, name, name == "王*")
    refused(world.cli.invoke("--as", "admin", "customers", "update", a, "--persona", "luxury",
                             "--actor", "li"), 1, "staff 'li' is partner in the directory")


def test_consultant_is_the_legacy_name_of_sales(world: World) -> None:
    ids = world.ids
    for legacy in ("consultant", "staff", " Consultant "):
        doc = world.cli.invoke("--as", f"{legacy}:zhang", "customers", "show", str(ids["A"]),
                               "--json").json()
        assert_customer(doc["customer"], "A", "full")
        found = world.cli.invoke("--as", f"{legacy}:zhang", "customers", "find", "--mobile",
                                 "13998765432", "--json").json()
        assert_customer(found[0], "B", "masked")
    actor = Actor(staff_id="zhang", role="consultant")
    assert actor.role == "sales"
    assert world.crm.customers.get(ids["A"], actor=actor).masked is False
    assert world.crm.customers.get(ids["B"], actor=actor).masked is True
    added = world.crm.directory.add_staff({"id": "qian", "name": "钱", "role": "consultant"})
    assert added.role == "sales"
