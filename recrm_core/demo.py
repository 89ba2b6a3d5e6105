"""The demo company behind ``recrm demo``: a developer with two projects, a few
thousand customers moving through the sales funnel, their timeline, consents and
service cases, plus whatever every enabled plugin seeds through ``recrm_demo``.

Everything is written through the public services, so plugins see the same hooks
they would see in production. The data is planned first from one seeded
``random.Random`` and a seeded Faker (pure, no database), then written; so a seed
always gives the same customers, funnel and cases and therefore the same summary.

Time: the summary never shows a time, and the wall clock only places the history
(visits, contracts and handovers are dated in whole days before today, so the demo
always looks current). Cases are the exception that needs the real clock: an
"overdue" case must be overdue now, so open cases are back-dated from the real
current time: overdue ones by their SLA plus at least a day, on-time ones by at most
half of it, which keeps the counts the same whatever the time of day. The case
service records its own clock for taking up and resolving a case (no time can be
given), so resolved cases are opened shortly before now: most a few hours before
(within their SLA), one in eight past it, and their response and resolution times
read as a service centre's (the survey plugin's call-backs, closing cases its answers
opened weeks ago, stay long: they are closed now too).
The import likewise stamps every project link's ``first_seen_at`` with the time it
ran: the funnel and sources reports count the demo's prospects as arriving today.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from sqlalchemy import case as sql_case
from sqlalchemy import func, select

from . import identity
from .config import RoutingRule
from .consent import CHANNELS, PURPOSES, consent_granted_clause
from .db import utcnow
from .errors import Refused
from .models import Actor, CustomerInteractionIn, StageMove
from .resolution import MOBILE
from .tables import (
    CustomerProjectRow,
    CustomerRow,
    IdentityRow,
    InteractionRow,
    ProjectRow,
    TaskRow,
)
from .values import PERSONAS, STAGE_RANK, STAGES

if TYPE_CHECKING:
    from .crm import CRM
    from .reports.drawing import Drawer
    from .reports.model import ReportRequest

DEMO_DB_FILE = "recrm-demo.db"
DEFAULT_SEED = 2024
DEFAULT_CUSTOMERS = 3000


@dataclass
class DemoSection:
    """A plugin's section of the demo summary: a title and (label, value) rows."""

    #: the section's heading
    title: str
    #: (label, value) lines of the section
    rows: list[tuple[str, str]] = field(default_factory=list)


# -- the company ------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoProject:
    code: str
    name: str
    english: str
    consultants: tuple[str, ...]
    #: weights of the final stage of a customer's relationship with the project
    stage_weights: tuple[float, ...]
    #: (min, max) days ago of the final event, per final stage
    final_days: dict[str, tuple[int, int]]
    price_per_m2: tuple[int, int]
    buildings: int
    source_weights: dict[str, float]


SOURCES = ("来访", "电话", "中介", "网络广告", "老带新")

#: XL2 is on sale now (many visitors and contracts, first handovers); YH1 was handed
#: over a year ago (mostly owners, a tail of late buyers).
PROJECTS: tuple[DemoProject, ...] = (
    DemoProject(
        code="XL2",
        name="星珑湾二期",
        english="Xinglong Bay Phase II",
        consultants=("liu.yang", "chen.jing", "zhao.lei", "sun.li"),
        stage_weights=(0.52, 0.30, 0.05, 0.10, 0.03),
        final_days={"prospect": (1, 300), "visitor": (1, 280), "subscriber": (1, 45),
                    "buyer": (1, 260), "owner": (1, 40)},
        price_per_m2=(48_000, 56_000),
        buildings=12,
        source_weights={"来访": 0.24, "电话": 0.14, "中介": 0.26, "网络广告": 0.26, "老带新": 0.10},
    ),
    DemoProject(
        code="YH1",
        name="悦湖一期",
        english="Yuehu Phase I",
        consultants=("wang.fang", "zhou.qiang", "wu.min"),
        stage_weights=(0.42, 0.25, 0.01, 0.05, 0.27),
        final_days={"prospect": (30, 1000), "visitor": (20, 900), "subscriber": (1, 45),
                    "buyer": (20, 300), "owner": (300, 420)},
        price_per_m2=(36_000, 42_000),
        buildings=18,
        source_weights={"来访": 0.32, "电话": 0.16, "中介": 0.22, "网络广告": 0.12, "老带新": 0.18},
    ),
)
_BY_CODE = {p.code: p for p in PROJECTS}

#: (min, max) days between one funnel event and the next
_GAPS = {"visitor": (0, 60), "subscriber": (0, 40), "buyer": (3, 30), "owner": (150, 420)}
_PERSONA_WEIGHTS = (0.34, 0.33, 0.12, 0.08, 0.13)
_PERSONA_AGES = {"first_time": (24, 35), "upgrader": (32, 50), "investor": (35, 60),
                 "luxury": (38, 62), "retiree": (55, 70)}
_PERSONA_BUDGETS = {"first_time": (150, 320), "upgrader": (300, 650), "investor": (200, 500),
                    "luxury": (800, 2000), "retiree": (200, 420)}  # 万元
_PERSONA_AREAS = {"first_time": (89, 105), "upgrader": (118, 143), "investor": (89, 118),
                  "luxury": (165, 188), "retiree": (105, 128)}
#: ages and birth dates are counted from a fixed day so a seed gives the same people
_REFERENCE_DAY = dt.date(2025, 1, 1)
_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151",
    "152", "155", "156", "157", "158", "159", "166", "176", "177", "180", "181", "182",
    "183", "185", "186", "187", "188", "189", "198", "199",
)
_ID_REGIONS = ("440305", "440304", "440106", "310115", "110105", "320106", "330106",
               "510107", "420106", "430104", "350203", "370202")
_MAIL_DOMAINS = ("qq.com", "qq.com", "163.com", "126.com", "sina.com", "139.com", "gmail.com")

_CALL_NOTES = (
    "电话回访：关注三房户型", "电话回访：询问首付比例", "来电咨询开盘时间", "电话邀约周末到访",
    "询问学区划分", "电话沟通贷款方案", "回访：考虑中，下月再联系", "询问车位价格",
)
_VISIT_NOTES = ("到访售楼处，看了样板间", "带家人复访，比较两个户型", "到访：关注楼层和朝向",
                "参加周末暖场活动", "到访：意向较强，预约认购")
_WECHAT_NOTES = ("微信发送户型图", "微信推送优惠活动", "微信确认到访时间")

# category -> (priority weights low/normal/high/urgent, department, assignees, subjects)
_CASE_KINDS: dict[str, tuple[tuple[float, ...], str, tuple[str, ...], tuple[str, ...]]] = {
    "repair": ((0.15, 0.50, 0.25, 0.10), "工程部", ("gc.zhangwei", "gc.lihua"),
               ("卫生间漏水", "入户门关不严", "墙面开裂", "地暖不热", "窗户渗水", "电梯异响")),
    "complaint": ((0.05, 0.40, 0.40, 0.15), "客服中心", ("kf.wangli", "kf.zhaomin"),
                  ("交付时间延期", "实测面积与合同不符", "物业费收费有异议", "小区噪音扰民",
                   "销售承诺未兑现")),
    "inquiry": ((0.40, 0.55, 0.05, 0.0), "销售部", ("liu.yang", "wang.fang"),
                ("咨询产权证办理进度", "咨询贷款审批进度", "咨询装修规定", "咨询车位出售")),
}
_PRIORITIES = ("low", "normal", "high", "urgent")
#: how cases come in, dealt in turn (the hotline and WeChat most)
_INTAKE = ("hotline", "wechat", "property_desk", "hotline", "walk_in", "wechat", "mailbox",
           "hotline", "forum", "wechat", "chairman", "hotline")
#: the demo's service centre when recrm.toml routes nothing: repairs go to engineering in
#: turn, complaints to the service centre in turn, inquiries to the sales desk
DEMO_ROUTING = (("repair", "工程部", "round_robin"), ("complaint", "客服中心", "round_robin"),
                ("inquiry", "销售部", "desk"))
#: the escalation levels' departments above the projects' desks, with their staff
_LEVEL_STAFF = (("CRC", "城市公司客户关系中心", "crc.sun", "孙琳"),
                ("HQ", "集团总部客户关系部", "hq.zhou", "周总"))
#: outcomes are dealt in this order rather than drawn, so even a small demo has
#: open, in-progress, resolved and closed cases (about 40 % still active)
_CASE_OUTCOMES = ("open", "closed", "in_progress", "closed", "resolved", "open", "closed",
                  "closed", "in_progress", "resolved", "open", "reopened")


# -- the plan (pure: rng and Faker only) ---------------------------------------------------


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


# -- writing the plan ---------------------------------------------------------------------

#: how long a contact of each kind lasts, in minutes (the staff report's contact hours);
#: a web lead is a form, nobody's time
_MINUTES = {"visit": (30, 90), "call": (3, 15), "wechat": (2, 10)}


def _minutes(item: _PlannedInteraction, customer_id: int) -> int | None:
    """A duration within the kind's range, spread by the interaction's own figures
    rather than drawn: another draw from the plan's random stream would change every
    customer after it, and so the seed's summary."""
    span = _MINUTES.get(item.kind)
    if span is None:
        return None
    lo, hi = span
    return lo + (customer_id * 7 + item.days_ago * 13 + item.hour * 5) % (hi - lo + 1)



class _Seeder:
    def __init__(
        self, crm: CRM, people: list[_Person], progress: Callable[[str], None] | None = None
    ) -> None:
        self.crm = crm
        self.people = people
        self.say = progress or (lambda _step: None)
        zone = crm.config.zone
        today = dt.datetime.now(zone).date()
        # Midnight (business time) today: history is whole days before it.
        self.anchor = dt.datetime.combine(today, dt.time(), zone)

    def at(self, days_ago: int, hour: int) -> dt.datetime:
        return self.anchor - dt.timedelta(days=max(days_ago, 1)) + dt.timedelta(hours=hour)

    def run(self) -> list[int]:
        for project in PROJECTS:
            self.crm.projects.ensure(project.code, project.name)
        self.say("the staff directory")
        self.directory()
        self.say(f"{len(self.people)} customers")
        ids = self.load_customers()
        self.say("sales funnel: subscriptions, contracts, handovers")
        self.stages(ids)
        self.say("timeline: visits, calls, WeChat")
        self.interactions(ids)
        self.say("consents")
        self.consents(ids)
        self.say("service cases")
        self.cases(ids)
        self.say("follow-up tasks and the public pool")
        self.pool()
        return ids

    def directory(self) -> None:
        """Departments and the staff the demo's links, cases and actors name, so every
        role can be tried on the demo database (``recrm --as manager:li.na ...``)."""
        codes = [p.code for p in PROJECTS]
        for code, name, projects in (("销售部", "销售部", codes), ("客服中心", "客服中心", codes),
                                     ("工程部", "工程部", codes)):
            self.crm.directory.add_department({"code": code, "name": name, "projects": projects})
        people = [("li.na", "李娜", "manager", "销售部"), ("data.he", "何数", "analyst", None),
                  ("agent.xu", "许经纪", "partner", None)]
        people += [(c, c, "sales", "销售部") for p in PROJECTS for c in p.consultants]
        people += [(a, a, "service", dept) for _, dept, assignees, _ in _CASE_KINDS.values()
                   if dept != "销售部" for a in assignees]
        for code, name, staff_id, staff_name in _LEVEL_STAFF:
            self.crm.directory.add_department({"code": code, "name": name})
            people.append((staff_id, staff_name, "manager", code))
        for staff_id, name, role, department in people:
            self.crm.directory.add_staff({"id": staff_id, "name": name, "role": role,
                                          "department": department})

    def load_customers(self) -> list[int]:
        """Write every person and their project links; returns ids in plan order.

        Goes through the CSV import service (set-based identity resolution, one
        transaction and one ``recrm_customers_imported`` call per batch), as an
        integrator loading an existing customer list would. A person at two projects
        arrives twice with the same mobile, as from two sales offices, and the second
        row merges into the first.
        """
        rows: list[dict[str, Any]] = []
        for person in self.people:
            first, *others = person.links
            rows.append(person.record | {"project": first.project.code, "source": first.source,
                                         "owner_staff": first.consultant})
            rows.extend(
                {"mobile": person.record["mobile"], "project": link.project.code,
                 "source": link.source, "owner_staff": link.consultant}
                for link in others
            )
        result = self.crm.importer.import_rows(rows)
        if result.rejected:
            raise RuntimeError(f"the demo generated {result.rejected} invalid customer rows")
        mobiles = [identity.normalise_mobile(p.record["mobile"]) for p in self.people]
        owner: dict[str, int] = {}
        with self.crm.unit_of_work() as uow:
            for start in range(0, len(mobiles), 500):
                chunk = mobiles[start : start + 500]
                for value, cid in uow.session.execute(
                    select(IdentityRow.value, IdentityRow.customer_id).where(
                        IdentityRow.kind == MOBILE, IdentityRow.value.in_(chunk))
                ):
                    owner[value] = cid
        return [owner[m] for m in mobiles]

    def stages(self, ids: list[int], batch: int = 300) -> None:
        """The funnel's steps through ``set_stages``, a few hundred per call, as the
        sales manager enters the consultants' subscriptions, contracts and handovers
        (each step's staff is its consultant). In plan order: plugins number what
        they create in the order the steps come, and the seed's summary depends on it."""
        manager = Actor(staff_id="li.na", role="manager")
        moves: list[StageMove] = []
        for cid, person in zip(ids, self.people, strict=True):
            for link in person.links:
                for step, event in enumerate(link.events[1:], start=1):
                    if event.stage == "visitor" and link.stage != "visitor":
                        # The visit is on the timeline; the stage moves straight on to
                        # the subscription (one stage change fewer: the demo stays fast).
                        continue
                    carries = event.stage in ("subscriber", "buyer", "owner")
                    moves.append(StageMove(
                        customer_id=cid, stage=event.stage, project=link.project.code,
                        unit=link.unit if carries else None,
                        amount=link.amount if event.stage in ("subscriber", "buyer") else None,
                        occurred_at=self.at(event.days_ago, 9 + 2 * step),
                        staff=link.consultant,
                    ))
        for start in range(0, len(moves), batch):
            self.crm.customers.set_stages(moves[start : start + batch], actor=manager)

    def interactions(self, ids: list[int], batch: int = 500) -> None:
        entries = [
            CustomerInteractionIn(
                customer_id=cid, kind=item.kind, channel=item.channel,
                project=link.project.code, staff=link.consultant,
                occurred_at=self.at(item.days_ago, item.hour), summary=item.summary,
                minutes=_minutes(item, cid),
            )
            for cid, person in zip(ids, self.people, strict=True)
            for link in person.links
            for item in link.interactions
        ]
        # Many small appends: one unit of work and one batch of hooks per few hundred.
        for start in range(0, len(entries), batch):
            self.crm.interactions.log_many(entries[start : start + batch])

    def consents(self, ids: list[int], batch: int = 500) -> None:
        planned = list(zip(ids, self.people, strict=True))
        # As a bulk load of consent records would: one unit of work per batch.
        for start in range(0, len(planned), batch):
            with self.crm.unit_of_work() as uow:
                for cid, person in planned[start : start + batch]:
                    for channel, purpose, source, withdrawn in person.consents:
                        self.crm.consent.record_in(uow, cid, channel, purpose, True, source)
                        if withdrawn:
                            self.crm.consent.record_in(uow, cid, channel, purpose, False,
                                                       "客户退订")

    def pool(self) -> None:
        """The public pool (公海): the first consultant of XL2 moved to another office
        and their customers there went to the pool; every third of them was claimed by
        a colleague (the follow-up tasks came with the visits, through the core's own
        visit rule). Deterministic: no random draw, so the summary stays the seed's."""
        project = PROJECTS[0]
        leaver, *colleagues = project.consultants
        self.crm.pool.release_staff(leaver, project.code)
        pooled = sorted(e.customer_id for e in self.crm.pool.list(project.code)
                        if e.released_from == leaver)
        full: set[str] = set()  # colleagues at pool.max_owned (a large demo) claim no more
        for n, cid in enumerate(pooled[::3]):
            turn = colleagues[n % len(colleagues):] + colleagues[:n % len(colleagues)]
            for colleague in (c for c in turn if c not in full):
                try:
                    self.crm.pool.claim(cid, project.code, colleague)
                    break
                except Refused:
                    full.add(colleague)

    def cases(self, ids: list[int]) -> None:
        """Cases through the service centre: opened from their intake channel, repairs
        and complaints routed in turn by the rules (``DEMO_ROUTING`` unless recrm.toml
        has its own), some escalated by hand, then one sweep escalates the overdue ones
        whose level's window has passed, as cron would."""
        now = utcnow()
        sla = self.crm.config.sla
        desk = Actor(staff_id="kf.wangli", role="service")
        if not self.crm.config.routing:
            self.crm.config.routing = [
                RoutingRule(category=c, department=d, assign=a)
                for c, d, a in DEMO_ROUTING]
        for cid, person in zip(ids, self.people, strict=True):
            for plan in person.cases:
                hours = sla.hours(plan.category, plan.priority)
                if plan.overdue:
                    opened = now - dt.timedelta(hours=hours, days=1 + plan.days_ago % 20)
                elif plan.outcome == "open":
                    opened = now - dt.timedelta(hours=hours * plan.sla_used)
                elif plan.outcome != "in_progress" and plan.days_ago % 8 == 0:
                    # Taken up and resolved now (the case API records its own clock):
                    # one in eight past its SLA ...
                    opened = now - dt.timedelta(hours=hours * (1.1 + plan.sla_used))
                else:
                    # ... the others taken up within a few hours, inside their SLA.
                    opened = now - dt.timedelta(
                        hours=min(hours * plan.sla_used, 1 + plan.days_ago % 6))
                # A repair or a complaint is routed: no department or assignee given.
                routed = plan.category in ("repair", "complaint")
                case = self.crm.cases.open(
                    {"customer_id": cid, "category": plan.category, "subject": plan.subject,
                     "priority": plan.priority, "project": plan.project,
                     "department": None if routed else plan.department,
                     "assignee": None if routed else plan.assignee,
                     "channel": plan.channel},
                    desk, opened_at=opened,
                )
                if plan.outcome == "open":
                    continue
                worker = Actor(staff_id=case.assignee or desk.staff_id, role="service")
                self.crm.cases.start(case.id, worker)
                if plan.escalate:
                    self.crm.cases.escalate(case.id, note="超时未处理，升级", actor=desk)
                if plan.outcome == "in_progress":
                    continue
                self.crm.cases.resolve(case.id, note="已处理", actor=worker)
                if plan.outcome == "closed":
                    self.crm.cases.close(case.id, note="客户确认", actor=desk)
                elif plan.outcome == "reopened":
                    self.crm.cases.reopen(case.id, note="客户反馈问题仍在", actor=desk)
        self.crm.cases.sweep(now=now)


# -- the summary ----------------------------------------------------------------------------


class ProjectSummary(BaseModel):
    """One project in the demo summary; ``funnel`` counts customers at each stage now."""

    code: str
    name: str
    customers: int
    funnel: dict[str, int]
    sources: dict[str, int]
    contracts: int
    contract_value: int
    handovers: int


class CaseCount(BaseModel):
    category: str
    priority: str
    total: int
    open: int
    overdue: int


class CasesSummary(BaseModel):
    total: int
    by_status: dict[str, int]
    open: int
    overdue: int
    breakdown: list[CaseCount]
    #: cases at each escalation level, and by intake channel
    by_level: dict[str, int] = Field(default_factory=dict)
    by_channel: dict[str, int] = Field(default_factory=dict)


class ConsentCount(BaseModel):
    channel: str
    purpose: str
    customers: int


class ConsultantFollowups(BaseModel):
    """One consultant's open follow-up tasks in the demo summary."""

    staff: str
    open: int
    overdue: int


class PoolCount(BaseModel):
    project: str
    in_pool: int
    released: int
    claimed: int


class FollowupsSummary(BaseModel):
    """Follow-up tasks and the public pool. ``overdue`` counts the open tasks due before
    today (business time zone): a figure that does not change with the time of day."""

    open: int = 0
    done: int = 0
    overdue: int = 0
    by_consultant: list[ConsultantFollowups] = []
    pool: list[PoolCount] = []


class DemoSummary(BaseModel):
    """What ``recrm demo`` prints (``--json`` prints exactly this)."""

    seed: int
    customers: int
    at_two_projects: int
    stages: dict[str, int]
    projects: list[ProjectSummary]
    interactions: dict[str, int]
    cases: CasesSummary
    consents: list[ConsentCount]
    suspected_duplicates: int
    followups: FollowupsSummary = FollowupsSummary()
    plugins: list[DemoSection]


def seed_demo(
    crm: CRM,
    *,
    seed: int = DEFAULT_SEED,
    customers: int = DEFAULT_CUSTOMERS,
    progress: Callable[[str], None] | None = None,
) -> list[int]:
    """Write the demo company into ``crm`` (an empty database); returns the ids of
    the customers it created, in creation order. ``progress`` hears each step."""
    if customers < 1:
        raise ValueError("the demo needs at least one customer")
    people = _Planner(seed, customers).plan()
    return _Seeder(crm, people, progress).run()


def plugin_rng(seed: int) -> random.Random:
    """The generator handed to ``recrm_demo``: its own stream, so a change in how the
    core seeds does not change every plugin's data."""
    return random.Random(f"recrm-demo-plugins:{seed}")


def run_demo(
    crm: CRM,
    *,
    seed: int = DEFAULT_SEED,
    customers: int = DEFAULT_CUSTOMERS,
    progress: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Seed the demo company, let every plugin seed its part, and summarise."""
    with _collector_for_bulk_work():
        ids = seed_demo(crm, seed=seed, customers=customers, progress=progress)
        if progress is not None and crm.hooks.implemented("recrm_demo"):
            progress("plugins")
        sections = [_section(s) for s in crm.hooks.demo(crm, plugin_rng(seed), ids)]
    return summarise(crm, seed=seed, sections=sections)


@contextmanager
def _collector_for_bulk_work() -> Iterator[None]:
    """Python's cyclic collector tuned for seeding a company: the demo allocates
    millions of short-lived objects, and at the default gen-0 threshold (700) the
    collector ran thousands of times, its full collections walking everything the
    start-up left (modules, metadata, plugins): ~8 % of the demo's CPU (collector off:
    9.3-9.6 s against 10.1-10.4 s, alternating runs). Frozen, what exists before the
    seeding is out of its reach, and a higher threshold collects less often; what the
    seeding leaves in cycles is still collected (peak memory 145 MB against 143 MB).
    Restored afterwards, for an SDK caller's process."""
    import gc

    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _section(raw: Any) -> DemoSection:
    # Plugins may put numbers in their rows; the summary shows text.
    return DemoSection(
        title=str(raw.title), rows=[(str(label), str(value)) for label, value in raw.rows]
    )


def summarise(
    crm: CRM,
    *,
    seed: int,
    sections: Sequence[DemoSection] = (),
    now: dt.datetime | None = None,
) -> DemoSummary:
    """Count what the database holds: funnel per project, cases, consents."""
    now = now or utcnow()
    with crm.unit_of_work() as uow:
        session = uow.session
        active = CustomerRow.merged_into.is_(None)
        total = session.scalar(select(func.count()).select_from(CustomerRow).where(active)) or 0
        stages: dict[str, int] = dict.fromkeys(STAGES, 0)
        for stage, n in session.execute(
            select(CustomerRow.stage, func.count()).where(active).group_by(CustomerRow.stage)
        ):
            stages[stage] = int(n)
        linked = (
            select(CustomerProjectRow.customer_id)
            .group_by(CustomerProjectRow.customer_id)
            .having(func.count() > 1)
            .subquery()
        )
        at_two = session.scalar(select(func.count()).select_from(linked)) or 0
        funnels: dict[int, dict[str, int]] = {}
        for pid, stage, n in session.execute(
            select(CustomerProjectRow.project_id, CustomerProjectRow.stage, func.count())
            .group_by(CustomerProjectRow.project_id, CustomerProjectRow.stage)
        ):
            funnels.setdefault(pid, dict.fromkeys(STAGES, 0))[stage] = int(n)
        sources: dict[int, dict[str, int]] = {}
        for pid, source, n in session.execute(
            select(CustomerProjectRow.project_id, CustomerProjectRow.source, func.count())
            .group_by(CustomerProjectRow.project_id, CustomerProjectRow.source)
        ):
            sources.setdefault(pid, {})[source or "unknown"] = int(n)
        contracts: Counter[int] = Counter()
        value: Counter[int] = Counter()
        handovers: Counter[int] = Counter()
        for pid, kind, data in session.execute(
            select(InteractionRow.project_id, InteractionRow.kind, InteractionRow.data).where(
                InteractionRow.kind.in_(("contract", "handover")),
                InteractionRow.project_id.is_not(None),
            )
        ):
            if kind == "contract":
                contracts[pid] += 1
                value[pid] += int((data or {}).get("amount") or 0)
            else:
                handovers[pid] += 1
        projects = [
            ProjectSummary(
                code=code,
                name=name,
                customers=sum(funnels.get(pid, {}).values()),
                funnel=funnels.get(pid, dict.fromkeys(STAGES, 0)),
                sources=dict(sorted(sources.get(pid, {}).items(), key=lambda kv: (-kv[1], kv[0]))),
                contracts=contracts[pid],
                contract_value=value[pid],
                handovers=handovers[pid],
            )
            for pid, code, name in session.execute(
                select(ProjectRow.id, ProjectRow.code, ProjectRow.name).order_by(ProjectRow.id)
            )
        ]
        interactions = {
            kind: int(n)
            for kind, n in session.execute(
                select(InteractionRow.kind, func.count())
                .group_by(InteractionRow.kind)
                .order_by(func.count().desc(), InteractionRow.kind)
            )
        }
        consents = [
            ConsentCount(
                channel=channel,
                purpose=purpose,
                customers=session.scalar(
                    select(func.count()).select_from(CustomerRow).where(
                        active, consent_granted_clause(CustomerRow.id, channel, purpose)
                    )
                ) or 0,
            )
            for channel in CHANNELS
            for purpose in PURPOSES
        ]
    return DemoSummary(
        seed=seed,
        customers=total,
        at_two_projects=at_two,
        stages=stages,
        projects=projects,
        interactions=interactions,
        cases=_case_summary(crm, now),
        consents=[c for c in consents if c.customers],
        suspected_duplicates=len(crm.customers.duplicates()),
        followups=_followups_summary(crm, now),
        plugins=list(sections),
    )


def _followups_summary(crm: CRM, now: dt.datetime) -> FollowupsSummary:
    """Open and overdue tasks per consultant (overdue: due before today), the pool."""
    zone = crm.config.zone
    today = dt.datetime.combine(now.astimezone(zone).date(), dt.time(), zone)
    counts: dict[str, ConsultantFollowups] = {}
    status: Counter[str] = Counter()
    with crm.unit_of_work(readonly=True) as uow:
        overdue = func.coalesce(func.sum(sql_case((TaskRow.due_at < today, 1), else_=0)), 0)
        for staff, state, n, late in uow.session.execute(
            select(TaskRow.owner_staff, TaskRow.status, func.count(), overdue)
            .group_by(TaskRow.owner_staff, TaskRow.status)
        ):
            status[state] += n
            if state == "open":
                counts[staff] = ConsultantFollowups(staff=staff, open=n, overdue=late)
    pool = [PoolCount(project=r.project, in_pool=r.in_pool, released=r.released,
                      claimed=r.claimed) for r in crm.pool.report()]
    return FollowupsSummary(
        open=status["open"], done=status["done"],
        overdue=sum(c.overdue for c in counts.values()),
        by_consultant=sorted(counts.values(), key=lambda c: (-c.overdue, c.staff)),
        pool=pool)


def _case_summary(crm: CRM, now: dt.datetime) -> CasesSummary:
    counts = crm.cases.summary(now=now)
    rows: dict[tuple[str, str], CaseCount] = {}
    for case in crm.cases.list(now=now):
        key = (case.category, case.priority)
        row = rows.setdefault(key, CaseCount(category=case.category, priority=case.priority,
                                             total=0, open=0, overdue=0))
        row.total += 1
        if case.status in ("open", "in_progress", "reopened"):
            row.open += 1
        if case.overdue:
            row.overdue += 1
    rank = {p: i for i, p in enumerate(reversed(_PRIORITIES))}
    return CasesSummary(
        total=int(counts["total"]),
        by_status={k: int(v) for k, v in counts["by_status"].items()},
        open=int(counts["unresolved"]),
        overdue=int(counts["overdue"]),
        breakdown=sorted(rows.values(), key=lambda r: (r.category, rank.get(r.priority, 9))),
        by_level=counts["by_level"],
        by_channel=counts["by_channel"],
    )


#: the dashboard the demo writes beside its database
DASHBOARD_FILE = "recrm-demo-dashboard.html"
#: the reports the demo prints (``recrm report NAME`` runs them again)
DEMO_REPORTS = ("funnel", "scorecard")


def demo_request(crm: CRM, name: str) -> ReportRequest:
    """How the demo runs ``name``: the scorecard over the last 90 days (against the 90
    before them), which hold the demo's service cases, resolved shortly before now;
    the others with their defaults."""
    from .reports.model import ReportRequest

    if name != "scorecard":
        return ReportRequest()
    today = dt.datetime.now(crm.config.zone).date()
    return ReportRequest(start=today - dt.timedelta(days=89), end=today)


def demo_path(crm: CRM, name: str) -> str:
    """Where a demo section writes its file or directory ``name``: beside the demo's
    SQLite database, else in the working directory. Never a shared place such as the
    temporary directory: two demos at once (two people on one machine) would collide
    there, and what the demo writes holds its customers' addresses."""
    import os

    database = crm.engine.url.database if crm.engine.dialect.name == "sqlite" else None
    beside = os.path.dirname(os.path.abspath(database)) \
        if database and database != ":memory:" else os.getcwd()
    return os.path.join(beside, name)


def write_demo_dashboard(crm: CRM, drawer: Drawer | None = None) -> str:
    """Every report on one page (``recrm report dashboard``), beside the demo's SQLite
    database, else in the working directory, its charts drawn by ``drawer`` (default:
    here); returns where."""
    from .reports.dashboard import write_dashboard

    path = demo_path(crm, DASHBOARD_FILE)
    write_dashboard(crm, path, drawer=drawer)
    return path


__all__ = [
    "DASHBOARD_FILE",
    "DEFAULT_CUSTOMERS",
    "DEFAULT_SEED",
    "DEMO_DB_FILE",
    "DEMO_REPORTS",
    "PROJECTS",
    "CaseCount",
    "CasesSummary",
    "ConsentCount",
    "ConsultantFollowups",
    "DemoProject",
    "DemoSection",
    "DemoSummary",
    "FollowupsSummary",
    "PoolCount",
    "ProjectSummary",
    "demo_request",
    "plugin_rng",
    "run_demo",
    "seed_demo",
    "summarise",
    "write_demo_dashboard",
]
