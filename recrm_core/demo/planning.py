"""The plan: every person, project link, funnel event, contact, consent and case,
decided from the seed alone (one ``random.Random`` and a seeded Faker, no database)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import identity
from ..values import PERSONAS, STAGE_RANK, STAGES
from .company import (
    _CALL_NOTES,
    _CASE_KINDS,
    _CASE_OUTCOMES,
    _GAPS,
    _ID_REGIONS,
    _INTAKE,
    _MAIL_DOMAINS,
    _MOBILE_PREFIXES,
    _PERSONA_AGES,
    _PERSONA_AREAS,
    _PERSONA_BUDGETS,
    _PERSONA_WEIGHTS,
    _PRIORITIES,
    _REFERENCE_DAY,
    _VISIT_NOTES,
    _WECHAT_NOTES,
    PROJECTS,
    DemoProject,
)


@dataclass
class _Event:
    stage: str
    days_ago: int


@dataclass
class _PlannedInteraction:
    kind: str
    channel: str
    days_ago: int
    hour: int
    summary: str


@dataclass
class _Link:
    project: DemoProject
    source: str
    consultant: str
    events: list[_Event]
    unit: str | None = None
    amount: int | None = None
    interactions: list[_PlannedInteraction] = field(default_factory=list)

    @property
    def stage(self) -> str:
        return self.events[-1].stage


@dataclass
class _PlannedCase:
    project: str
    category: str
    priority: str
    subject: str
    department: str
    assignee: str
    outcome: str
    overdue: bool
    days_ago: int
    #: fraction of the SLA already used by an on-time open case
    sla_used: float
    escalate: bool = False
    channel: str = "other"


@dataclass
class _Person:
    record: dict[str, Any]
    links: list[_Link]
    consents: list[tuple[str, str, str, bool]] = field(default_factory=list)
    cases: list[_PlannedCase] = field(default_factory=list)


class _Planner:
    """Decides every person, link, event and case from the seed alone."""

    def __init__(self, seed: int, count: int) -> None:
        self.rng = random.Random(seed)
        from faker import Faker  # only the demo needs it, and it is slow to import

        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.count = count
        self.mobiles: set[str] = set()
        self.cards: set[str] = set()
        self.emails: list[str] = []
        self.units: dict[str, set[str]] = {p.code: set() for p in PROJECTS}
        self.cases = 0
        self.active_cases = 0

    def plan(self) -> list[_Person]:
        people = [self._person() for _ in range(self.count)]
        # A handful of cases even in a tiny demo, so every part of the summary shows.
        minimum = min(self.count, max(4, self.count // 40))
        while self.cases < minimum:
            person = self.rng.choice(people)
            furthest = max((lk.stage for lk in person.links), key=STAGE_RANK.__getitem__)
            self._add_case(person, furthest)
        return people

    # people ---------------------------------------------------------------------------
    def _person(self) -> _Person:
        rng = self.rng
        xl2, yh1 = PROJECTS
        if rng.random() < 0.14:
            # A YH1 owner (or buyer) coming back to buy again at XL2.
            first = self._link(yh1, weights=(0.0, 0.08, 0.0, 0.17, 0.75))
            second = self._link(xl2, weights=(0.35, 0.38, 0.07, 0.17, 0.03),
                                sources=("来访", "电话"))
            links = [first, second]
        else:
            links = [self._link(xl2 if rng.random() < 0.62 else yh1)]
        furthest = max((link.stage for link in links), key=STAGE_RANK.__getitem__)
        persona = rng.choices(PERSONAS, _PERSONA_WEIGHTS)[0]
        male = rng.random() < 0.52
        record: dict[str, Any] = {"mobile": self._mobile()}
        phone_lead = furthest == "prospect" and links[0].source in ("电话", "网络广告")
        if phone_lead and rng.random() < 0.35:
            record["name"] = self.fake.last_name() + ("先生" if male else "女士")
        else:
            record["name"] = self.fake.name_male() if male else self.fake.name_female()
        lo, hi = _PERSONA_AGES[persona]
        born = _REFERENCE_DAY - dt.timedelta(days=rng.randint(lo * 365, hi * 365))
        if STAGE_RANK[furthest] >= STAGE_RANK["subscriber"] or rng.random() < 0.12:
            # Signing needs an ID card; birth date and gender then come from it.
            record["id_card"] = self._id_card(born, male)
        else:
            record["gender"] = "male" if male else "female"
            if rng.random() < 0.4:
                record["birth_date"] = born
        if rng.random() < 0.9:
            record["persona"] = persona
        if rng.random() < 0.8:
            blo, bhi = _PERSONA_BUDGETS[persona]
            record["budget"] = rng.randint(blo // 10, bhi // 10) * 100_000
        if rng.random() < (0.65 if furthest == "owner" else 0.42):
            record["email"] = self._email()
        person = _Person(record=record, links=links)
        for link in links:
            self._fill_link(link, persona)
        self._plan_consents(person, furthest)
        self._plan_cases(person, furthest)
        return person

    def _mobile(self) -> str:
        while True:
            raw = self.rng.choice(_MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            try:
                e164 = identity.normalise_mobile(raw)
            except identity.IdentityError:
                continue
            if e164 not in self.mobiles:
                self.mobiles.add(e164)
                return raw

    def _id_card(self, born: dt.date, male: bool) -> str:
        while True:
            # The sequence number's parity encodes the gender (odd: male).
            seq = self.rng.randrange(1 if male else 0, 1000, 2)
            body = f"{self.rng.choice(_ID_REGIONS)}{born:%Y%m%d}{seq:03d}"
            card = body + identity.id_card_check_character(body)
            if card not in self.cards:
                self.cards.add(card)
                return card

    def _email(self) -> str:
        if self.emails and self.rng.random() < 0.03:
            # Families share one mailbox: a suspected duplicate, never merged.
            return self.rng.choice(self.emails)
        mail = f"{self.fake.user_name()}{self.rng.randint(1, 999)}@{self.rng.choice(_MAIL_DOMAINS)}"
        self.emails.append(mail)
        return mail

    # funnel ---------------------------------------------------------------------------
    def _link(
        self,
        project: DemoProject,
        weights: Sequence[float] | None = None,
        sources: Sequence[str] | None = None,
    ) -> _Link:
        rng = self.rng
        final = rng.choices(STAGES, weights or project.stage_weights)[0]
        days = rng.randint(*project.final_days[final])
        # Walk back from the final event: each earlier stage happened some days before.
        events = [_Event(final, days)]
        for stage in reversed(STAGES[1 : STAGE_RANK[final] + 1]):
            days += rng.randint(*_GAPS[stage])
            events.append(_Event(STAGES[STAGE_RANK[stage] - 1], days))
        events.reverse()
        if sources is None:
            names, weights = zip(*project.source_weights.items(), strict=True)
            source = rng.choices(names, weights)[0]
        else:
            source = rng.choice(sources)
        return _Link(project, source, rng.choice(project.consultants), events)

    def _fill_link(self, link: _Link, persona: str) -> None:
        rng = self.rng
        lead = link.events[0].days_ago
        if link.source == "电话":
            link.interactions.append(_PlannedInteraction("call", "phone", lead, 10, "来电咨询"))
        elif link.source == "网络广告":
            link.interactions.append(
                _PlannedInteraction("web_lead", "web", lead, 9, "网络广告留资")
            )
        for i, event in enumerate(link.events[1:], start=1):
            if event.stage == "visitor":
                link.interactions.append(_PlannedInteraction(
                    "visit", "sales_office", event.days_ago, 9 + 2 * i, rng.choice(_VISIT_NOTES)))
                nxt = link.events[i + 1].days_ago if i + 1 < len(link.events) else 0
                if event.days_ago - nxt > 2 and rng.random() < 0.4:
                    link.interactions.append(_PlannedInteraction(
                        "visit", "sales_office", rng.randint(nxt + 1, event.days_ago - 1), 15,
                        rng.choice(_VISIT_NOTES)))
        if rng.random() < 0.45:
            for _ in range(rng.randint(1, 2)):
                link.interactions.append(_PlannedInteraction(
                    "call", "phone", rng.randint(1, lead), rng.randint(9, 19),
                    rng.choice(_CALL_NOTES)))
        if rng.random() < 0.25:
            link.interactions.append(_PlannedInteraction(
                "wechat", "wechat", rng.randint(1, lead), rng.randint(9, 21),
                rng.choice(_WECHAT_NOTES)))
        if STAGE_RANK[link.stage] >= STAGE_RANK["subscriber"]:
            link.unit = self._unit(link.project)
            lo, hi = _PERSONA_AREAS[persona]
            area = rng.randint(lo, hi)
            price = rng.randint(*link.project.price_per_m2)
            link.amount = round(area * price, -3)

    def _unit(self, project: DemoProject) -> str:
        taken = self.units[project.code]
        while True:
            unit = (f"{self.rng.randint(1, project.buildings)}-"
                    f"{self.rng.randint(2, 33)}{self.rng.randint(1, 4):02d}")
            if unit not in taken:
                taken.add(unit)
                return unit

    # consents and cases -----------------------------------------------------------------
    def _plan_consents(self, person: _Person, furthest: str) -> None:
        rng = self.rng
        if "email" in person.record and rng.random() < 0.55:
            person.consents.append(("email", "marketing", "售楼处登记", rng.random() < 0.06))
        if rng.random() < 0.42:
            person.consents.append(("sms", "marketing", "售楼处登记", rng.random() < 0.08))
        if furthest == "owner" and rng.random() < 0.6:
            person.consents.append(("sms", "surveys", "交房确认书", False))
        if furthest in ("buyer", "owner") and rng.random() < 0.3:
            person.consents.append(("wechat", "marketing", "业主小程序", False))

    def _plan_cases(self, person: _Person, furthest: str) -> None:
        rng = self.rng
        chance = {"prospect": 0.005, "visitor": 0.02, "subscriber": 0.06,
                  "buyer": 0.10, "owner": 0.25}[furthest]
        if rng.random() < chance:
            self._add_case(person, furthest)

    def _add_case(self, person: _Person, furthest: str) -> None:
        rng = self.rng
        link = max(person.links, key=lambda lk: STAGE_RANK[lk.stage])
        if furthest == "owner":
            category = rng.choices(("repair", "complaint", "inquiry"), (0.65, 0.25, 0.10))[0]
        elif furthest in ("buyer", "subscriber"):
            category = rng.choices(("complaint", "inquiry"), (0.45, 0.55))[0]
        else:
            category = "inquiry"
        weights, department, assignees, subjects = _CASE_KINDS[category]
        outcome = _CASE_OUTCOMES[self.cases % len(_CASE_OUTCOMES)]
        channel = _INTAKE[self.cases % len(_INTAKE)]
        self.cases += 1
        active = outcome in ("in_progress", "open")
        if active:
            self.active_cases += 1
        case = _PlannedCase(
            project=link.project.code,
            category=category,
            priority=rng.choices(_PRIORITIES, weights)[0],
            subject=rng.choice(subjects),
            department=department if category != "repair" else "客服中心",
            assignee=rng.choice(assignees),
            outcome=outcome,
            overdue=active and self.active_cases % 4 == 1,  # every fourth active case
            days_ago=rng.randint(3, 120),
            sla_used=rng.uniform(0.05, 0.5),
            channel=channel,
        )
        case.escalate = case.overdue and rng.random() < 0.4
        person.cases.append(case)
