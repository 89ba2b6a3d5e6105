"""Privacy requests in the core: a person's export, their erasure with the scan that
proves it, what an erased id answers, and retention."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from recrm_core import CRM, Actor, NotFound, Refused
from recrm_core.privacy import ErasureFailed
from recrm_core.tables import CaseRow, InteractionRow
from recrm_core.testing import RecrmCliRunner

ID_CARD = "11010519491231002X"


def person(crm: CRM) -> tuple[int, int]:
    """A person with data in every core table, and a duplicate merged into them."""
    a = crm.customers.add({"name": "王伟", "mobile": "13912345678", "id_card": ID_CARD,
                           "email": "wang.wei@example.com", "project": "XL1",
                           "owner_staff": "zhang"}).customer
    b = crm.customers.add({"name": "王伟伟", "mobile": "13812345678",
                           "email": "ww@example.com"}).customer
    crm.customers.merge(a.id, b.id)
    crm.interactions.log(a.id, {"kind": "call", "summary": "看房 139 1234 5678",
                                "data": {"caller": "13912345678"}})
    crm.customers.set_stage(a.id, "buyer", "XL1", unit="3-1201", amount=2_500_000)
    crm.cases.open({"customer_id": a.id, "category": "repair", "subject": "王伟家漏水",
                    "description": "联系 wang.wei@example.com"})
    crm.consent.grant(a.id, "sms", source="售楼处")
    crm.customers.disclose(a.id, "王伟本人来电 13912345678",
                           actor=Actor(staff_id="boss", role="admin"))
    return a.id, b.id


def test_export_holds_everything_about_the_person(crm: CRM) -> None:
    a, b = person(crm)
    doc = crm.privacy.export(b)  # a merged-away id exports its survivor
    assert doc["customer"]["id"] == a and doc["merged_ids"] == [b]
    assert doc["customer"]["id_card"] == ID_CARD
    assert {i["kind"] for i in doc["identities"]} == {"mobile", "id_card"}
    assert [p["project"] for p in doc["projects"]] == ["XL1"]
    kinds = sorted(i["kind"] for i in doc["interactions"])
    assert kinds == ["call", "contract"]
    [case] = doc["cases"]
    assert case["subject"] == "王伟家漏水" and case["history"][0]["action"] == "open"
    assert doc["consents"][0]["channel"] == "sms"
    assert doc["plugins"] == {} and dt.datetime.fromisoformat(doc["exported_at"])
    json.dumps(doc)  # one JSON document
    [entry] = crm.audit.entries(action="export")
    assert entry.customer_id == a


def test_erasure_leaves_none_of_the_persons_values(crm: CRM) -> None:
    a, b = person(crm)
    report = crm.privacy.erase(a, "PIPL request 2026-001")
    assert report.verified and report.merged_ids == [b] and report.scanned_columns > 20
    steps = {s["table"]: s for s in report.steps}
    assert steps["identities"]["deleted"] == 3
    assert steps["interactions"] == {"source": "core", "table": "interactions", "deleted": 1,
                                     "anonymised": 1, "retained": 0,
                                     "basis": steps["interactions"]["basis"]}
    assert "unit and amount" in steps["interactions"]["basis"]
    # the id answers, and so does the merged one
    for cid in (a, b):
        with pytest.raises(NotFound, match=f"customer {cid} was erased on "):
            crm.customers.get(cid)
    # aggregates survive: the contract's unit and amount, the case, the funnel
    with crm.unit_of_work(readonly=True) as uow:
        contract = uow.session.execute(select(InteractionRow.data, InteractionRow.summary)
                                       .where(InteractionRow.kind == "contract")).one()
        assert contract == ({"stage": "buyer", "unit": "3-1201", "amount": 2_500_000}, None)
        assert uow.session.scalar(select(CaseRow.subject)) == "(erased)"
    assert crm.customers.count() == 0
    # the audit: receipts kept, the person's free text redacted, the erasure recorded
    entries = crm.audit.entries(customer_id=a)
    assert [e.action for e in entries][-1] == "erase"
    disclose = next(e for e in entries if e.action == "disclose")
    assert disclose.reason == "(redacted)"
    assert entries[-1].reason == "PIPL request 2026-001"
    # the same mobile later is a new person, with no link to the old record
    again = crm.customers.add({"mobile": "139 1234 5678"})
    assert again.created and again.customer.id not in (a, b)
    assert again.customer.name is None and again.customer.projects == []


def test_a_dry_run_is_the_plan_and_changes_nothing(crm: CRM) -> None:
    a, _ = person(crm)
    before = crm.privacy.export(a)
    plan = crm.privacy.erase(a, dry_run=True)
    assert plan.dry_run and plan.verified
    assert {s["table"] for s in plan.steps} >= {"identities", "interactions", "cases",
                                                "case_history", "customer_projects",
                                                "consents", "customers", "audit_log"}
    after = crm.privacy.export(a)
    assert after["customer"] == before["customer"]
    assert after["interactions"] == before["interactions"]
    assert crm.audit.entries(action="erase") == []


@pytest.mark.parametrize("spelling", ["介绍朋友 １３９-１２３４-５６７８", "朋友电话139.1234.5678",
                                      "wang.wei@EXAMPLE.com 来过", "证件 110105 19491231 002x",
                                      "短信发至 +8613912345678", "来电 008613912345678"])
def test_another_records_words_naming_the_person_are_redacted(crm: CRM, spelling: str) -> None:
    a, _ = person(crm)
    friend = crm.customers.add({"name": "李娜", "mobile": "13700000000"}).customer
    crm.interactions.log(friend.id, {"kind": "note", "summary": spelling})
    crm.interactions.log(friend.id, {"kind": "note", "summary": "订单 9139123456780 已付"})
    crm.consent.grant(friend.id, "sms", source="朋友 13912345678")
    report = crm.privacy.erase(a)
    steps = {(s["table"], s["basis"]): s for s in report.steps}
    assert steps[("interactions", "other records kept, their words naming the person "
                  "redacted")]["anonymised"] == 1
    summaries = [i.summary for i in crm.interactions.list(friend.id)]
    # the friend's note is redacted, an order number that merely contains the digits is not
    assert sorted(summaries, key=str) == ["(redacted)", "订单 9139123456780 已付"]
    assert crm.consent.current(friend.id)[0].source is None
    assert crm.customers.get(friend.id).name == "李娜"


def test_a_task_or_an_incident_of_others_naming_the_person_is_redacted(crm: CRM) -> None:
    """Follow-up tasks and incidents are the core's free text too: a colleague's task
    for a friend, or an incident shared with other customers' cases, that names the
    person loses those words (before, the scan found them and refused the erasure)."""
    a, _ = person(crm)
    friend = crm.customers.add({"name": "李娜", "mobile": "13700000000",
                                "project": "XL1"}).customer
    due = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    task = {"customer_id": friend.id, "project": "XL1", "kind": "call", "due_at": due,
            "staff": "zhang"}
    kept = crm.tasks.add({**task, "note": "回访介绍人 139 1234 5678"})
    cancelled = crm.tasks.add(task)
    crm.tasks.cancel(cancelled.id, "改约 wang.wei@example.com")
    theirs = crm.cases.open({"customer_id": a, "category": "repair", "subject": "漏水"}).id
    others = crm.cases.open({"customer_id": friend.id, "category": "repair",
                             "subject": "漏水"}).id
    incident = crm.incidents.open({"title": "3号楼漏水 13912345678 报", "project": "XL1",
                                   "description": f"证件 {ID_CARD}"})
    crm.incidents.link(incident.id, [theirs, others])
    crm.incidents.close(incident.id, note="已修复，告知 139-1234-5678")
    assert crm.privacy.erase(a).verified
    assert crm.tasks.get(kept.id).note == "(redacted)"
    assert crm.tasks.get(cancelled.id).cancel_reason == "(redacted)"
    shown = crm.incidents.get(incident.id)
    assert (shown.title, shown.description, shown.resolution) == ("(redacted)",) * 3
    assert crm.customers.get(friend.id).name == "李娜"


def test_a_value_the_core_cannot_redact_rolls_the_erasure_back(crm: CRM) -> None:
    """A table the core does not own (a project's name, a plugin's column) is only
    scanned: a hit rolls everything back, naming the customer, table, column and row."""
    a, _ = person(crm)
    crm.projects.add({"code": "W1", "name": "王伟 13912345678 专属"})
    with pytest.raises(ErasureFailed,
                       match=rf"erasure of customer {a} rolled back: projects\.name \(row \d+\)"
                             " still holds the person's mobile"):
        crm.privacy.erase(a)
    assert crm.customers.get(a).name == "王伟"  # rolled back whole


def test_a_reason_naming_the_person_is_refused(crm: CRM) -> None:
    a, _ = person(crm)
    from recrm_core import InvalidInput

    with pytest.raises(InvalidInput, match="reason: holds the person's own values"):
        crm.privacy.erase(a, "REQ 139-1234-5678")
    assert crm.customers.get(a).name == "王伟"


def test_only_admins_export_or_erase(crm: CRM) -> None:
    a, _ = person(crm)
    for role in ("manager", "sales", "service", "partner", "analyst"):
        actor = Actor(staff_id="x", role=role)
        with pytest.raises(Refused, match="may not export"):
            crm.privacy.export(a, actor=actor)
        with pytest.raises(Refused, match="may not erase"):
            crm.privacy.erase(a, actor=actor)


def test_commands(crm: CRM, cli_runner: RecrmCliRunner, tmp_path: Path) -> None:
    a, _ = person(crm)
    shown = cli_runner.invoke("customers", "export", str(a))
    assert shown.exit_code == 0 and shown.json()["customer"]["name"] == "王伟"
    out = tmp_path / "王伟.json"
    written = cli_runner.invoke("customers", "export", str(a), "--out", str(out))
    assert written.exit_code == 0, written.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["customer"]["id"] == a
    failed = cli_runner.invoke("customers", "export", str(a), "--out",
                               str(tmp_path / "no" / "x.json"))
    assert failed.exit_code == 2 and "cannot write" in failed.stderr
    assert len(crm.audit.entries(action="export")) == 2  # the failed one left no receipt
    plan = cli_runner.invoke("customers", "erase", str(a), "--dry-run", "--json")
    assert plan.exit_code == 0 and plan.json()["dry_run"] is True
    done = cli_runner.invoke("customers", "erase", str(a), "--reason", "request 7")
    assert done.exit_code == 0, done.stderr
    assert "verified: none of the person's values" in done.stderr
    for args in (("customers", "show", str(a)), ("customers", "export", str(a)),
                 ("interactions", "list", str(a)), ("customers", "erase", str(a))):
        r = cli_runner.invoke(*args)
        assert r.exit_code == 1 and r.stderr.startswith(f"error: customer {a} was erased on")
        assert r.stderr.count("\n") == 1


def test_export_out_dash_is_standard_output(crm: CRM, cli_runner: RecrmCliRunner,
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``--out -`` is standard output, as for most tools (found by probe10: it wrote the
    person's data to a file named ``-`` in the working directory)."""
    monkeypatch.chdir(tmp_path)
    a, _ = person(crm)
    shown = cli_runner.invoke("customers", "export", str(a), "--out", "-")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["customer"]["name"] == "王伟"
    assert not (tmp_path / "-").exists()


@pytest.mark.recrm_settings(privacy={"retention_months": 12})
def test_retention_sweeps_idle_prospects(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    old = crm.customers.add({"name": "老客", "mobile": "13600000001"}).customer
    buyer = crm.customers.add({"name": "买家", "mobile": "13600000002"}).customer
    crm.customers.set_stage(buyer.id, "buyer", "XL1")
    fresh = crm.customers.add({"name": "新客", "mobile": "13600000003"}).customer
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    crm.interactions.log(fresh.id, {"kind": "call", "occurred_at": later})
    assert crm.privacy.due_for_retention(later) == [old.id]
    plan = crm.privacy.sweep(dry_run=True, now=later)
    assert [r.customer_id for r in plan.erased] == [old.id] and plan.failed == {}
    assert crm.customers.get(old.id).name == "老客"
    [report] = crm.privacy.sweep(now=later).erased
    assert report.customer_id == old.id
    [entry] = crm.audit.entries(action="erase")
    assert entry.reason == "retention: no interaction for 12 months"
    assert crm.customers.get(buyer.id).name == "买家"


@pytest.mark.recrm_settings(privacy={"retention_months": 12})
def test_a_sweep_goes_on_past_one_that_cannot_be_erased(
        crm: CRM, cli_runner: RecrmCliRunner) -> None:
    stuck = crm.customers.add({"name": "甲", "mobile": "13600000001"}).customer
    other = crm.customers.add({"name": "乙", "mobile": "13600000002"}).customer
    crm.projects.add({"code": "P1", "name": "甲的项目 13600000001"})  # not the core's text
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    result = crm.privacy.sweep(now=later)
    assert [r.customer_id for r in result.erased] == [other.id]
    assert list(result.failed) == [stuck.id] and "projects.name" in result.failed[stuck.id]
    assert crm.customers.get(stuck.id).name == "甲"


def test_retention_is_off_by_default(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    crm.customers.add({"mobile": "13600000001"})
    assert crm.privacy.due_for_retention() == []
    r = cli_runner.invoke("privacy", "sweep")
    assert r.exit_code == 2 and "retention is off" in r.stderr


def test_hook_recrm_customer_export(crm: CRM, register_plugin) -> None:
    from recrm_core import hookimpl

    class Notes:
        @hookimpl
        def recrm_customer_export(self, uow, customer):
            return {"note": f"prefers calls to {customer.mobiles[0]}"} if customer.mobiles \
                else None

    register_plugin(Notes(), name="notes")
    a, _ = person(crm)
    assert crm.privacy.export(a)["plugins"] == {"notes": {"note": "prefers calls to "
                                                                  "+8613912345678"}}


def test_hook_recrm_customer_erase(crm: CRM, register_plugin) -> None:
    """A plugin's table is scanned like the core's: an erase hook that leaves the
    person's mobile behind fails the erasure; one that deletes it lets it through."""
    from sqlalchemy import Column, Integer, String, Table, delete, insert

    from recrm_core import Base, ErasureStep, hookimpl

    callbacks = Table("callbacks_test", Base.metadata, Column("id", Integer, primary_key=True),
                      Column("customer_id", Integer), Column("number", String(32)))

    class Callbacks:
        careful = False

        @hookimpl
        def recrm_customer_erase(self, uow, customer, merged_ids):
            if not self.careful:
                return [ErasureStep(table="callbacks_test")]  # forgets its rows
            gone = uow.session.execute(delete(callbacks).where(
                callbacks.c.customer_id.in_([customer.id, *merged_ids])))
            return [ErasureStep(table="callbacks_test", deleted=gone.rowcount)]

    plugin = Callbacks()
    try:
        register_plugin(plugin, name="callbacks")
        a, _ = person(crm)
        with crm.unit_of_work() as uow:
            uow.session.execute(insert(callbacks).values(customer_id=a, number="139 1234 5678"))
        with pytest.raises(ErasureFailed, match=r"callbacks_test\.number \(row 1\)"):
            crm.privacy.erase(a)
        plugin.careful = True
        report = crm.privacy.erase(a)
        assert {"source": "callbacks", "table": "callbacks_test", "deleted": 1,
                "anonymised": 0, "retained": 0, "basis": None} in report.steps
    finally:
        Base.metadata.remove(callbacks)


def test_a_plugin_installed_but_not_enabled_holding_rows_refuses_the_request(
    crm_factory: Any,
) -> None:
    """Its tables are outside this CRM's hooks and scan: the export would miss them
    and the erasure leave them (before: the erasure succeeded and a member's note
    holding the person's mobile stayed)."""
    from recrm_membership import service as club

    with_club = crm_factory(plugins=["membership"])
    cid = with_club.customers.add({"name": "王伟", "mobile": "13912345678"}).customer.id
    other = with_club.customers.add({"mobile": "13800000001"}).customer.id
    club(with_club).enroll(cid, note="本人电话 13912345678")
    without = crm_factory(plugins=[])
    for request in (lambda: without.privacy.export(other),
                    lambda: without.privacy.erase(other, dry_run=True),
                    lambda: without.privacy.erase(cid)):
        with pytest.raises(Refused, match=r"plugin 'membership' is installed but not enabled"
                           r" and its tables \(.*membership_members.*\) hold data"):
            request()
    assert without.customers.get(cid).name == "王伟"  # nothing was erased
    # With the plugin enabled the erasure covers its rows.
    assert with_club.privacy.erase(cid).customer_id == cid


def test_a_plugin_not_enabled_without_rows_does_not_stop_a_request(crm_factory: Any) -> None:
    with_club = crm_factory(plugins=["membership"])
    cid = with_club.customers.add({"name": "王伟", "mobile": "13912345678"}).customer.id
    without = crm_factory(plugins=[])
    assert without.privacy.export(cid)["customer"]["id"] == cid
    assert without.privacy.erase(cid).customer_id == cid
