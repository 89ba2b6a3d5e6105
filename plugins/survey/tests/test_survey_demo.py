"""The plugin's ``recrm_demo`` section, called directly with a seeded generator."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
import recrm_survey
from recrm_survey import answers, drivers, invitations, scores
from survey_testkit import SHANGHAI, ago, customer

from recrm_core import CRM, DemoSection
from recrm_core.demo import demo_anchor
from recrm_core.testing.clock import morning_and_afternoon, set_clock

pytestmark = pytest.mark.recrm_plugins("survey")


def populate(crm: CRM) -> list[int]:
    """Owners handed over over the last three years at two projects, a few open
    relationships, and closed service cases, as the core's demo seeds them."""
    ids: list[int] = []
    for i in range(60):
        cid = customer(crm, f"1380000{i:04d}", name=f"业主{i}")
        ids.append(cid)
        project = "XL2" if i % 3 else "YH1"
        if i % 5 == 4:
            crm.customers.set_stage(cid, "visitor", project)
            continue
        crm.customers.set_stage(cid, "owner", project, unit=f"{i % 7 + 1}-{i:03d}",
                                occurred_at=ago(20 + i * 17))
        if i % 4 == 0:
            case = crm.cases.open({"customer_id": cid, "category": "repair",
                                   "subject": "报修", "project": project})
            crm.cases.resolve(case.id)
            crm.cases.close(case.id)
    return ids


def test_demo_section(crm: CRM) -> None:
    ids = populate(crm)
    section = recrm_survey.recrm_demo(crm=crm, rng=random.Random(7), customer_ids=ids,
                                      anchor=demo_anchor(crm))
    assert isinstance(section, DemoSection)
    assert section.title == "Surveys: NPS, CSAT, L3 loyalty"
    rows = dict(section.rows)
    assert list(rows) == [
        "invitations", "XL2 NPS", "XL2 CSAT", "XL2 L3 loyal", "YH1 NPS", "YH1 CSAT",
        "YH1 L3 loyal", "strongest drivers", "cases from detractors"]
    given = answers(crm)
    assert len(given) > 20  # a fair share of the open invitations was answered
    every = invitations(crm)
    assert rows["invitations"].startswith(
        f"{len(every)} ({sum(i.status == 'answered' for i in every)} answered")
    assert "48 yearly this run" in rows["invitations"]  # every owner, once
    # the rows show the same numbers as the scores, with their counts
    pooled = {s.project: s for s in scores(crm, period="all", by_survey=False)}
    xl2 = pooled["XL2"]
    assert xl2.nps is not None
    assert rows["XL2 NPS"] == (f"{xl2.nps:+d} (n={xl2.nps_answers}: {xl2.promoters} "
                               f"promoters, {xl2.passives} passives, {xl2.detractors} "
                               "detractors)")
    assert rows["XL2 CSAT"] == f"{xl2.csat}% ({xl2.satisfied} of {xl2.csat_answers} rated 4-5)"
    assert rows["XL2 L3 loyal"] == (f"{xl2.l3}% ({xl2.loyal} of {xl2.l3_respondents} "
                                    "respondents)")
    # the factors really drive satisfaction in the demo data
    strongest = [d for d in drivers(crm) if d.r is not None][:3]
    assert strongest and strongest[0].r is not None and strongest[0].r > 0.3
    assert rows["strongest drivers"].startswith(f"{strongest[0].factor} r=")
    opened = [a for a in given if a.case_id is not None]
    assert opened, "detractors open cases"
    assert rows["cases from detractors"].startswith(f"{len(opened)} opened, ")
    # answers lie inside their invitation's window
    windows = {i.id: (i.due_at, i.expires_at) for i in every}
    assert all(windows[a.invitation_id][0] <= a.answered_at < windows[a.invitation_id][1]
               for a in given)


def test_demo_is_deterministic_for_a_seed(crm: CRM, tmp_path: Path) -> None:
    first = recrm_survey.recrm_demo(crm=crm, rng=random.Random(11),
                                    customer_ids=populate(crm), anchor=demo_anchor(crm))
    with CRM(database_url=f"sqlite:///{tmp_path / 'again.db'}", plugins=["survey"],
             create_schema=True) as again:
        ids = populate(again)
        [second] = again.hooks.demo(again, random.Random(11), ids, demo_anchor(again))
        assert second.rows == first.rows  # type: ignore[union-attr]
        values = [a.answers for a in answers(again)]
    assert values == [a.answers for a in answers(crm)]


def _run_at(path: Path, clock: dt.datetime, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The demo section of a company like the core's demo (handovers on whole days
    before the clock's day), built and summarised with the clock at ``clock``."""
    with monkeypatch.context() as patch:
        set_clock(patch, clock, [recrm_survey])
        with CRM(database_url=f"sqlite:///{path}", plugins=["survey"],
                 create_schema=True) as crm:
            midnight = demo_anchor(crm)
            ids = []
            for i in range(60):
                cid = customer(crm, f"1380000{i:04d}", name=f"业主{i}")
                ids.append(cid)
                handed = midnight - dt.timedelta(days=20 + i * 17, hours=-(9 + i % 9))
                crm.customers.set_stage(cid, "owner", "XL2" if i % 3 else "YH1",
                                        unit=f"{i % 7 + 1}-{i:03d}", occurred_at=handed)
            [section] = crm.hooks.demo(crm, random.Random(5), ids, midnight)
            return section.rows  # type: ignore[no-any-return]


def test_demo_does_not_depend_on_the_time_of_day(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same seed on the same day gives the same section in the morning and in the
    afternoon: check-ins due at a handover's hour of today, answers placed in windows
    still open and call-backs 30 days after an answer must not move with the hour."""
    # yesterday: both clocks lie before the real one, which some checks read
    morning, afternoon = morning_and_afternoon(dt.datetime.now(SHANGHAI).date()
                                               - dt.timedelta(days=1))
    assert _run_at(tmp_path / "am.db", morning, monkeypatch) \
        == _run_at(tmp_path / "pm.db", afternoon, monkeypatch)
