"""What the survey functions return, and the roles and limits they check."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

Outcome = Literal["invited", "already", "no_consent"]
#: the most rows one ``due``/``send`` may take (bound for LIMIT on every backend)
MAX_LIMIT = 1_000_000_000
#: values bound per ``IN`` list (well under every backend's limit of parameters)
_IN_CHUNK = 500
#: roles that may read invitations and answers (details of one customer each)
READERS: tuple[str, ...] = ("admin", "manager", "sales", "service", "analyst")
#: roles that may define surveys, invite, trigger and record answers
STAFF: tuple[str, ...] = ("admin", "manager", "sales", "service")
#: roles that may send the due invitations: sending reads every recipient's name and
#: address in full (and the console transport prints them), which only an admin sees
SENDERS: tuple[str, ...] = ("admin",)
#: the core's audit action of a send to many customers
BULK_SEND = "bulk_send"


class SurveyInfo(BaseModel):
    key: str
    title: str
    #: builtin, config (recrm.toml) or database (``recrm survey define``)
    source: str
    questions: int
    roles: list[str]
    invitations: int = 0
    answers: int = 0


class Invitation(BaseModel):
    id: int
    customer_id: int
    survey: str
    trigger: str
    project: str | None = None
    unit: str | None = None
    case_id: int | None = None
    months_after: int | None = None
    year: int | None = None
    channel: str
    status: str
    created_at: dt.datetime
    due_at: dt.datetime
    expires_at: dt.datetime
    sent_at: dt.datetime | None = None
    detail: str | None = None
    token: str


class Answer(BaseModel):
    id: int
    invitation_id: int
    customer_id: int
    survey: str
    project: str | None = None
    answered_at: dt.datetime
    answers: dict[str, Any]
    #: the service case the answer opened (closing the loop), if any
    case_id: int | None = None


class TriggerResult(BaseModel):
    """What a trigger did: ``invited`` new invitations, ``already`` invited before
    (idempotent re-runs), ``no_consent`` customers left out for consent."""

    survey: str
    invited: int = 0
    already: int = 0
    no_consent: int = 0
    invitation_ids: list[int] = Field(default_factory=list)


class SendResult(BaseModel):
    sent: int = 0
    failed: int = 0
    #: consent withdrawn after the invitation was made
    cancelled: int = 0
    #: pending invitations whose window closed unsent
    expired: int = 0
    #: claimed by another sender running at the same moment
    skipped: int = 0
    invitation_ids: list[int] = Field(default_factory=list)
