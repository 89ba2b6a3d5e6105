"""Tests of the tutorial plugin, written with the fixtures of ``recrm_core.testing``.

The plugin is loaded the way an integrator loads it: by its entry-point name,
so these tests also prove the distribution is installed and discoverable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import recrm_hotlead
from recrm_hotlead import HotleadTag, hot_leads
from sqlalchemy import ColumnElement, select

from recrm_core import CRM, Base, ConfigError, PluginError, SegmentField, hookimpl
from recrm_core.testing import RecrmCliRunner

pytestmark = pytest.mark.recrm_plugins("hotlead")


def visit(crm: CRM, customer_id: int, times: int = 1, project: str | None = "XL2") -> None:
    for _ in range(times):
        crm.interactions.log(customer_id, {"kind": "visit", "project": project, "staff": "zhang"})


def test_third_visit_makes_a_hot_lead(crm: CRM) -> None:
    c = crm.customers.add({"name": "王伟", "mobile": "13812345678"}).customer
    visit(crm, c.id, 2)
    crm.interactions.log(c.id, {"kind": "call"})  # only visits count
    assert hot_leads(crm) == []
    visit(crm, c.id)
    [lead] = hot_leads(crm)
    assert (lead.customer_id, lead.name, lead.visits, lead.project) == (c.id, "王伟", 3, "XL2")
    assert lead.mobiles == ["+8613812345678"]


START = dt.datetime(2026, 5, 1, 9, tzinfo=dt.UTC)


def _visits_then_tags(crm: CRM, mobiles: list[str], batched: bool) -> list[object]:
    """Visits of three customers (one hot before, one hot within, one not), each with
    its own time and project, made one by one or as one batch; the tags they leave."""
    ids = [crm.customers.add({"mobile": m}).customer.id for m in mobiles]
    visit(crm, ids[0], 2)  # before the batch: two visits
    plan = [(ids[n], f"XL{k}", START + dt.timedelta(hours=k))
            for k, n in enumerate((1, 0, 1, 2, 1, 0, 1, 1))]
    if batched:
        with crm.unit_of_work() as uow, crm.hooks.batched(uow):
            for cid, project, at in plan:
                crm.interactions.log_in(uow, cid, kind="visit", project=project,
                                        occurred_at=at)
                crm.interactions.log_in(uow, cid, kind="call")  # only visits count
    else:
        for cid, project, at in plan:
            crm.interactions.log(cid, {"kind": "visit", "project": project,
                                       "occurred_at": at})
            crm.interactions.log(cid, {"kind": "call"})
    with crm.unit_of_work(readonly=True) as uow:
        tags = {t.customer_id: t for t in uow.session.scalars(select(HotleadTag))}
    return [(tags[i].visits, tags[i].hot_since, tags[i].project) if i in tags else None
            for i in ids]


def test_hook_recrm_interactions_logged(crm: CRM) -> None:
    # The tutorial's batch hook: a batch of visits counts as the same visits one by one.
    alone = _visits_then_tags(crm, ["13812345678", "13812345679", "13812345670"], False)
    batch = _visits_then_tags(crm, ["13912345678", "13912345679", "13912345670"], True)
    assert batch == alone
    # hot at the first visit of the batch, at the third of five, and not at all
    assert [t and t[2] for t in alone] == ["XL1", "XL4", None]  # type: ignore[index]
    assert alone[1] == (5, START + dt.timedelta(hours=4), "XL4")


@pytest.mark.recrm_settings(hotlead={"threshold": 2})
def test_threshold_comes_from_settings(crm: CRM) -> None:
    assert crm.settings_for("hotlead").threshold == 2
    c = crm.customers.add({"mobile": "13812345678"}).customer
    visit(crm, c.id, 2)
    assert [lead.customer_id for lead in hot_leads(crm)] == [c.id]


@pytest.mark.parametrize("bad", [0, "many"])
def test_bad_threshold_is_a_config_error(crm_factory: Callable[..., CRM], bad: object) -> None:
    with pytest.raises(ConfigError, match=r"\[hotlead\] threshold"):
        crm_factory(plugins=["hotlead"], settings={"hotlead": {"threshold": bad}})


def test_visit_counts_roll_back_with_the_operation(
    crm: CRM, register_plugin: Callable[..., str]
) -> None:
    c = crm.customers.add({"mobile": "13812345678"}).customer
    visit(crm, c.id, 2)

    class NoWeekendVisits:
        @hookimpl
        def recrm_interaction_logged(self) -> None:
            raise RuntimeError("sales office closed")

    register_plugin(NoWeekendVisits(), name="closed")
    with pytest.raises(PluginError, match="closed"):
        visit(crm, c.id)
    with crm.unit_of_work() as uow:
        # hotlead counted the third visit in the same transaction, which rolled back
        assert uow.session.scalar(select(HotleadTag.visits)) == 2
    assert hot_leads(crm) == []


def test_timeline_shows_the_hot_lead(crm: CRM) -> None:
    c = crm.customers.add({"mobile": "13812345678"}).customer
    visit(crm, c.id, 3)
    timeline = crm.customers.view(c.id).timeline
    [entry] = [e for e in timeline if e.source == "hotlead"]
    assert (entry.kind, entry.title, entry.data) == (
        "hot_lead", "hot lead (3 visits)", {"visits": 3, "project": "XL2"},
    )
    third_visit = max(e.at for e in timeline if e.kind == "visit")
    assert entry.at == third_visit
    assert sorted(e.kind for e in timeline) == ["hot_lead", "visit", "visit", "visit"]


def test_merge_combines_the_counts(crm: CRM) -> None:
    a = crm.customers.add({"mobile": "13812345678"}).customer
    b = crm.customers.add({"mobile": "13912345678"}).customer
    visit(crm, a.id, 2)
    visit(crm, b.id, 2)
    assert hot_leads(crm) == []
    crm.customers.merge(a.id, b.id)
    [lead] = hot_leads(crm)
    assert (lead.customer_id, lead.visits) == (a.id, 4)
    with crm.unit_of_work() as uow:
        assert uow.session.scalars(select(HotleadTag.customer_id)).all() == [a.id]


def test_a_renamed_project_keeps_its_hot_leads(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    # The tag keeps the project's code, so it must follow a rename (docs/plugins.md):
    # the list used to go on naming XL2, a code no project has any more.
    a = crm.customers.add({"mobile": "13812345678"}).customer
    visit(crm, a.id, 3)
    crm.projects.rename("XL2", "XL2B")
    assert [lead.project for lead in hot_leads(crm)] == ["XL2B"]
    [entry] = [e for e in crm.customers.view(a.id).timeline if e.kind == "hot_lead"]
    assert entry.data["project"] == "XL2B"
    listed = cli_runner.invoke("hotlead", "list", "--json")
    assert listed.exit_code == 0 and listed.json()[0]["project"] == "XL2B"


def test_merge_keeps_the_earlier_tag(crm: CRM) -> None:
    a = crm.customers.add({"mobile": "13812345678"}).customer
    b = crm.customers.add({"mobile": "13912345678"}).customer
    visit(crm, b.id, 3, project="XL1")
    first_hot = hot_leads(crm)[0].hot_since
    crm.customers.merge(a.id, b.id)
    [lead] = hot_leads(crm)
    assert (lead.customer_id, lead.visits, lead.hot_since, lead.project) == (
        a.id, 3, first_hot, "XL1",
    )


def test_cli_lists_hot_leads(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = crm.customers.add({"name": "李娜", "mobile": "13812345678"}).customer
    assert cli_runner.invoke("hotlead", "list", "--json").json() == []
    visit(crm, c.id, 3)
    result = cli_runner.invoke("hotlead", "list", "--json")
    assert result.exit_code == 0
    assert result.stdout.count("\n") == 1
    [row] = result.json()
    assert (row["customer_id"], row["name"], row["visits"]) == (c.id, "李娜", 3)
    human = cli_runner.invoke("hotlead", "list")
    assert human.exit_code == 0 and "李娜" in human.stdout


def test_hot_leads_are_masked_for_roles_that_may_not_see_them(
        crm: CRM, cli_runner: RecrmCliRunner) -> None:
    c = crm.customers.add({"name": "李娜", "mobile": "13812345678", "project": "XL2",
                           "owner_staff": "zhang"}).customer
    visit(crm, c.id, 3)
    partner = cli_runner.invoke("--as", "partner:agent1", "hotlead", "list", "--json")
    assert partner.exit_code == 0, partner.stderr
    [row] = partner.json()
    assert (row["name"], row["mobiles"]) == ("李*", ["138****5678"])
    assert "13812345678" not in partner.stdout
    owner = cli_runner.invoke("--as", "sales:zhang", "hotlead", "list", "--json").json()
    assert owner[0]["mobiles"] == ["+8613812345678"]


def test_cli_shows_a_hostile_name_as_written(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    # The core's table() escapes for every plugin: no MarkupError, no live link, no
    # terminal escape sequence from a customer's name.
    name = "[/bold][link=http://evil.example/]x[/link]\x1b]0;pwned\x07"
    c = crm.customers.add({"name": name, "mobile": "13812345678"}).customer
    visit(crm, c.id, 3)
    human = cli_runner.invoke("hotlead", "list")
    assert human.exit_code == 0, human.stderr
    assert "\x1b" not in human.stdout
    assert r"[/bold][link=http://evil.example/]x[/link]\x1b]0;pwned\x07" in human.stdout


def test_segment_field(crm: CRM) -> None:
    hot = crm.customers.add({"mobile": "13812345678"}).customer
    warm = crm.customers.add({"mobile": "13912345678"}).customer
    crm.customers.add({"mobile": "13712345678"})
    visit(crm, hot.id, 3)
    visit(crm, warm.id, 1)
    assert crm.segments.count({"field": "hotlead.hot", "op": "eq", "value": True}) == 1
    assert crm.segments.count({"field": "hotlead.hot", "op": "eq", "value": False}) == 2
    assert crm.segments.count({"field": "hotlead.visits", "op": "gte", "value": 1}) == 2
    assert crm.segments.count({"field": "hotlead.visits", "op": "eq", "value": 0}) == 1


def test_installed_through_the_entry_point(crm: CRM, cli_runner: RecrmCliRunner) -> None:
    [info] = [i for i in crm.plugin_infos if i.name == "hotlead"]
    assert info.version == "0.1.0"
    listed = {p["name"]: p for p in cli_runner.invoke("plugins", "list", "--json").json()}
    assert listed["hotlead"]["error"] is None
    assert {"recrm_interactions_logged", "recrm_customer_merged", "recrm_segment_fields"} <= set(
        listed["hotlead"]["hooks"]
    )


def test_segment_expressions_run_on_the_database(crm: CRM) -> None:
    # The expressions themselves, without the segment compiler: each gets the
    # customers' id column and must yield one value per customer.
    fields: list[SegmentField] = []
    recrm_hotlead.recrm_segment_fields(register=fields.append)
    by_name = {f.name: f for f in fields}
    types = {n: f.type for n, f in by_name.items()}
    assert types == {"hotlead.hot": "bool", "hotlead.visits": "int"}
    hot = crm.customers.add({"mobile": "13812345678"}).customer
    cold = crm.customers.add({"mobile": "13912345678"}).customer
    visit(crm, hot.id, 3)
    customers = Base.metadata.tables["customers"]
    hot_expr = by_name["hotlead.hot"].expression(customers.c.id)
    visits_expr = by_name["hotlead.visits"].expression(customers.c.id)
    assert isinstance(hot_expr, ColumnElement) and isinstance(visits_expr, ColumnElement)
    query = select(customers.c.id, hot_expr, visits_expr).order_by(customers.c.id)
    with crm.unit_of_work() as uow:
        rows = [tuple(r) for r in uow.session.execute(query)]
    assert rows == [(hot.id, True, 3), (cold.id, False, 0)]


def test_a_persons_export_and_erasure_include_the_hot_lead(crm: CRM) -> None:
    c = crm.customers.add({"name": "李娜", "mobile": "13812345678"}).customer
    visit(crm, c.id, 3)
    assert crm.privacy.export(c.id)["plugins"]["hotlead"]["visits"] == 3
    report = crm.privacy.erase(c.id)
    assert {"source": "hotlead", "table": "hotlead_tags", "deleted": 1, "anonymised": 0,
            "retained": 0, "basis": None} in report.steps
    assert hot_leads(crm) == []
