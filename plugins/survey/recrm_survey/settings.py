"""``[survey]`` in ``recrm.toml``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from recrm_core import CRM

from .definitions import SurveyBody

NAME = "survey"

Channel = Literal["email", "sms", "phone", "wechat"]
Priority = Literal["low", "normal", "high", "urgent"]


class SurveySettings(BaseModel):
    """Every setting of the survey plugin, with its default.

    Consent: a customer is invited unless the newest ``surveys`` consent record for
    the invitation's ``channel`` withdraws it. A customer with no record at all is
    invited too — a satisfaction survey of one's own customers after a service or
    a handover is commonly covered by legitimate interest — unless
    ``require_opt_in`` is set, in which case only a granting record invites.
    """

    model_config = ConfigDict(extra="forbid")

    channel: Channel = "sms"
    require_opt_in: bool = False
    handover_schedule_months: list[int] = Field(default_factory=lambda: [3, 11, 23, 35])
    #: days after the triggering event (case closed, yearly run) an invitation becomes due
    invitation_due_days: int = Field(default=0, ge=0, le=365)
    #: days after its due date an invitation may still be sent and answered
    invitation_expiry_days: int = Field(default=30, ge=1, le=3650)
    #: an NPS answer at or below this opens a service case (detractors: 0–6)
    detractor_threshold: int = Field(default=6, ge=0, le=10)
    #: an overall-satisfaction rating (1–5) at or below this opens a service case
    low_rating_threshold: int = Field(default=2, ge=1, le=5)
    close_the_loop: bool = True
    case_category: str = Field(default="complaint", min_length=1, max_length=32)
    case_priority: Priority = "high"
    #: the survey link in the message: ``{token}`` is the invitation's link token,
    #: ``{base}`` the core's ``public_base_url`` (where ``recrm serve`` answers
    #: ``/s/<token>`` with the survey page); a template of your own survey site may
    #: leave ``{base}`` out
    link_template: str = "{base}/s/{token}"
    #: extra definitions, ``[survey.definitions.KEY]``; a key equal to a built-in
    #: survey replaces it (declared before the trigger keys, which are checked
    #: against it)
    definitions: dict[str, SurveyBody] = Field(default_factory=dict)
    #: the survey each trigger sends; None (in code) switches the trigger off. They
    #: must be built in or under ``definitions``: the triggers run inside the core's
    #: transactions, and a typo must not make closing a case fail.
    csat_survey: str | None = "csat"
    handover_survey: str | None = "handover_checkin"
    yearly_survey: str | None = "yearly"

    @field_validator("csat_survey", "handover_survey", "yearly_survey")
    @classmethod
    def _known(cls, v: str | None, info: ValidationInfo) -> str | None:
        from .definitions import BUILTIN

        configured = info.data.get("definitions") or {}
        if v is not None and v not in BUILTIN and v not in configured:
            raise ValueError(f"no survey {v!r}: use a built-in one "
                             f"({', '.join(sorted(BUILTIN))}) or define it under "
                             f"[survey.definitions.{v}]")
        return v

    @field_validator("handover_schedule_months")
    @classmethod
    def _months(cls, v: list[int]) -> list[int]:
        if any(m < 1 or m > 600 for m in v):
            raise ValueError("months must be between 1 and 600")
        if len(set(v)) != len(v):
            raise ValueError("a month is listed twice")
        return sorted(v)

    @field_validator("link_template")
    @classmethod
    def _link(cls, v: str) -> str:
        if "{token}" not in v:
            raise ValueError("the link must contain {token}")
        try:
            v.format(token="t", base="b")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{token}} and {{base}} may be used: {exc}") from None
        return v

    @field_validator("definitions")
    @classmethod
    def _keys(cls, v: dict[str, SurveyBody]) -> dict[str, SurveyBody]:
        from .definitions import SurveyDefinition

        for key in v:
            SurveyDefinition.model_validate({"key": key, "title": "t",
                                             "questions": [{"id": "q", "type": "text",
                                                            "text": "q"}]})
        return v


def settings(crm: CRM) -> SurveySettings:
    """The CRM's ``[survey]`` settings."""
    found: SurveySettings = crm.settings_for(NAME)
    return found
