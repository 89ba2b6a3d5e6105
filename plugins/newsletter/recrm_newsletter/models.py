"""What the plugin's API takes and returns (pydantic); rows stay in the service."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SendState = Literal["draft", "scheduled", "sending", "sent", "paused", "cancelled"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Send(_Out):
    """A campaign, or an issue of a publication, and where its sending stands."""

    id: int = Field(description="the send's id")
    name: str = Field(description="campaign name, or CODE#N for an issue")
    kind: Literal["campaign", "issue"] = Field(description="campaign or magazine issue")
    publication: str | None = Field(default=None, description="the publication of an issue")
    issue_number: int | None = Field(default=None, description="the issue's number")
    channel: str = Field(description="email or sms")
    purpose: str = Field(description="the consent purpose it is sent under")
    segment: str | None = Field(default=None, description="the saved segment it goes to")
    list_name: str | None = Field(default=None, description="or the static list")
    subject: str | None = Field(default=None, description="the email subject")
    state: SendState = Field(description="draft, scheduled, sending, sent, paused, cancelled")
    note: str | None = Field(default=None, description="why a sending send is waiting")
    scheduled_at: dt.datetime | None = Field(default=None, description="when it is due (UTC)")
    started_at: dt.datetime | None = Field(default=None, description="when sending began")
    finished_at: dt.datetime | None = Field(default=None, description="when it finished")


class SendReport(_Out):
    """A send's figures: who was in the audience and what became of each."""

    send: Send = Field(description="the send")
    audience: int = Field(description="recipients written to the outbox")
    pending: int = Field(description="not yet sent (waiting, or claimed by a sender)")
    sent: int = Field(description="handed to the transport")
    failed: int = Field(description="the transport refused or failed")
    skipped: dict[str, int] = Field(description="skipped at send time, by reason")
    bounced: int = Field(description="sent, then reported bounced")
    unsubscribed: int = Field(description="sent, then the customer withdrew consent")


class RunResult(_Out):
    """What one ``run`` did."""

    started: list[str] = Field(description="sends it started (they were due)")
    sent: int = Field(description="messages sent")
    failed: int = Field(description="messages the transport failed")
    skipped: int = Field(description="recipients skipped, with their reasons recorded")
    waiting: list[str] = Field(description="sends waiting, with why (quiet hours)")


class Suppression(_Out):
    """An address suppressed on a channel (only its keyed hash is kept)."""

    channel: str = Field(description="email or sms")
    address_hash: str = Field(description="the address's keyed hash")
    reason: str = Field(description="hard_bounce, complaint, soft_bounces or manual")
    at: dt.datetime = Field(description="when (UTC)")


class UnreadableReport(_Out):
    """A line, file or mail ``bounce ingest`` could not take as a report, and why (the
    reason never repeats the address: it is on that line for whoever fixes it)."""

    where: str = Field(description="'line N' of JSON lines, the .eml file's name, or "
                       "'message N' of an mbox")
    reason: str = Field(description="why it is not a report")


class BounceResult(_Out):
    """What ``bounce ingest`` read."""

    reports: int = Field(description="bounce and complaint reports read")
    suppressed: int = Field(description="addresses newly suppressed")
    unreadable: int = Field(description="files or lines that were not a report")
    already_read: int = Field(default=0, description="reports recorded before (read "
                              "again: nothing changed)")
    unreadable_reports: list[UnreadableReport] = Field(
        default_factory=list, description="each unreadable one: where, and why")
