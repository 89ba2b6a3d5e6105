"""Privacy requests (PIPL Art. 45, 47): a respondent's data export and erasure.

``export_in`` is everything the plugin holds about one person (invitations, answers,
scores); ``erase_in`` removes it, inside the erasure's unit of work (the core then
scans every text and JSON column for the person's values and rolls back on a hit).

What the erasure does:

- ``survey_invitations``: every invitation never answered is deleted (a pending one
  can then never be sent); an answered one stays, because its answer's score does,
  without what identifies or reaches the person: link token replaced by a dead random
  one, dedupe key (it names the customer and the flat) replaced, unit, case and the
  transport's detail removed;
- ``survey_answers``: kept for the survey scores, under the erased customer record (the
  core keeps it without a personal value): NPS, CSAT and drivers count answers, and
  the L3 index counts each respondent once by that id. The text of the answers goes:
  only the numeric scale answers stay; the link to the case it opened goes;
- ``survey_scores``: kept as they are (a question, a role and a number: no person).

A ``text`` answer of another customer, or another invitation's transport detail, that
names the person's mobile, ID number or email is replaced by ``(redacted)``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select, update

from recrm_core import Customer, ErasureStep, UnitOfWork

from .tables import SurveyAnswer, SurveyInvitation, SurveyScore

#: what replaces free text that named an erased person in another customer's row
REDACTED = "(redacted)"


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def export_in(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    """The person's invitations (without the link token, a secret, or the internal
    dedupe key) and answers with their scores, JSON-able; None if there are none."""
    session, cid = uow.session, customer.id
    invitations = session.scalars(select(SurveyInvitation).where(
        SurveyInvitation.customer_id == cid).order_by(SurveyInvitation.id)).all()
    answers = session.scalars(select(SurveyAnswer).where(
        SurveyAnswer.customer_id == cid).order_by(SurveyAnswer.answered_at,
                                                  SurveyAnswer.id)).all()
    if not invitations and not answers:
        return None
    scores: dict[int, list[dict[str, Any]]] = {}
    for score in session.scalars(select(SurveyScore).where(
            SurveyScore.answer_id.in_([a.id for a in answers]))
            .order_by(SurveyScore.answer_id, SurveyScore.question_id)):
        scores.setdefault(score.answer_id, []).append(
            {"question": score.question_id, "role": score.role, "value": score.value,
             "scale_max": score.scale_max})
    return {
        "invitations": [
            {"id": i.id, "survey": i.survey_key, "trigger": i.trigger, "project": i.project,
             "unit": i.unit, "case_id": i.case_id, "months_after": i.months_after,
             "year": i.year, "channel": i.channel, "status": i.status,
             "created_at": _iso(i.created_at), "due_at": _iso(i.due_at),
             "expires_at": _iso(i.expires_at), "sent_at": _iso(i.sent_at),
             "detail": i.detail}
            for i in invitations
        ],
        "answers": [
            {"id": a.id, "invitation_id": a.invitation_id, "survey": a.survey_key,
             "project": a.project, "answered_at": _iso(a.answered_at),
             "answers": a.answers, "case_id": a.case_id, "scores": scores.get(a.id, [])}
            for a in answers
        ],
    }


def erase_in(uow: UnitOfWork, customer: Customer, merged_ids: Iterable[int]) -> list[ErasureStep]:
    """Delete or anonymise every row about ``customer`` (and the records merged into
    them); one step per table holding customer data. Never branches on a dry run."""
    session = uow.session
    ids = sorted({customer.id, *merged_ids})
    answered = set(session.scalars(select(SurveyAnswer.invitation_id).where(
        SurveyAnswer.invitation_id.in_(
            select(SurveyInvitation.id).where(SurveyInvitation.customer_id.in_(ids))))))
    gone = session.execute(
        delete(SurveyInvitation).where(SurveyInvitation.customer_id.in_(ids),
                                       SurveyInvitation.id.not_in(answered))
        .execution_options(synchronize_session=False))
    deleted = int(getattr(gone, "rowcount", 0) or 0)
    for invitation_id in sorted(answered):
        session.execute(
            update(SurveyInvitation).where(SurveyInvitation.id == invitation_id)
            .values(token=dead_token(), dedupe_key=f"erased:{invitation_id}", unit=None,
                    case_id=None, detail=None)
            .execution_options(synchronize_session=False))
    rows = session.execute(select(SurveyAnswer.id, SurveyAnswer.answers).where(
        SurveyAnswer.customer_id.in_(ids))).all()
    for answer_id, values in rows:
        session.execute(
            update(SurveyAnswer).where(SurveyAnswer.id == answer_id)
            .values(answers=scale_answers(values), case_id=None)
            .execution_options(synchronize_session=False))
    scored = session.scalars(select(SurveyScore.answer_id).where(
        SurveyScore.answer_id.in_([a for a, _ in rows]))).all()

    # Other customers' free text that names the person's mobile, ID number or email.
    # The core's rule for "names the person" (any spelling, not inside a longer number).
    from recrm_core.privacy import PersonValues  # the erasure's module: not at start-up

    needles = PersonValues.of(customer, names=False)
    redacted_answers = redacted_invitations = 0
    if needles:
        for answer_id, values in session.execute(select(SurveyAnswer.id, SurveyAnswer.answers)
                                                 .where(SurveyAnswer.customer_id.not_in(ids))):
            cleaned = {k: REDACTED if isinstance(v, str) and needles.named_in(v) else v
                       for k, v in (values or {}).items()}
            if cleaned != values:
                redacted_answers += 1
                session.execute(update(SurveyAnswer).where(SurveyAnswer.id == answer_id)
                                .values(answers=cleaned)
                                .execution_options(synchronize_session=False))
        hits = [i for i, detail in session.execute(
            select(SurveyInvitation.id, SurveyInvitation.detail)
            .where(SurveyInvitation.detail.is_not(None))) if needles.named_in(detail)]
        if hits:
            redacted_invitations = len(hits)
            session.execute(update(SurveyInvitation).where(SurveyInvitation.id.in_(hits))
                            .values(detail=REDACTED)
                            .execution_options(synchronize_session=False))
    session.flush()
    return [
        ErasureStep(
            table=SurveyInvitation.__tablename__, deleted=deleted,
            anonymised=len(answered) + redacted_invitations,
            basis="answered invitations kept (their answers' scores count) without link "
                  "token, dedupe key, unit, case or delivery detail" if answered else None),
        ErasureStep(
            table=SurveyAnswer.__tablename__, anonymised=len(rows) + redacted_answers,
            basis="kept for NPS/CSAT/L3 scores under the erased customer record (no personal "
                  "value left in it; L3 counts a respondent once by it): only the numeric "
                  "scale answers stay, text answers and the case link removed"
            if rows else None),
        ErasureStep(
            table=SurveyScore.__tablename__, retained=len(scored),
            basis="anonymous scores (question, role, value) kept for the survey scores"
            if scored else None),
    ]


def scale_answers(values: dict[str, Any] | None) -> dict[str, int]:
    """The numeric (scale) answers of an answer: what the scores are made of. Text
    answers and choices go."""
    return {k: v for k, v in (values or {}).items()
            if isinstance(v, int) and not isinstance(v, bool)}


def dead_token() -> str:
    """A unique token no link was ever made with: the answered invitation can never be
    opened as the person again."""
    return f"erased-{secrets.token_hex(16)}"


__all__ = ["REDACTED", "dead_token", "erase_in", "export_in", "scale_answers"]
