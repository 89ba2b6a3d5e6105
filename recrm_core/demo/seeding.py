"""Writing the plan through the public services, as an integrator would: the
import, stage moves, the timeline, consents, the service centre's cases and the pool."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .. import identity
from ..config import RoutingRule
from ..consent import ConsentRecord
from ..db import utcnow
from ..errors import Refused
from ..models import Actor, CustomerInteractionIn, StageMove
from ..resolution import MOBILE
from ..tables import IdentityRow
from .company import _CASE_KINDS, _LEVEL_STAFF, DEMO_ROUTING, PROJECTS
from .planning import _Person, _PlannedInteraction

if TYPE_CHECKING:
    from ..crm import CRM

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
        self, crm: CRM, people: list[_Person], anchor: dt.datetime,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.crm = crm
        self.people = people
        self.say = progress or (lambda _step: None)
        # Midnight (business time) today (``demo_anchor``): history is whole days before it.
        self.anchor = anchor

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
                for value, cid in uow.connection.execute(
                    select(IdentityRow.value, IdentityRow.customer_id).where(
                        IdentityRow.kind == MOBILE, IdentityRow.value.in_(chunk))
                ):
                    owner[value] = cid
        return [owner[m] for m in mobiles]

    def stages(self, ids: list[int], batch: int = 1500) -> None:
        """The funnel's steps through ``set_stages``, 1,500 per call, as the sales
        manager enters the consultants' subscriptions, contracts and handovers (each
        step's staff is its consultant). Each call is one unit of work and one round
        of the batch hooks, whose reads cover the batch: 300 per call cost about 10 %
        more CPU (bench/README.md, session 5). In plan order: plugins number what
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

    def interactions(self, ids: list[int], batch: int = 2000) -> None:
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
        # Many small appends: one unit of work and one batch of hooks per 2,000 (500
        # cost about 13 % more CPU: the hooks read once per batch).
        for start in range(0, len(entries), batch):
            self.crm.interactions.log_many(entries[start : start + batch])

    def consents(self, ids: list[int], batch: int = 3000) -> None:
        planned = list(zip(ids, self.people, strict=True))
        # As a bulk load of consent records would: one unit of work and one batch of
        # records per 3,000 customers (one record_in each cost about 5x the CPU).
        for start in range(0, len(planned), batch):
            records: list[ConsentRecord] = []
            for cid, person in planned[start : start + batch]:
                for channel, purpose, source, withdrawn in person.consents:
                    records.append((cid, channel, purpose, True, source))
                    if withdrawn:
                        records.append((cid, channel, purpose, False, "客户退订"))
            with self.crm.unit_of_work() as uow:
                self.crm.consent.record_many_in(uow, records)

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
                if plan.escalate or plan.outcome == "in_progress":
                    self.crm.cases.start(case.id, worker)
                    if plan.escalate:
                        self.crm.cases.escalate(case.id, note="超时未处理，升级", actor=desk)
                    if plan.outcome == "in_progress":
                        continue
                    self.crm.cases.resolve(case.id, note="已处理", actor=worker)
                else:  # taken up and resolved by the same hand: one unit of work
                    self.crm.cases.transition_many(
                        [(case.id, "start", None), (case.id, "resolve", "已处理")], worker)
                if plan.outcome == "closed":
                    self.crm.cases.close(case.id, note="客户确认", actor=desk)
                elif plan.outcome == "reopened":
                    self.crm.cases.reopen(case.id, note="客户反馈问题仍在", actor=desk)
        self.crm.cases.sweep(now=now)
