"""Answers: recorded once per invitation, scored, a low score closing the loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple, cast

from sqlalchemy import (
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    HIDDEN,
    Actor,
    InvalidInput,
    NotFound,
    Refused,
    UnitOfWork,
    utcnow,
    valid_id,
)
from recrm_core.access import require_role

from ..definitions import SurveyDefinition, _storable, validate_answers
from ..settings import SurveySettings, settings
from ..tables import SurveyAnswer, SurveyInvitation, SurveyScore
from .clock import _aware, period_month
from .records import _IN_CHUNK, READERS, STAFF, Answer, Invitation
from .surveys import definition_in


def _invitation_ref(ref: int | str) -> int | str:
    """An invitation reference as the lock query looks it up: an id (int) or a link
    token; what cannot be either is refused here, before any query."""
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise InvalidInput("invitation", f"{ref!r} is not an invitation id or link token")
    # isascii: "³".isdigit() is true but int() refuses it
    if isinstance(ref, int) or (ref.isascii() and ref.isdigit()):
        number = int(ref)
        if not valid_id(number):  # beyond the id column: no such row, not a crash
            raise NotFound(f"no survey invitation {ref!r}")
        return number
    if not _storable(ref):  # undecodable bytes from the command line, or a NUL
        raise NotFound(f"no survey invitation {ref!r}")
    return ref


#: the invitations of a batch of answers, locked, in id order (two answering
#: transactions lock their common rows in the same order: no deadlock)
_LOCK_INVITATIONS = (
    select(SurveyInvitation)
    .where(SurveyInvitation.id.in_(bindparam("ids", expanding=True))
           | SurveyInvitation.token.in_(bindparam("tokens", expanding=True)))
    .order_by(SurveyInvitation.id)
    .with_for_update()
)


def _locked_invitations(session: Session,
                        refs: Sequence[int | str]) -> list[SurveyInvitation]:
    """The invitations ``refs`` name (ids or link tokens), locked, one row per
    reference in the order given; NotFound names the first reference that matches
    nothing."""
    keys = [_invitation_ref(ref) for ref in refs]
    found: dict[int | str, SurveyInvitation] = {}
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start:start + _IN_CHUNK]
        for row in session.scalars(_LOCK_INVITATIONS, {
            "ids": [k for k in chunk if isinstance(k, int)],
            "tokens": [k for k in chunk if isinstance(k, str)],
        }):
            found[row.id] = found[row.token] = row
    rows: list[SurveyInvitation] = []
    for ref, key in zip(refs, keys, strict=True):
        hit = found.get(key)
        if hit is None:
            raise NotFound(f"no survey invitation {ref!r}")
        rows.append(hit)
    return rows


def _low_score(definition: SurveyDefinition, values: Mapping[str, Any],
               conf: SurveySettings) -> str | None:
    """Why this answer needs a call back, or None (closing the loop)."""
    nps = definition.by_role("nps")
    if nps is not None and nps.id in values and values[nps.id] <= conf.detractor_threshold:
        return f"NPS {values[nps.id]}"
    overall = definition.by_role("overall_satisfaction")
    if (overall is not None and overall.id in values
            and values[overall.id] <= conf.low_rating_threshold):
        return f"overall satisfaction {values[overall.id]}/5"
    return None


#: whether an invitation may be answered (:func:`link_state`)
LinkState = Literal["open", "answered", "cancelled", "not_due", "expired"]


def link_state(row: SurveyInvitation | Invitation, at: dt.datetime) -> LinkState:
    """Whether the invitation may be answered at ``at``: ``open``, or why not (what
    :func:`answer` refuses; the survey page says it politely)."""
    if row.status == "answered":
        return "answered"
    if row.status == "cancelled":
        return "cancelled"
    if at < row.due_at:
        return "not_due"
    if at >= row.expires_at:
        return "expired"
    return "open"


class AnswerItem(NamedTuple):
    """One answer of :func:`answer_many`: the invitation (id or link token), the
    values, and optionally when it was answered (back-dated)."""

    invitation: int | str
    values: Mapping[str, Any]
    answered_at: dt.datetime | None = None


def answer(
    crm: CRM,
    invitation: int | str,
    values: Mapping[str, Any],
    *,
    answered_at: dt.datetime | None = None,
    actor: Actor | None = None,
) -> Answer:
    """Record the answer to an invitation (by id or link token).

    Validated against the survey's definition (InvalidInput names the question).
    Refused when the invitation was answered already (the database enforces it),
    was cancelled, is not due yet, or expired. ``answered_at`` back-dates it
    (imports, the demo). An NPS at or below ``detractor_threshold`` or an overall
    satisfaction at or below ``low_rating_threshold`` opens a service case in the
    same transaction; its id is stored on the answer.
    """
    [found] = answer_many(crm, [AnswerItem(invitation, values, answered_at)], actor=actor)
    return found


def answer_many(crm: CRM, items: Sequence[AnswerItem], *,
                actor: Actor | None = None) -> list[Answer]:
    """Record many answers in one transaction: each as :func:`answer` records it
    (the same validation, refusals, lock and closing the loop), all or none (the
    first refusal rolls the whole batch back). The answers in the order given; an
    invitation named twice is refused as answered already."""
    require_role(actor, STAFF, "record survey answers")
    ats = [_aware(item.answered_at, "answered_at") for item in items]
    now = utcnow()
    if any(at > now for at in ats):
        raise InvalidInput("answered_at", "answered_at is in the future")
    if not items:
        return []
    conf = settings(crm)
    with crm.unit_of_work(actor) as uow:
        session = uow.session
        rows = _locked_invitations(session, [item.invitation for item in items])
        definitions: dict[str, SurveyDefinition] = {}
        pending: list[_Pending] = []
        for item, row, at in zip(items, rows, ats, strict=True):
            _refuse_unless_open(crm, row, at)
            definition = definitions.get(row.survey_key)
            if definition is None:
                definition = definitions[row.survey_key] = definition_in(
                    session, crm, row.survey_key)
            pending.append(_Pending(row, definition, validate_answers(definition, item.values),
                                    at))
            # In memory at once, so the same invitation later in the batch is refused.
            row.status = "answered"
        return _record(uow, pending, conf)


class _Pending(NamedTuple):
    """A validated answer of :func:`answer_many`, not written yet."""

    row: SurveyInvitation
    definition: SurveyDefinition
    clean: dict[str, Any]
    at: dt.datetime


def _refuse_unless_open(crm: CRM, row: SurveyInvitation, at: dt.datetime) -> None:
    state = link_state(row, at)
    if state == "answered":
        raise Refused(f"survey invitation {row.id} was answered already")
    if state == "cancelled":
        raise Refused(f"survey invitation {row.id} was cancelled ({row.detail})")
    if state == "not_due":
        raise Refused(f"survey invitation {row.id} is not due until "
                      f"{row.due_at.astimezone(crm.config.zone):%Y-%m-%d}")
    if state == "expired":
        raise Refused(f"survey invitation {row.id} expired on "
                      f"{row.expires_at.astimezone(crm.config.zone):%Y-%m-%d}")


def _record(uow: UnitOfWork, pending: list[_Pending], conf: SurveySettings) -> list[Answer]:
    """Write validated answers (rows locked, states checked): the answers in one
    executemany, their scores in another, then a case per unhappy answer."""
    crm, session = uow.crm, uow.session
    try:
        with session.begin_nested():
            # Core rows, not ORM objects: nothing reads them back as objects, and a
            # flush per answer was most of the demo's answering time.
            ids = [int(i) for i in session.scalars(_INSERT_ANSWER, [
                {"invitation_id": p.row.id, "customer_id": p.row.customer_id,
                 "survey_key": p.row.survey_key, "project": p.row.project,
                 "answered_at": p.at, "period_month": period_month(p.at, crm),
                 "answers": p.clean, "case_id": None}
                for p in pending
            ])]
    except IntegrityError:
        # Only reachable when the row locks above are not enough (never on the two
        # supported backends); the unique constraint still has the last word.
        which = ", ".join(str(p.row.id) for p in pending)
        raise Refused(f"survey invitation {which} was answered already") from None
    scores = [{"answer_id": answer_id, "question_id": q.id, "role": q.role,
               "value": p.clean[q.id], "scale_max": q.scale[1]}
              for answer_id, p in zip(ids, pending, strict=True)
              for q in p.definition.questions if q.scale is not None and q.id in p.clean]
    if scores:
        session.execute(_INSERT_SCORE, scores)
    found: list[Answer] = []
    cases: list[dict[str, int]] = []
    for answer_id, p in zip(ids, pending, strict=True):
        case_id = _close_the_loop(uow, p, answer_id, conf)
        if case_id is not None:
            cases.append({"answer_id": answer_id, "case_id": case_id})
        found.append(Answer(id=answer_id, invitation_id=p.row.id, customer_id=p.row.customer_id,
                            survey=p.row.survey_key, project=p.row.project, answered_at=p.at,
                            answers=p.clean, case_id=case_id))
    if cases:
        session.execute(_SET_ANSWER_CASE, cases)
    return found


def _close_the_loop(uow: UnitOfWork, p: _Pending, answer_id: int,
                    conf: SurveySettings) -> int | None:
    """The service case an unhappy answer opens (its id), or None."""
    reason = _low_score(p.definition, p.clean, conf) if conf.close_the_loop else None
    if reason is None:
        return None
    row, definition = p.row, p.definition
    comments = [str(p.clean[q.id]) for q in definition.questions
                if q.type == "text" and q.id in p.clean]
    case = uow.crm.cases.open_in(uow, {
        "customer_id": row.customer_id,
        "category": conf.case_category,
        "priority": conf.case_priority,
        "project": row.project,
        "subject": f"{definition.title}: {reason}"[:200],
        "channel": "survey",
        "description": "\n".join([*comments, f"survey answer {answer_id} "
                                  f"(invitation {row.id}, survey {row.survey_key})"]),
    }, opened_at=p.at)
    return case.id


# On the Core tables: an ORM-enabled INSERT runs through the ORM's bulk machinery
# for nothing these need (no objects, no events).
_ANSWERS = cast(Table, SurveyAnswer.__table__)


_INSERT_ANSWER = insert(_ANSWERS).returning(_ANSWERS.c.id, sort_by_parameter_order=True)


_INSERT_SCORE = insert(cast(Table, SurveyScore.__table__))


_SET_ANSWER_CASE = (update(_ANSWERS).where(_ANSWERS.c.id == bindparam("answer_id"))
                    .values(case_id=bindparam("case_id")))


def answers(crm: CRM, *, customer_id: int | None = None,
            survey: str | None = None, actor: Actor | None = None) -> list[Answer]:
    """Answers, oldest first, as ``actor`` may read them: refused to partners; the
    answers to ``text`` questions (free text) hidden from analysts."""
    require_role(actor, READERS, "see survey answers")
    query = select(SurveyAnswer).order_by(SurveyAnswer.answered_at, SurveyAnswer.id)
    if customer_id is not None:
        query = query.where(SurveyAnswer.customer_id == customer_id)
    if survey is not None:
        query = query.where(SurveyAnswer.survey_key == survey)
    with crm.unit_of_work(actor, readonly=True) as uow:
        found = [Answer(id=r.id, invitation_id=r.invitation_id, customer_id=r.customer_id,
                        survey=r.survey_key, project=r.project, answered_at=r.answered_at,
                        answers=r.answers, case_id=r.case_id)
                 for r in uow.session.scalars(query)]
        if actor is None or crm.access.free_text(actor, "") != HIDDEN:
            return found
        texts: dict[str, set[str] | None] = {}
        for a in found:
            if a.survey not in texts:
                texts[a.survey] = _text_questions(uow.session, crm, a.survey)
        return [_answer_for(crm, actor, a, texts[a.survey]) for a in found]


def loop_cases(crm: CRM, *, actor: Actor | None = None) -> list[tuple[int, dt.datetime]]:
    """The service cases answers opened (closing the loop), with when the answer
    was given, oldest first; refused to partners, like the answers."""
    require_role(actor, READERS, "see survey answers")
    with crm.unit_of_work(actor, readonly=True) as uow:
        return [(case_id, at) for case_id, at in uow.session.execute(
            select(SurveyAnswer.case_id, SurveyAnswer.answered_at)
            .where(SurveyAnswer.case_id.is_not(None))
            .order_by(SurveyAnswer.answered_at, SurveyAnswer.id)) if case_id is not None]


def _text_questions(session: Session, crm: CRM, key: str) -> set[str] | None:
    """The ids of the ``text`` questions of survey ``key``; None when the survey is
    unknown (a definition since removed from recrm.toml)."""
    try:
        definition = definition_in(session, crm, key)
    except NotFound:
        return None
    return {q.id for q in definition.questions if q.type == "text"}


def _answer_for(crm: CRM, actor: Actor, found: Answer, texts: set[str] | None) -> Answer:
    """An answer as ``actor`` may read it: free text (the answers to ``text``
    questions; every text of an answer whose survey is unknown) hidden."""
    shown = {
        qid: crm.access.free_text(actor, value)
        if isinstance(value, str) and (texts is None or qid in texts) else value
        for qid, value in found.answers.items()
    }
    return found.model_copy(update={"answers": shown})
