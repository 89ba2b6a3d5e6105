"""Rules found by trying to get round the masking: consent records, partial mobiles and
names in a partner's or an analyst's segments, writes by read-only roles, a misspelt --as, and the
values at the edges of the audit commands."""

from __future__ import annotations

import json

import pytest

from recrm_core import CRM, Actor, Refused
from recrm_core.testing import RecrmCliRunner

PARTNER = Actor(staff_id="li", role="partner")
ANALYST = Actor(staff_id="ana", role="analyst")


@pytest.fixture
def customer(crm: CRM) -> int:
    c = crm.customers.add({"name": "王伟", "mobile": "13812345678", "project": "XL1"}).customer
    crm.consent.grant(c.id, "email", purpose="surveys", source="王伟本人 13812345678")
    return c.id


def test_consent_records_keep_their_free_text_from_partners_and_analysts(
        crm: CRM, cli_runner: RecrmCliRunner, customer: int) -> None:
    with pytest.raises(Refused, match="role partner may not see consent records"):
        crm.consent.current(customer, actor=PARTNER)
    [record] = crm.consent.current(customer, actor=ANALYST)
    assert (record.channel, record.granted, record.source) == ("email", True, "(hidden)")
    assert crm.consent.current(customer)[0].source == "王伟本人 13812345678"
    shown = cli_runner.invoke("--as", "analyst:ana", "consent", "show", str(customer), "--json")
    assert shown.exit_code == 0 and "13812345678" not in shown.stdout
    refused = cli_runner.invoke("--as", "partner:li", "consent", "show", str(customer))
    assert refused.exit_code == 1 and refused.stdout == ""
    # the audit keeps the fact, not the free text
    [entry] = crm.audit.entries(action="consent")
    assert entry.details == {"channel": "email", "purpose": "surveys", "granted": True}


#: (condition, the partner's refusal, the analyst's: None when an analyst may count by it)
@pytest.mark.parametrize(("condition", "refusal", "analyst_refusal"), [
    ({"field": "mobile", "op": "contains", "value": "13812"}, "one whole mobile only",
     "role analyst may select by one whole mobile only"),
    # a list of candidates, halved request by request, finds the masked digits
    ({"field": "mobile", "op": "in", "value": ["13812345678", "13812345679"]},
     "one whole mobile only", "role analyst may select by one whole mobile only"),
    ({"field": "mobile", "op": "ne", "value": "13812345678"}, "one whole mobile only",
     "role analyst may select by one whole mobile only"),
    ({"field": "name", "op": "eq", "value": "王伟"}, "by name", None),
    ({"field": "name", "op": "contains", "value": "王"}, "by name",
     "role analyst may select by one whole name only"),
    ({"field": "external_id", "op": "eq", "value": "E1"}, "by external_id", None),
    ({"any": [{"field": "stage", "op": "eq", "value": "owner"},
              {"all": [{"field": "mobile", "op": "contains", "value": "5678"}]}]},
     "one whole mobile only", "role analyst may select by one whole mobile only"),
])
def test_a_partner_may_not_uncover_masked_values_by_segment(
        crm: CRM, cli_runner: RecrmCliRunner, customer: int, condition: dict[str, object],
        refusal: str, analyst_refusal: str | None) -> None:
    with pytest.raises(Refused, match=refusal):
        crm.segments.count(condition, actor=PARTNER)
    with pytest.raises(Refused, match=refusal):
        list(crm.segments.iter_customers(condition, actor=PARTNER))
    r = cli_runner.invoke("--as", "partner:li", "customers", "count", "--segment",
                          json.dumps(condition))
    assert r.exit_code == 1 and refusal in r.stderr
    # an analyst counts by a whole value it holds, as the SDK's own code does, but never
    # by a part of a masked one (which spells it out, digit by digit)
    if analyst_refusal is None:
        assert crm.segments.count(condition, actor=ANALYST) == crm.segments.count(condition)
    else:
        with pytest.raises(Refused, match=analyst_refusal):
            crm.segments.count(condition, actor=ANALYST)


@pytest.mark.parametrize(("field", "value"), [
    ("mobile", "1381234567"), ("name", "王"), ("email", "wei@"), ("birth_date", "1949-12-31")])
def test_an_analyst_never_uncovers_a_masked_value_by_segment(
        crm: CRM, cli_runner: RecrmCliRunner, customer: int, field: str, value: str) -> None:
    """The analyst sees 王* and 138****5678: counting ``mobile contains 1381234`` then
    ``13812345`` ... (or a name, an email, a birth date by ranges) would read them in
    full. A whole value is counted: the analyst held it already."""
    crm.customers.update(customer, {"email": "wang.wei@example.com",
                                    "birth_date": "1949-12-31"})
    op = "lte" if field == "birth_date" else "contains"
    part = {"field": field, "op": op, "value": value}
    with pytest.raises(Refused, match=f"role analyst may select by one whole {field} only"):
        crm.segments.count(part, actor=ANALYST)
    with pytest.raises(Refused, match=f"one whole {field} only"):
        list(crm.segments.iter_customers(part, actor=ANALYST))
    r = cli_runner.invoke("--as", "analyst:ana", "customers", "count", "--segment",
                          json.dumps(part))
    assert r.exit_code == 1 and f"one whole {field} only" in r.stderr
    assert crm.segments.count(part) == 1  # the integrator's own code counts it
    whole = {"field": "mobile", "op": "eq", "value": "13812345678"}
    assert crm.segments.count(whole, actor=ANALYST) == 1


def test_a_partner_may_count_by_a_whole_mobile(crm: CRM, customer: int) -> None:
    whole = {"field": "mobile", "op": "eq", "value": "138 1234 5678"}
    assert crm.segments.count(whole, actor=PARTNER) == 1


@pytest.mark.parametrize("actor", [PARTNER, ANALYST], ids=["partner", "analyst"])
def test_read_only_roles_change_nothing(crm: CRM, customer: int, actor: Actor) -> None:
    other = crm.customers.add({"mobile": "13912345678"}).customer.id
    case = crm.cases.open({"customer_id": customer, "category": "repair", "subject": "x"})
    attempts = [
        lambda: crm.customers.add({"mobile": "13100000000", "id_card": "11010519491231002X"},
                                  actor=actor),
        lambda: crm.customers.update(customer, {"name": "x"}, actor=actor),
        lambda: crm.customers.set_stage(customer, "visitor", "XL1", actor=actor),
        lambda: crm.customers.merge(customer, other, actor=actor),
        lambda: crm.customers.reassign("a", "b", actor=actor),
        lambda: crm.interactions.log(customer, {"kind": "call"}, actor=actor),
        lambda: crm.cases.open({"customer_id": customer, "category": "x", "subject": "y"},
                               actor=actor),
        lambda: crm.cases.resolve(case.id, actor=actor),
        lambda: crm.cases.transfer(case.id, department="D", actor=actor),
        lambda: crm.cases.escalate(case.id, actor=actor),
        lambda: crm.consent.grant(customer, "sms", actor=actor),
        lambda: crm.projects.add({"code": "NEW", "name": "新"}, actor=actor),
        lambda: crm.importer.import_rows([{"mobile": "13700000000"}], actor=actor),
    ]
    for attempt in attempts:
        with pytest.raises(Refused, match=f"role {actor.role} may not change data"):
            attempt()
    assert crm.customers.count() == 2
    assert crm.cases.get(case.id).status == "open"


def test_a_misspelt_role_is_refused_by_every_command(
        crm: CRM, cli_runner: RecrmCliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    for args in (("--as", "boss", "customers", "count"), ("--as", "boss:li", "projects", "list"),
                 ("--as", "", "customers", "count")):
        r = cli_runner.invoke(*args)
        assert r.exit_code == 2 and "roles: admin, manager, sales" in r.stderr, args
    monkeypatch.setenv("RECRM_AS", "Boss")
    r = cli_runner.invoke("departments", "list")
    assert r.exit_code == 2 and "unknown role 'Boss'" in r.stderr


@pytest.mark.parametrize("args", [
    ("audit", "prune", "--before", "0001-01-01"),
    ("audit", "list", "--from", "0001-01-01"),
    ("audit", "list", "--to", "9999-12-31"),
    ("audit", "list", "--customer", "99999999999999999999999"),
    ("audit", "list", "--limit", "0"),
    ("customers", "duplicates", "--limit", "99999999999999999999999"),
])
def test_values_at_the_edges_are_usage_errors(cli_runner: RecrmCliRunner,
                                              args: tuple[str, ...]) -> None:
    r = cli_runner.invoke(*args)
    assert (r.exit_code, r.stdout) == (2, ""), r.stderr
    assert r.stderr.count("\n") == 1 and "internal error" not in r.stderr
