"""The channels service: agencies, agents, rule versions, registrations and 判客.

Every write is one unit of work. A registration locks its agent's row (the cap) and,
on PostgreSQL, an advisory lock on (mobile, project); SQLite's ``BEGIN IMMEDIATE``
serialises writers. Stale pending rows of that mobile and project are decided under
the lock before the insert, and the partial unique index
``uq_channels_registrations_active`` keeps one active registration whatever happens.
"""

from __future__ import annotations

from .channels import MANAGERS, OFFICE, Channels, service, text_of
from .judging import (
    STEP_STAGES,
    Judging,
    events_for,
    judge_customer_in,
    judged_in_runs,
    lock_person,
    registered_pairs,
    rule_book,
    store_decision,
)
from .registrations import RegistrationRefused, as_of, registration_model, shown_in_full

__all__ = [
    "MANAGERS",
    "OFFICE",
    "STEP_STAGES",
    "Channels",
    "Judging",
    "RegistrationRefused",
    "as_of",
    "events_for",
    "judge_customer_in",
    "judged_in_runs",
    "lock_person",
    "registered_pairs",
    "registration_model",
    "rule_book",
    "service",
    "shown_in_full",
    "store_decision",
    "text_of",
]
