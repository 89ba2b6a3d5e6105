"""The audit log: core actions recorded without personal data, plugin actions
registered by hook, list filters, prune refusing anything younger than retention."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from recrm_core import CRM, Actor, InvalidInput, Refused, hookimpl
from recrm_core.testing import RecrmCliRunner

ADMIN = Actor(staff_id="boss", role="admin", channel="cli")


def test_hook_recrm_register_audit_actions(crm: CRM, register_plugin) -> None:
    class Vault:
        @hookimpl
        def recrm_register_audit_actions(self, register):
            register("vault.open", "a vault was opened")

    # Before the plugin: the name is refused, so a typo never reaches the log.
    with pytest.raises(InvalidInput, match=r"unknown audit action 'vault\.open'"):
        crm.audit.append("vault.open")
    register_plugin(Vault())
    assert crm.audit.actions()["vault.open"] == "a vault was opened"
    c = crm.customers.add({"mobile": "13812345678"}).customer
    crm.audit.append("vault.open", customer_id=c.id, details={"n": 1}, actor=ADMIN)
    [entry] = crm.audit.entries(action="vault.open")
    assert (entry.customer_id, entry.actor_staff, entry.actor_role, entry.channel) == (
        c.id, "boss", "admin", "cli")
    assert entry.details == {"n": 1}


def test_a_plugin_registering_a_core_action_is_named(crm: CRM, register_plugin) -> None:
    class Clash:
        @hookimpl
        def recrm_register_audit_actions(self, register):
            register("merge", "mine")

    register_plugin(Clash(), name="clash")
    from recrm_core import PluginError

    with pytest.raises(PluginError, match="clash"):
        crm.audit.actions()


def test_core_actions_are_recorded_without_personal_data(crm: CRM, tmp_path) -> None:
    a = crm.customers.add({"name": "王伟", "mobile": "13812345678", "project": "XL2",
                           "owner_staff": "zhang"}).customer
    b = crm.customers.add({"name": "王伟", "mobile": "13912345678"}).customer
    crm.customers.merge(a.id, b.id, actor=ADMIN)
    crm.customers.reassign("zhang", "li", actor=ADMIN)
    crm.consent.grant(a.id, "sms", actor=Actor(staff_id="kf1", role="service"))
    csv = tmp_path / "in.csv"
    csv.write_text("name,mobile\n李娜,13700000001\n,bad\n", encoding="utf-8")
    crm.importer.import_file(csv)
    entries = crm.audit.entries()
    actions = [e.action for e in entries]
    assert actions == ["merge", "reassign", "consent", "import"]
    merge, reassign, consent, imported = entries
    assert merge.customer_id == a.id and merge.details == {"duplicate_id": b.id}
    assert reassign.details["from_staff"] == "zhang" and reassign.details["links"] == 1
    assert reassign.details["customers"] == [a.id]
    assert consent.actor_role == "service" and consent.channel == "sdk"
    assert consent.details["channel"] == "sms" and consent.details["granted"] is True
    assert imported.actor_role == "sdk" and imported.actor_staff is None
    assert imported.details == {"outcome": "completed", "rows": 2, "created": 1, "merged": 0,
                                "rejected": 1, "format": "csv"}
    dumped = json.dumps([e.model_dump(mode="json") for e in entries], ensure_ascii=False)
    for personal in ("13812345678", "13700000001", "王伟", "李娜", "in.csv"):
        assert personal not in dumped


def test_list_filters(crm: CRM) -> None:
    c = crm.customers.add({"mobile": "13812345678"}).customer
    d = crm.customers.add({"mobile": "13912345678"}).customer
    crm.consent.grant(c.id, "sms", actor=Actor(staff_id="a1", role="sales"))
    crm.consent.grant(d.id, "email", actor=Actor(staff_id="a2", role="sales"))
    assert [e.customer_id for e in crm.audit.entries(customer_id=d.id)] == [d.id]
    assert [e.actor_staff for e in crm.audit.entries(actor_staff="a1")] == ["a1"]
    assert crm.audit.entries(action="merge") == []
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    assert len(crm.audit.entries(until=later)) == 2
    assert crm.audit.entries(since=later) == []


def test_prune_refuses_entries_younger_than_retention(crm: CRM) -> None:
    c = crm.customers.add({"mobile": "13812345678"}).customer
    crm.consent.grant(c.id, "sms")
    limit = crm.audit.oldest_prunable()
    assert limit.year == dt.date.today().year - 3 or limit.year == dt.date.today().year - 4
    with pytest.raises(Refused, match="kept 3 years"):
        crm.audit.prune(limit + dt.timedelta(days=1))
    assert crm.audit.prune(limit, actor=ADMIN) == 0
    assert [e.action for e in crm.audit.entries()] == ["consent", "prune"]
    assert crm.audit.entries(action="prune")[0].details["deleted"] == 0


@pytest.mark.recrm_settings(audit_retention_years=5)
def test_retention_is_a_setting(crm: CRM) -> None:
    assert crm.audit.oldest_prunable(dt.date(2026, 3, 1)) == dt.date(2021, 3, 1)
    assert crm.audit.oldest_prunable(dt.date(2028, 2, 29)) == dt.date(2023, 2, 28)


def test_retention_below_three_years_is_a_configuration_error(crm_factory) -> None:
    from recrm_core import ConfigError

    with pytest.raises(ConfigError, match="audit_retention_years"):
        crm_factory(settings={"audit_retention_years": 2})


def test_audit_commands(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = crm.customers.add({"mobile": "13812345678"}).customer
    crm.consent.grant(c.id, "sms", actor=Actor(staff_id="a1", role="sales"))
    listed = cli_runner.invoke("audit", "list", "--customer", str(c.id), "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [e["action"] for e in listed.json()] == ["consent"]
    today = dt.datetime.now(crm.config.zone).date().isoformat()
    assert len(cli_runner.invoke("audit", "list", "--from", today, "--to", today,
                                 "--json").json()) == 1
    assert cli_runner.invoke("audit", "list", "--from", "2000-01-01", "--to", "2000-01-02",
                             "--json").json() == []
    bad = cli_runner.invoke("audit", "list", "--action", "nope")
    assert bad.exit_code == 2 and "unknown action 'nope'" in bad.stderr
    refused = cli_runner.invoke("audit", "prune", "--before", today)
    assert refused.exit_code == 1 and "kept 3 years" in refused.stderr
    assert "Traceback" not in refused.stderr
    # only admins read the log
    denied = cli_runner.invoke("--as", "analyst:ana", "audit", "list")
    assert denied.exit_code == 1 and "role analyst may not read the audit log" in denied.stderr
    pruned = cli_runner.invoke("audit", "prune", "--before", "2001-01-01", "--json")
    assert pruned.exit_code == 0 and pruned.json() == {"deleted": 0}
