"""One test per core hook, each showing a plugin changing what recrm does.

``tests/test_docs.py`` fails when a hook in ``recrm_core.hooks.specs`` has no
``test_hook_<name>`` function; these are the ones for the configuration,
customer, attribution, interaction, timeline and message hooks.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Integer, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from recrm_core import (
    CRM,
    Base,
    ConfigError,
    Customer,
    DeliveryResult,
    Interaction,
    Message,
    PluginError,
    StageChange,
    TimelineEntry,
    UnitOfWork,
    hookimpl,
)
from recrm_core.cli import pass_crm
from recrm_core.cli.output import emit_json
from recrm_core.testing import HookRecorder, RecrmCliRunner

CrmFactory = Callable[..., CRM]
Register = Callable[..., str]


class HookLogRow(Base):
    """A plugin-owned table, as a plugin would declare it (prefixed with its name)."""

    __tablename__ = "hooktest_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    event: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(200))


def log_rows(crm: CRM) -> list[tuple[int, str, str | None]]:
    with crm.unit_of_work() as uow:
        rows = uow.session.execute(
            select(HookLogRow.customer_id, HookLogRow.event, HookLogRow.detail)
            .order_by(HookLogRow.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def write_log(uow: UnitOfWork, customer_id: int, event: str, detail: str | None = None) -> None:
    uow.session.add(HookLogRow(customer_id=customer_id, event=event, detail=detail))


# -- configuration and start-up ---------------------------------------------------------


class SmsQuota(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sender: str = "XL"
    daily_limit: int = Field(default=100, ge=1)


class SmsQuotaPlugin:
    name = "smsquota"

    @hookimpl
    def recrm_register_settings(self, register: Callable[[str, type[BaseModel]], None]) -> None:
        register("smsquota", SmsQuota)


def test_hook_recrm_register_settings(crm_factory: CrmFactory, tmp_path: Path) -> None:
    crm = crm_factory(plugins=[SmsQuotaPlugin()], settings={"smsquota": {"daily_limit": 5}})
    assert crm.settings_for("smsquota") == SmsQuota(sender="XL", daily_limit=5)
    assert crm_factory(plugins=[SmsQuotaPlugin()]).settings_for("smsquota") == SmsQuota()

    config = tmp_path / "recrm.toml"
    config.write_text('[smsquota]\nsender = "星珑"\ndaily_limit = 7\n', encoding="utf-8")
    from_file = crm_factory(plugins=[SmsQuotaPlugin()], config_path=config)
    assert from_file.settings_for("smsquota") == SmsQuota(sender="星珑", daily_limit=7)

    with pytest.raises(ConfigError, match=r"\[smsquota\] daily_limit: .*greater than or equal"):
        crm_factory(plugins=[SmsQuotaPlugin()], settings={"smsquota": {"daily_limit": 0}})
    with pytest.raises(ConfigError, match=r"\[smsquota\] dialy_limit"):
        crm_factory(plugins=[SmsQuotaPlugin()], settings={"smsquota": {"dialy_limit": 5}})
    # Without the plugin nobody declared the section.
    with pytest.raises(ConfigError, match=r"no settings registered for \[smsquota\]"):
        crm_factory().settings_for("smsquota")


def test_hook_recrm_startup(crm_factory: CrmFactory) -> None:
    crm_factory().projects.ensure("XL2", "星珑二期")

    class ProjectCache:
        name = "projectcache"

        def __init__(self) -> None:
            self.names: dict[str, str] = {}

        @hookimpl
        def recrm_startup(self, crm: CRM) -> None:
            # Services are ready when startup fires: warm a cache from the database.
            self.names = {p.code: p.name for p in crm.projects.list()}

    cache = ProjectCache()
    crm_factory(plugins=[cache])
    assert cache.names == {"XL2": "星珑二期"}

    class NeedsGateway:
        name = "gateway"

        @hookimpl
        def recrm_startup(self) -> None:
            raise RuntimeError("SMS gateway key missing")

    with pytest.raises(PluginError, match="SMS gateway key missing") as failed:
        crm_factory(plugins=[NeedsGateway()])
    assert (failed.value.plugin, failed.value.hook) == ("gateway", "recrm_startup")


def test_hook_recrm_register_commands(
    crm: CRM, crm_factory: CrmFactory, register_plugin: Register, cli_runner: RecrmCliRunner
) -> None:
    class Greeter:
        @hookimpl
        def recrm_register_commands(self, cli: click.Group) -> None:
            @cli.command("greet")
            @click.argument("customer_id", type=int)
            @click.option("--json", "as_json", is_flag=True)
            @pass_crm
            def greet(crm: CRM, customer_id: int, as_json: bool) -> None:
                """Greet a customer by name."""
                customer = crm.customers.get(customer_id)
                emit_json({"greeting": f"您好，{customer.name}"})

    c = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer
    without = RecrmCliRunner(crm_factory()).invoke("greet", str(c.id))
    assert without.exit_code == 2 and "No such command" in without.stderr

    register_plugin(Greeter())
    result = cli_runner.invoke("greet", str(c.id), "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json() == {"greeting": "您好，王伟"}
    assert "greet" in cli_runner.invoke("--help").stdout
    # Core errors raised inside a plugin command keep the CLI's exit codes.
    missing = cli_runner.invoke("greet", "999")
    assert missing.exit_code == 1
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr


# -- customers ----------------------------------------------------------------------------


def test_hook_recrm_customer_created(crm: CRM, register_plugin: Register) -> None:
    class WelcomeSms:
        name = "welcome"

        @hookimpl
        def recrm_customer_created(self, uow: UnitOfWork, customer: Customer) -> None:
            # Both rows join the add's transaction: a core row written through a
            # service's *_in method, and a row of the plugin's own table.
            uow.crm.interactions.log_in(
                uow, customer.id, kind="sms", channel="sms", summary="欢迎关注星珑二期"
            )
            write_log(uow, customer.id, "welcome", customer.mobiles[0])

    register_plugin(WelcomeSms())
    c = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer
    interactions = crm.interactions.list(c.id)
    assert [(i.kind, i.summary) for i in interactions] == [("sms", "欢迎关注星珑二期")]
    assert log_rows(crm) == [(c.id, "welcome", "+8613812345678")]
    # A match is not a creation: nothing more is written.
    crm.customers.add({"mobile": "138 1234 5678"})
    assert log_rows(crm) == [(c.id, "welcome", "+8613812345678")]


def test_hook_recrm_customer_updated(crm: CRM, register_plugin: Register) -> None:
    class Audit:
        @hookimpl
        def recrm_customer_updated(
            self, uow: UnitOfWork, customer: Customer, changes: dict[str, Any]
        ) -> None:
            for field_name, (old, new) in sorted(changes.items()):
                write_log(uow, customer.id, f"changed:{field_name}", f"{old} -> {new}")

    c = crm.customers.add({"name": "王先生", "mobile": "13812345678"}).customer
    register_plugin(Audit())
    crm.customers.update(c.id, {"name": "王伟", "add_mobiles": ["13912345678"]})
    assert log_rows(crm) == [
        (c.id, "changed:mobiles", "['+8613812345678'] -> ['+8613812345678', '+8613912345678']"),
        (c.id, "changed:name", "王先生 -> 王伟"),
    ]
    crm.customers.add({"mobile": "13812345678", "email": "WW@example.com"})  # fills email
    assert log_rows(crm)[-1] == (c.id, "changed:email", "None -> ww@example.com")
    crm.customers.add({"name": "王伟", "mobile": "13812345678"})  # changes nothing
    assert len(log_rows(crm)) == 3


def test_hook_recrm_customer_merged(crm: CRM, register_plugin: Register) -> None:
    class Notes:
        @hookimpl
        def recrm_customer_merged(
            self, uow: UnitOfWork, survivor: Customer, duplicate_id: int
        ) -> None:
            uow.session.execute(
                update(HookLogRow)
                .where(HookLogRow.customer_id == duplicate_id)
                .values(customer_id=survivor.id)
            )
            write_log(uow, survivor.id, "merged", str(duplicate_id))

    register_plugin(Notes())
    a = crm.customers.add({"mobile": "13812345678"}).customer
    b = crm.customers.add({"mobile": "13912345678"}).customer
    with crm.unit_of_work() as uow:
        write_log(uow, a.id, "note", "prefers high floors")
        write_log(uow, b.id, "note", "asked about schools")
    survivor = crm.customers.merge(a.id, b.id)
    assert survivor.mobiles == ["+8613812345678", "+8613912345678"]
    assert log_rows(crm) == [
        (a.id, "note", "prefers high floors"),
        (a.id, "note", "asked about schools"),
        (a.id, "merged", str(b.id)),
    ]


def test_hook_recrm_stage_changed(
    crm: CRM, register_plugin: Register, hook_recorder: HookRecorder
) -> None:
    class Commission:
        @hookimpl
        def recrm_stage_changed(
            self, uow: UnitOfWork, customer: Customer, change: StageChange
        ) -> None:
            if change.new_stage == "buyer" and change.amount is not None:
                detail = f"{change.project}/{change.unit}: {change.amount // 100}"
                write_log(uow, customer.id, "commission", detail)
            if change.forced:
                write_log(uow, customer.id, "forced", f"{change.old_stage}->{change.new_stage}")

    register_plugin(Commission())
    c = crm.customers.add({"mobile": "13812345678", "project": "XL2"}).customer
    crm.customers.set_stage(c.id, "visitor", "XL2")
    assert log_rows(crm) == []
    crm.customers.set_stage(c.id, "buyer", "XL2", unit="3-1201", amount=2_500_000)
    crm.customers.set_stage(c.id, "visitor", "XL2", force=True)
    assert log_rows(crm) == [
        (c.id, "commission", "XL2/3-1201: 25000"),
        (c.id, "forced", "buyer->visitor"),
    ]
    # The contract is also an interaction, announced through its own hook.
    changes = [call.kwargs["change"] for call in hook_recorder.named("recrm_stage_changed")]
    assert [(ch.old_stage, ch.new_stage) for ch in changes] == [
        ("prospect", "visitor"), ("visitor", "buyer"), ("buyer", "visitor"),
    ]
    [contract] = [call.kwargs["interaction"] for call in
                  hook_recorder.named("recrm_interaction_logged")]
    assert (contract.kind, contract.id) == ("contract", changes[1].interaction_id)


# -- attribution --------------------------------------------------------------------------


@pytest.mark.recrm_plugins("membership")
def test_hook_recrm_withhold_referral_reward(
    crm: CRM, register_plugin: Register, cli_runner: RecrmCliRunner
) -> None:
    from recrm_membership import service as membership

    class AgencyFirst:
        """A channels plugin with ``referral_vs_agency = "agency"``: a customer an
        agency registered at the project earns the agency its commission, not the
        referrer a reward."""

        name = "agencyfirst"

        def __init__(self) -> None:
            self.registrations: dict[tuple[int, str], str] = {}

        @hookimpl
        def recrm_withhold_referral_reward(
            self, uow: UnitOfWork, customer: Customer, project: str, referrer_id: int
        ) -> str | None:
            write_log(uow, customer.id, "asked", f"{project} by {referrer_id}")
            agency = self.registrations.get((customer.id, project))
            if agency is None:
                return None
            return f"registered by agency {agency} (referral_vs_agency = agency)"

    class Indifferent:
        @hookimpl
        def recrm_withhold_referral_reward(self) -> str | None:
            return None

    agencies = AgencyFirst()
    register_plugin(agencies)
    register_plugin(Indifferent())
    club = membership(crm)
    referrer = crm.customers.add({"mobile": "13812345678", "name": "王伟"}).customer
    crm.customers.set_stage(referrer.id, "buyer", "XL2", unit="1-1-101", amount=3_000_000)
    crm.customers.set_stage(referrer.id, "owner", "XL2", unit="1-1-101")  # enrolled
    theirs = crm.customers.add({"mobile": "13912345678", "project": "XL2"}).customer
    ours = crm.customers.add({"mobile": "13712345678", "project": "XL2"}).customer
    agencies.registrations[(theirs.id, "XL2")] = "链家"
    club.refer(referrer.id, theirs.id, "XL2")
    club.refer(referrer.id, ours.id, "XL2")

    crm.customers.set_stage(theirs.id, "buyer", "XL2", unit="2-1-1801", amount=4_000_000)
    why = "reward withheld: registered by agency 链家 (referral_vs_agency = agency) (agencyfirst)"
    view = club.show(referrer.id)
    assert [e for e in view.ledger if e.kind == "referral"] == []
    assert [(r.referred_id, r.status, r.reward_points, r.note) for r in view.referrals_made] \
        == [(theirs.id, "converted", 0, why), (ours.id, "pending", 0, None)]
    # Asked once, in the stage change's transaction, with the referral's details.
    assert log_rows(crm) == [(theirs.id, "asked", f"XL2 by {referrer.id}")]

    crm.customers.set_stage(ours.id, "buyer", "XL2", unit="2-1-1802", amount=4_000_000)
    view = club.show(referrer.id)
    assert [(e.kind, e.points) for e in view.ledger if e.kind == "referral"] \
        == [("referral", 500)]
    assert [(r.referred_id, r.reward_points, r.note) for r in view.referrals_made] \
        == [(theirs.id, 0, why), (ours.id, 500, None)]
    assert club.balance(referrer.id).balance == 500
    # The reason shows in `recrm member show` and in the referrer's data export.
    shown = cli_runner.invoke("member", "show", str(referrer.id))
    assert shown.exit_code == 0, shown.stderr
    assert f"referred customer {theirs.id} for XL2 (converted): {why}" in shown.stdout
    exported = crm.privacy.export(referrer.id)["plugins"]["membership"]["referrals_made"]
    assert [(r["reward_points"], r["note"]) for r in exported] == [(0, why), (500, None)]


@pytest.mark.recrm_plugins("membership")
def test_hook_recrm_withhold_referral_reward_answer_must_be_a_reason(
    crm: CRM, register_plugin: Register
) -> None:
    from recrm_membership import service as membership

    class Confused:
        @hookimpl
        def recrm_withhold_referral_reward(self) -> object:
            return True

    register_plugin(Confused())
    referrer = crm.customers.add({"mobile": "13812345678"}).customer
    crm.customers.set_stage(referrer.id, "owner", "XL2", unit="1-1-101")
    friend = crm.customers.add({"mobile": "13912345678", "project": "XL2"}).customer
    membership(crm).refer(referrer.id, friend.id, "XL2")
    with pytest.raises(PluginError, match="'Confused' failed in recrm_withhold_referral_reward"):
        crm.customers.set_stage(friend.id, "buyer", "XL2", unit="2-1-1801")
    # The whole stage change rolled back: still a pending referral, no contract.
    assert membership(crm).referrals()[0].status == "pending"
    assert crm.customers.get(friend.id).stage == "prospect"


# -- timeline -----------------------------------------------------------------------------


def test_hook_recrm_interaction_logged(crm: CRM, register_plugin: Register) -> None:
    class VisitDesk:
        name = "visitdesk"

        @hookimpl
        def recrm_interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
            if interaction.kind != "visit":
                return
            if interaction.staff is None:
                # Raising refuses the interaction: the whole log() rolls back.
                raise ValueError("a visit needs the consultant who received it")
            write_log(uow, interaction.customer_id, "visit", interaction.staff)

    register_plugin(VisitDesk())
    c = crm.customers.add({"mobile": "13812345678"}).customer
    with pytest.raises(PluginError, match=r"visitdesk.*needs the consultant") as refused:
        crm.interactions.log(c.id, {"kind": "visit", "project": "XL2"})
    assert refused.value.hook == "recrm_interaction_logged"
    assert crm.interactions.list(c.id) == []
    crm.interactions.log(c.id, {"kind": "visit", "project": "XL2", "staff": "zhang"})
    crm.interactions.log(c.id, {"kind": "call"})
    assert [i.kind for i in crm.interactions.list(c.id)] == ["call", "visit"]
    assert log_rows(crm) == [(c.id, "visit", "zhang")]


def test_hook_recrm_timeline(
    crm: CRM, register_plugin: Register, cli_runner: RecrmCliRunner
) -> None:
    class Notes:
        name = "notes"

        @hookimpl
        def recrm_timeline(self, uow: UnitOfWork, customer: Customer) -> list[TimelineEntry]:
            return [
                TimelineEntry(at=customer.created_at, kind="note", title="首次来电", source="notes")
            ]

    class Silent:
        @hookimpl
        def recrm_timeline(self) -> None:
            return None  # nothing to add for anyone

    c = crm.customers.add({"mobile": "13812345678"}).customer
    crm.interactions.log(c.id, {"kind": "visit", "staff": "zhang"})
    assert [e.source for e in crm.customers.view(c.id).timeline] == ["core"]
    register_plugin(Notes())
    register_plugin(Silent())
    timeline = crm.customers.view(c.id).timeline
    # Newest first: the visit came after the creation the note is dated at.
    assert [(e.source, e.kind, e.title) for e in timeline] == [
        ("core", "visit", "visit"),
        ("notes", "note", "首次来电"),
    ]
    shown = cli_runner.invoke("customers", "show", str(c.id), "--json").json()
    assert [e["source"] for e in shown["timeline"]] == ["core", "notes"]


# -- messages -----------------------------------------------------------------------------


def test_hook_recrm_deliver_message(crm_factory: CrmFactory) -> None:
    class SmsCapture:
        name = "smscapture"

        def __init__(self) -> None:
            self.sent: list[Message] = []

        @hookimpl
        def recrm_deliver_message(self, message: Message) -> DeliveryResult | None:
            if message.channel != "sms":
                return None  # let another transport (finally the console) take it
            self.sent.append(message)
            return DeliveryResult(transport="smscapture", detail=f"queued #{len(self.sent)}")

    console = io.StringIO()
    capture = SmsCapture()
    crm = crm_factory(plugins=[capture], console_stream=console)
    sms = Message(channel="sms", to="+8613812345678", body="您的认购已确认")
    assert crm.send_message(sms) == DeliveryResult(transport="smscapture", detail="queued #1")
    assert capture.sent == [sms]
    assert console.getvalue() == ""

    mail = Message(channel="email", to="ww@example.com", subject="月刊", body="第 3 期")
    assert crm.send_message(mail).transport == "console"
    assert capture.sent == [sms]
    assert "月刊" in console.getvalue() and "第 3 期" in console.getvalue()


# -- consent ------------------------------------------------------------------------------


def test_hook_recrm_consent_purposes(crm_factory: CrmFactory) -> None:
    from recrm_core import InvalidInput
    from recrm_core.unsubscribe import make_unsubscribe_token, read_unsubscribe_token

    class Club:
        name = "club"

        @hookimpl
        def recrm_consent_purposes(self, register: Callable[[str, str], None]) -> None:
            register("club_events", "会员活动")

    plain = crm_factory()
    c = plain.customers.add({"name": "王伟", "mobile": "13812345678"}).customer
    with pytest.raises(InvalidInput, match="club_events"):
        plain.consent.grant(c.id, "sms", "club_events")

    crm = crm_factory(plugins=[Club()])
    assert crm.consent.purposes() == {"marketing": "营销信息", "surveys": "调查问卷",
                                      "club_events": "会员活动"}
    c = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer
    crm.consent.grant(c.id, "sms", "club_events", source="form")
    assert crm.consent.allowed(c.id, "sms", "club_events")
    assert not crm.consent.allowed(c.id, "sms", "marketing")
    link = read_unsubscribe_token(crm, make_unsubscribe_token(crm, c.id, "sms", "club_events"))
    assert link.purpose == "club_events"
    # segments select by it like by the core's purposes
    assert crm.segments.count({"field": "consent.sms.club_events", "op": "eq",
                               "value": True}) == 1

    class Clash:
        name = "clash"

        @hookimpl
        def recrm_consent_purposes(self, register: Callable[[str, str], None]) -> None:
            register("marketing", "again")

    with pytest.raises(ConfigError, match=r"clash.*marketing"):
        crm_factory(plugins=[Clash()]).consent.purposes()
