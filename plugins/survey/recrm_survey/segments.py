"""The survey's segment fields (``recrm_segment_fields``): SQL over the answers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select

from recrm_core import SegmentField

from .tables import SurveyAnswer, SurveyScore


def _latest(role: str) -> Any:
    def expression(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
        return (
            select(SurveyScore.value)
            .join(SurveyAnswer, SurveyAnswer.id == SurveyScore.answer_id)
            .where(SurveyAnswer.customer_id == customer_id, SurveyScore.role == role)
            .order_by(SurveyAnswer.answered_at.desc(), SurveyAnswer.id.desc())
            .limit(1)
            .scalar_subquery()
        )

    return expression


def _answer_count(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    return (
        select(func.count()).select_from(SurveyAnswer)
        .where(SurveyAnswer.customer_id == customer_id)
        .scalar_subquery()
    )


def fields() -> list[SegmentField]:
    """``survey.last_nps``, ``survey.last_csat`` and ``survey.answers``."""
    return [
        SegmentField(name="survey.last_nps", expression=_latest("nps"), type="int",
                     description="the customer's latest NPS answer (0-10); null if none"),
        SegmentField(name="survey.last_csat", expression=_latest("overall_satisfaction"),
                     type="int", description="the customer's latest overall-satisfaction "
                                             "rating (1-5); null if none"),
        SegmentField(name="survey.answers", expression=_answer_count, type="int",
                     description="surveys the customer answered"),
    ]
