"""The plugin's tables, declared on the shared ``recrm_core.Base`` (prefix ``survey_``).

Uniqueness is the database's job: ``dedupe_key`` makes every trigger idempotent
(one CSAT per case, one check-in per handover and month, one yearly survey per
customer, survey and year), ``survey_answers.invitation_id`` makes an invitation
answerable once, and ``token`` is the secret of the survey link.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from recrm_core import Base, UTCDateTime

#: invitation statuses: pending (not sent; due once ``due_at`` passes), sending
#: (claimed by a sender: the outbox record, never sent again), sent, failed (the
#: transport refused or raised; not retried, the outcome may be unknown),
#: cancelled (consent withdrawn before sending), expired (not sent in time),
#: answered
STATUSES: tuple[str, ...] = (
    "pending", "sending", "sent", "failed", "cancelled", "expired", "answered",
)


class SurveyDefinitionRow(Base):
    """Surveys defined at run time (``recrm survey define`` / ``define_survey``)."""

    __tablename__ = "survey_definitions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class SurveyInvitation(Base):
    __tablename__ = "survey_invitations"
    __table_args__ = (Index("ix_survey_invitations_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    survey_key: Mapped[str] = mapped_column(String(64), index=True)
    #: what created it: case, handover, yearly, manual
    trigger: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    token: Mapped[str] = mapped_column(String(48), unique=True)
    #: project code (as the core's API shows it) and unit the survey is about
    project: Mapped[str | None] = mapped_column(String(64), index=True)
    unit: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    months_after: Mapped[int | None] = mapped_column(Integer)
    year: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    transport: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(300))


class SurveyAnswer(Base):
    __tablename__ = "survey_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("survey_invitations.id"), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    # Copied from the invitation so scores group without a join.
    survey_key: Mapped[str] = mapped_column(String(64))
    project: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    #: "YYYY-MM" in the business time zone: scores group by it in SQL on any backend
    period_month: Mapped[str] = mapped_column(String(7))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: the service case this answer opened (closing the loop)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))


class SurveyScore(Base):
    """One numeric answer (NPS or rating) with its role, for set-based scoring."""

    __tablename__ = "survey_scores"
    __table_args__ = (Index("ix_survey_scores_role_answer", "role", "answer_id"),)

    answer_id: Mapped[int] = mapped_column(ForeignKey("survey_answers.id"), primary_key=True)
    question_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    role: Mapped[str | None] = mapped_column(String(32))
    value: Mapped[int] = mapped_column(Integer)
    #: the top of the question's scale (10 for NPS, 5 for ratings): L3 "top score"
    scale_max: Mapped[int] = mapped_column(Integer)


__all__ = ["STATUSES", "SurveyAnswer", "SurveyDefinitionRow", "SurveyInvitation", "SurveyScore"]
