"""The survey plugin's part of ``recrm demo``.

By the time this runs, the core's seeding has fired the plugin's hooks: every
handover scheduled its check-ins (back-dated with the handover) and every closed
case got a CSAT invitation. The demo then invites every owner to the yearly
survey, answers part of the invitations whose window has opened (back-dated inside
the window, values drawn from ``rng`` around a per-customer satisfaction so the
factors really drive overall satisfaction), calls back and closes the cases that
detractors opened more than a month ago, and summarises.

Deterministic for a seed: only ``rng`` is random, invitations are visited in id
order, and the day, not the time of day, decides: a check-in counts as open when its
due day is before today, an answer is placed in its window as it stood at midnight
(business time), a call-back comes 30 days after an answer counted from midnight, and
the summary counts what is due by the end of today. Check-ins fall due at their
handover's hour, so anything read against the moment the demo runs would change
between a morning run and an afternoon one.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from recrm_core import CRM, DemoSection, utcnow

from . import service
from .definitions import FACTOR_ROLES, Question, SurveyDefinition
from .scores import drivers as score_drivers
from .scores import scores as score_table
from .settings import settings

ANSWER_SHARE = 0.45
#: answers recorded per transaction
ANSWER_BATCH = 200
#: how strongly each factor follows the customer's overall satisfaction
FACTOR_WEIGHT: dict[str, float] = {
    "quality": 0.9, "service": 0.8, "handover_readiness": 0.7, "value": 0.6,
    "amenities": 0.5, "design": 0.4, "sales_staff": 0.3, "location": 0.2,
}
COMMENTS_LOW = ("卫生间渗水，报修两次还没修好", "物业响应太慢", "交房时墙面有裂缝")
COMMENTS_HIGH = ("物业管家很贴心", "小区绿化很好", "孩子上学很方便")


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


class _Respondent:
    """Values for one answer, from a latent satisfaction (mean 0.3, sd 1)."""

    def __init__(self, rng: random.Random, latent: float) -> None:
        self.rng, self.latent = rng, latent

    def rating(self, role: str | None) -> int:
        gauss = self.rng.gauss
        if role in FACTOR_ROLES:
            weight = FACTOR_WEIGHT.get(role or "", 0.5)
            return _clamp(3.6 + weight * self.latent + gauss(0, 1.2 - weight), 1, 5)
        base = 3.8 + 0.9 * self.latent
        if role in ("repurchase_intent", "referral_intent"):
            base -= 0.3
        return _clamp(base + gauss(0, 0.5), 1, 5)

    def nps(self) -> int:
        return _clamp(7.5 + 1.8 * self.latent + self.rng.gauss(0, 1.2), 0, 10)

    def value(self, q: Question) -> Any:
        rng = self.rng
        if not q.required and q.type != "text" and rng.random() < 0.15:
            return None  # optional questions are sometimes skipped
        if q.type == "nps":
            return self.nps()
        if q.type == "rating":
            return self.rating(q.role)
        if q.type == "single_choice":
            pick = 0 if self.latent > -0.3 else (1 if self.latent > -1.0 else 2)
            return q.choices[min(pick, len(q.choices) - 1)]
        if q.type == "multiple_choice":
            if self.latent > 0 or rng.random() < 0.5:
                return None
            return rng.sample(list(q.choices), k=min(2, len(q.choices)))
        if rng.random() < 0.8:
            return None
        return rng.choice(COMMENTS_HIGH if self.latent > 0 else COMMENTS_LOW)


def _values(definition: SurveyDefinition, respondent: _Respondent) -> dict[str, Any]:
    values = {q.id: respondent.value(q) for q in definition.questions}
    return {k: v for k, v in values.items() if v is not None}


def seed(crm: CRM, rng: random.Random, customer_ids: list[int],
         anchor: dt.datetime) -> DemoSection:
    now = utcnow()
    today = anchor
    projects = sorted({p.code for p in crm.projects.list()})
    # A project's satisfaction level: the first (on sale now) does a bit better.
    project_effect = {code: 0.25 - 0.4 * i for i, code in enumerate(projects)}
    yearly = service.trigger_yearly(crm, now=now)
    latent: dict[int, float] = {}
    definitions: dict[str, SurveyDefinition] = {}

    def answer_some(items: list[service.Invitation], open_before: dt.datetime) -> int:
        batch: list[service.AnswerItem] = []
        for inv in items:
            if inv.due_at >= open_before or rng.random() >= ANSWER_SHARE:
                continue
            window = (min(inv.expires_at, today) - inv.due_at).total_seconds()
            # Always draw, so that how long the run took (a window of seconds) never
            # shifts the random stream. Invitations made today are answered now.
            share = rng.random()
            at = inv.due_at + dt.timedelta(seconds=share * (window - 60)) if window > 60 else None
            if inv.customer_id not in latent:
                latent[inv.customer_id] = rng.gauss(0.3, 1.0)
            level = latent[inv.customer_id] + project_effect.get(inv.project or "", 0.0)
            definition = definitions.get(inv.survey)
            if definition is None:
                definition = definitions[inv.survey] = service.get_definition(crm, inv.survey)
            batch.append(service.AnswerItem(
                inv.id, _values(definition, _Respondent(rng, level)), at))
        # One transaction per batch: the values were drawn above in the same order.
        for start in range(0, len(batch), ANSWER_BATCH):
            service.answer_many(crm, batch[start:start + ANSWER_BATCH])
        return len(batch)

    pending = service.invitations(crm, status="pending")
    # Check-ins whose day has come, and the yearly survey of this run.
    answer_some([i for i in pending if i.trigger != "case"], today)
    answer_some([i for i in pending if i.trigger == "yearly"], now + dt.timedelta(seconds=1))
    called_back = _close_old_loop_cases(crm, today)
    # Closing those cases sent CSAT invitations; answer some with the others.
    # Only the CSAT survey's: a case's invitation is always to it (csat_for_case_in).
    csat = service.invitations(crm, status="pending", survey=settings(crm).csat_survey)
    now = utcnow()  # the call-backs were just closed: every CSAT is due by now
    answer_some([i for i in csat if i.trigger == "case"], now + dt.timedelta(seconds=1))
    service.expire(crm, now=today)
    return summary(crm, yearly_invited=yearly.invited, called_back=called_back,
                   due_by=today + dt.timedelta(days=1))


def _close_old_loop_cases(crm: CRM, today: dt.datetime) -> int:
    """Cases detractors opened 30 days before today (midnight) were called back and
    closed."""
    old = [case_id for case_id, answered_at in service.loop_cases(crm)
           if today - answered_at >= dt.timedelta(days=30)]
    if not old:
        return 0
    # One unit of work for all call-backs (a commit per resolve and per close was most
    # of this step), each case resolved then closed in the order loop_cases gives.
    crm.cases.transition_many(step for case_id in old
                              for step in ((case_id, "resolve", "回访后已处理"),
                                           (case_id, "close", None)))
    return len(old)


def summary(crm: CRM, *, due_by: dt.datetime, yearly_invited: int = 0,
            called_back: int = 0) -> DemoSection:
    """The section's rows; invitations counted as due are those due by ``due_by``."""
    by_status = service.status_counts(crm)
    due = service.due(crm, now=due_by)
    rows: list[tuple[str, str]] = [
        ("invitations", f"{sum(by_status.values())} ({by_status.get('answered', 0)} answered, "
                        f"{len(due)} due today, {by_status.get('expired', 0)} "
                        f"expired, {yearly_invited} yearly this run)"),
    ]
    for s in score_table(crm, period="all", by_survey=False):
        code = s.project or "(no project)"
        nps = "-" if s.nps is None else f"{s.nps:+d}"
        rows.append((f"{code} NPS", f"{nps} (n={s.nps_answers}: {s.promoters} promoters, "
                                    f"{s.passives} passives, {s.detractors} detractors)"))
        csat = "-" if s.csat is None else f"{s.csat}%"
        rows.append((f"{code} CSAT", f"{csat} ({s.satisfied} of {s.csat_answers} rated 4-5)"))
        l3 = "-" if s.l3 is None else f"{s.l3}%"
        rows.append((f"{code} L3 loyal", f"{l3} ({s.loyal} of {s.l3_respondents} respondents)"))
    strongest = [d for d in score_drivers(crm) if d.r is not None][:3]
    rows.append(("strongest drivers", ", ".join(f"{d.factor} r={d.r:.2f} (n={d.n})"
                                                for d in strongest) or "-"))
    opened = len(service.loop_cases(crm))
    rows.append(("cases from detractors", f"{opened} opened, {called_back} called back "
                                          "and closed"))
    return DemoSection(title="Surveys: NPS, CSAT, L3 loyalty", rows=rows)
