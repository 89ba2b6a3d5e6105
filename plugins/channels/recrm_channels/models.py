"""Pydantic models: what the channels service takes and returns (ORM rows stay inside)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .settings import Rules


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Agency(_Out):
    code: str = Field(description="agency code")
    name: str = Field(description="agency name")
    status: str = Field(description="active or suspended")
    contact: str | None = Field(default=None, description="contact person or phone")
    created_at: dt.datetime
    suspended_at: dt.datetime | None = None


class Agent(_Out):
    id: str = Field(description="agent id, also their staff id (role partner)")
    agency: str = Field(description="agency code")
    name: str
    mobile: str | None = Field(default=None, description="work mobile (E.164)")


class RuleSet(_Out):
    project: str
    version: int = Field(description="0: the [channels] defaults, in force before version 1")
    effective_from: dt.datetime | None = Field(description="in force from (None: always)")
    rules: Rules


class RegistrationIn(BaseModel):
    """A registration as an agency's API key sends it (the key's staff id is the agent)."""

    model_config = ConfigDict(extra="forbid")

    project: str = Field(description="project code")
    mobile: str = Field(description="the customer's mobile")
    name: str | None = Field(default=None, max_length=100, description="the customer's name")


class AgentRegistrationIn(BaseModel):
    """One registration of ``Channels.register_many``: what ``Channels.register`` takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str | None = Field(default=None, description="the agent (a partner: themselves)")
    project: str = Field(description="project code")
    mobile: str = Field(description="the customer's mobile")
    name: str | None = Field(default=None, description="the customer's name")
    at: dt.datetime | None = Field(default=None, description="when (default: now)")


class VisitIn(BaseModel):
    """One visit of ``Channels.visits``: what ``Channels.visit`` takes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mobile: str = Field(description="the visitor's mobile")
    agent: str | None = Field(default=None, description="the accompanying agent, if any")
    name: str | None = Field(default=None, description="the visitor's name")
    at: dt.datetime | None = Field(default=None, description="when (default: now)")


#: a registration's states, as read now
RegistrationState = Literal["pending", "confirmed", "converted", "expired", "released",
                            "rejected"]


class Registration(_Out):
    id: int
    agency: str
    agent: str
    project: str
    mobile: str | None = Field(description="E.164; masked (前三后四) for partners")
    name: str | None = Field(default=None, description="masked for partners")
    customer_id: int | None = Field(default=None, description="hidden from partners")
    state: str = Field(description="pending, confirmed, converted, expired, released "
                       "or rejected; read as of now")
    reason: str | None = Field(default=None, description="why it is in this state")
    rule_version: int = Field(description="the rule-set version it is judged under")
    registered_at: dt.datetime
    valid_until: dt.datetime
    confirmed_at: dt.datetime | None = None
    protected_until: dt.datetime | None = None
    converted_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    time_left_seconds: int | None = Field(
        default=None, description="until the window or the protection ends (pending or "
        "confirmed only)")


class Transition(_Out):
    state: str
    reason: str | None
    rule_version: int
    at: dt.datetime


class Explanation(_Out):
    registration: Registration
    state: str
    rule_version: int | None
    explanation: str
    times: dict[str, dt.datetime]
    transitions: list[Transition]


class SweepResult(_Out):
    checked: int
    expired: int
    released: int
