"""Survey definitions: validated pydantic models, the built-in surveys, and the
validation of one set of answers against a definition.

A definition comes from code (the built-ins below, or ``define_survey``), from
``[survey.definitions.KEY]`` in ``recrm.toml``, or from a TOML/JSON file given to
``recrm survey define``. All three go through the same models, so a bad
definition is refused with the place that is wrong before any invitation uses it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recrm_core import InvalidInput, check_storable

QuestionType = Literal["nps", "rating", "single_choice", "multiple_choice", "text"]

#: the three questions of the L3 loyalty index (Pulte's "loyal" owner)
L3_ROLES: tuple[str, ...] = ("overall_satisfaction", "repurchase_intent", "referral_intent")
#: satisfaction factors: the drivers correlated with overall satisfaction
FACTOR_ROLES: tuple[str, ...] = (
    "service", "handover_readiness", "sales_staff", "quality", "value", "design",
    "amenities", "location",
)
ROLES: tuple[str, ...] = (*L3_ROLES, "nps", *FACTOR_ROLES)
Role = Literal[
    "overall_satisfaction", "repurchase_intent", "referral_intent", "nps",
    "service", "handover_readiness", "sales_staff", "quality", "value", "design",
    "amenities", "location",
]

#: (lowest, highest) score of the numeric question types
SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "rating": (1, 5)}

#: which question types may carry a role: NPS is the 0–10 question by definition;
#: CSAT and the drivers are read from 1–5 ratings; referral intent may be asked
#: either way (the classic "would you recommend" is a 0–10 question).
_ROLE_TYPES: dict[str, tuple[str, ...]] = {
    "nps": ("nps",),
    "referral_intent": ("rating", "nps"),
    **{role: ("rating",) for role in ("overall_satisfaction", "repurchase_intent",
                                      *FACTOR_ROLES)},
}

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_QUESTION_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
#: placeholders an invitation text may use
PLACEHOLDERS: tuple[str, ...] = ("name", "title", "link", "project", "expires")
DEFAULT_INVITATION_TEXT = "{name}您好，诚邀您参加「{title}」：{link}（{expires}前有效）"
_TEXT_LIMIT = 2000


class Question(BaseModel):
    """One question. ``role`` marks what the score means (NPS, an L3 question or a
    satisfaction factor); scores, drivers and closing the loop read questions by role."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str
    type: QuestionType
    text: str = Field(min_length=1, max_length=500)
    role: Role | None = None
    required: bool = True
    choices: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _QUESTION_ID.match(v):
            raise ValueError(
                f"question id {v!r} must be lower-case letters, digits and _ "
                "(starting with a letter, at most 32)"
            )
        return v

    @field_validator("choices")
    @classmethod
    def _choices(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(c.strip() for c in v)
        if any(not c for c in cleaned):
            raise ValueError("a choice is empty")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("choices repeat")
        return cleaned

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        choice = self.type in ("single_choice", "multiple_choice")
        if choice and len(self.choices) < 2:
            raise ValueError(f"question {self.id!r}: a {self.type} question needs at least "
                             "two choices")
        if not choice and self.choices:
            raise ValueError(f"question {self.id!r}: only choice questions have choices")
        if self.role is not None and self.type not in _ROLE_TYPES[self.role]:
            allowed = " or ".join(_ROLE_TYPES[self.role])
            raise ValueError(f"question {self.id!r}: role {self.role} needs a {allowed} "
                             f"question, not {self.type}")
        return self

    @property
    def scale(self) -> tuple[int, int] | None:
        return SCALES.get(self.type)


class SurveyBody(BaseModel):
    """A definition without its key (the key is the table name under
    ``[survey.definitions]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    description: str | None = None
    #: the message body sent with the invitation; placeholders: {name} {title}
    #: {link} {project} {expires}
    invitation_text: str = DEFAULT_INVITATION_TEXT
    questions: tuple[Question, ...] = Field(min_length=1)

    @field_validator("invitation_text")
    @classmethod
    def _placeholders(cls, v: str) -> str:
        try:
            parsed = list(string.Formatter().parse(v))
        except ValueError as exc:
            raise ValueError(f"invitation_text: {exc}") from None
        names = {f for _, f, _, _ in parsed if f is not None}
        # A conversion or format spec ({name!x}, {link:d}) would only fail when the
        # invitation is sent, leaving it claimed and never delivered: refuse it here.
        shaped = sorted({f for _, f, spec, conv in parsed if f is not None and (spec or conv)})
        if shaped:
            raise ValueError(f"invitation_text placeholders take no conversion or format "
                             f"spec: {shaped}")
        unknown = sorted(names - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(f"invitation_text uses unknown placeholders {unknown}; "
                             f"allowed: {', '.join(PLACEHOLDERS)}")
        return v

    @field_validator("questions")
    @classmethod
    def _unique(cls, questions: tuple[Question, ...]) -> tuple[Question, ...]:
        seen: set[str] = set()
        roles: set[str] = set()
        for q in questions:
            if q.id in seen:
                raise ValueError(f"question id {q.id!r} is used twice")
            seen.add(q.id)
            if q.role is not None:
                if q.role in roles:
                    # one score per role and answer, or scores would double-count
                    raise ValueError(f"role {q.role} is given to two questions")
                roles.add(q.role)
        return questions

    def by_role(self, role: str) -> Question | None:
        return next((q for q in self.questions if q.role == role), None)

    @property
    def has_l3(self) -> bool:
        return all(self.by_role(r) is not None for r in L3_ROLES)


class SurveyDefinition(SurveyBody):
    """A survey as the API returns and accepts it."""

    key: str

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not _KEY.match(v):
            raise ValueError(f"survey key {v!r} must be lower-case letters, digits and _ "
                             "(starting with a letter, at most 64)")
        return v


def with_key(key: str, body: SurveyBody) -> SurveyDefinition:
    return SurveyDefinition(key=key, **body.model_dump())


# -- answers -----------------------------------------------------------------------------


def _whole(question: Question, raw: Any) -> int:
    low, high = question.scale or (0, 0)
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and re.fullmatch(r"[+-]?\d+", raw.strip()):
        value = int(raw.strip())
    if value is None or not low <= value <= high:
        raise InvalidInput(
            question.id, f"{raw!r} is not a whole number from {low} to {high}"
        )
    return value


def _choice(question: Question, raw: Any) -> str:
    if not isinstance(raw, str) or raw.strip() not in question.choices:
        raise InvalidInput(
            question.id,
            f"unknown choice {raw!r}; choose one of {', '.join(question.choices)}",
        )
    return raw.strip()


def _is_blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str | list | tuple) and not (
        raw.strip() if isinstance(raw, str) else raw))


def _storable(text: str) -> bool:
    try:
        check_storable(text)
    except ValueError:
        return False
    return True


def validate_answers(definition: SurveyBody, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check one set of answers against ``definition`` and return them normalised
    (numbers as int, choices trimmed, multiple choices as lists in definition
    order). Raises InvalidInput naming the question: an unknown question, a score
    out of range, an unknown choice, a required question left blank."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("answers", "answers must be an object of question id -> answer")
    by_id = {q.id: q for q in definition.questions}
    for qid in raw:
        if qid not in by_id:
            raise InvalidInput(str(qid), f"no such question; questions: {', '.join(by_id)}")
    clean: dict[str, Any] = {}
    for q in definition.questions:
        value = raw.get(q.id)
        if _is_blank(value):
            if q.required:
                raise InvalidInput(q.id, "required question not answered")
            continue
        if q.type in SCALES:
            clean[q.id] = _whole(q, value)
        elif q.type == "single_choice":
            clean[q.id] = _choice(q, value)
        elif q.type == "multiple_choice":
            items = re.split(r"[,，]", value) if isinstance(value, str) else value
            if not isinstance(items, list | tuple):
                raise InvalidInput(q.id, f"expected a list of choices, got {value!r}")
            picked = {_choice(q, item) for item in items if not _is_blank(item)}
            if not picked:
                raise InvalidInput(q.id, "required question not answered")
            clean[q.id] = [c for c in q.choices if c in picked]
        else:
            if not isinstance(value, str):
                raise InvalidInput(q.id, f"expected text, got {value!r}")
            if len(value.strip()) > _TEXT_LIMIT:
                raise InvalidInput(q.id, f"text is longer than {_TEXT_LIMIT} characters")
            # PostgreSQL text cannot hold NUL, and a lone surrogate (JSON "\ud800") is
            # no UTF-8 at all: either would fail later, in the case that closes the loop
            if not _storable(value):
                raise InvalidInput(q.id, "text contains a NUL or an invalid character")
            clean[q.id] = value.strip()
    return clean


# -- built-in surveys --------------------------------------------------------------------

_COMMENT = Question(id="comment", type="text", text="还有什么想告诉我们的？", required=False)


def _rating(qid: str, role: str | None, text: str, required: bool = True) -> Question:
    return Question(id=qid, type="rating", role=role, text=text,
                    required=required)


_NPS = Question(id="nps", type="nps", role="nps",
                text="您有多大可能向亲友推荐我们？（0-10分）")
_L3 = (
    _rating("overall", "overall_satisfaction", "您对房屋和社区的整体满意度如何？（1-5分）"),
    _rating("repurchase", "repurchase_intent", "如果再次购房，您会再选择我们吗？（1-5分）"),
    _rating("referral", "referral_intent", "您愿意把我们的项目推荐给亲友吗？（1-5分）"),
)

BUILTIN: dict[str, SurveyBody] = {
    "csat": SurveyBody(
        title="服务满意度回访",
        description="sent when a service case is closed (CSAT)",
        invitation_text="{name}您好，您的服务单已办结，请为本次服务打分：{link}（{expires}前有效）",
        questions=(
            _rating("satisfaction", "overall_satisfaction", "您对本次服务的整体满意度？（1-5分）"),
            Question(id="resolved", type="single_choice", text="您的问题解决了吗？",
                     choices=("已解决", "部分解决", "未解决")),
            _rating("staff", "service", "处理人员的服务态度如何？（1-5分）", required=False),
            _COMMENT,
        ),
    ),
    "handover_checkin": SurveyBody(
        title="业主入住回访",
        description="check-ins after the handover (3, 11, 23 and 35 months by default)",
        questions=(
            _NPS,
            *_L3,
            _rating("readiness", "handover_readiness", "交房时房屋的完成度如何？", False),
            _rating("quality", "quality", "工程质量如何？", False),
            _rating("service", "service", "物业与售后服务如何？", False),
            _rating("sales", "sales_staff", "置业顾问的服务如何？", False),
            _rating("value", "value", "房屋的性价比如何？", False),
            _rating("design", "design", "户型设计如何？", False),
            _rating("amenities", "amenities", "社区配套如何？", False),
            _rating("location", "location", "地段与交通如何？", False),
            Question(id="issues", type="multiple_choice", required=False,
                     text="入住后遇到过哪些问题？",
                     choices=("渗漏", "墙面开裂", "门窗", "水电", "噪音", "其他")),
            _COMMENT,
        ),
    ),
    "yearly": SurveyBody(
        title="年度业主满意度调查",
        description="once a year, every owner",
        questions=(
            _NPS,
            *_L3,
            _rating("quality", "quality", "工程质量如何？", False),
            _rating("service", "service", "物业与售后服务如何？", False),
            _rating("amenities", "amenities", "社区配套如何？", False),
            _rating("value", "value", "房屋的性价比如何？", False),
            _COMMENT,
        ),
    ),
}

__all__ = [
    "BUILTIN",
    "FACTOR_ROLES",
    "L3_ROLES",
    "PLACEHOLDERS",
    "ROLES",
    "SCALES",
    "Question",
    "QuestionType",
    "Role",
    "SurveyBody",
    "SurveyDefinition",
    "validate_answers",
    "with_key",
]
