"""Definitions, invitations, sending and answers: the plugin's public functions.

Every function takes the CRM; the ``*_in`` variants take the unit of work of an
operation already running (the hooks use them, so their writes commit or roll back
with the core's). Nothing here sends inside a transaction: ``send_due`` records
the claim of an invitation in the database first (the outbox), commits, and only
then hands the message to ``crm.send_message``.

Who sees what (``crm.access``): every read takes the ``actor``. Invitations and
answers are details of one customer, refused to partners (an agency sees a
customer's masked name and mobile only); analysts read them without free text (a
``text`` answer, a failure's detail), without units (a flat number with the
customer is a home address) and without link tokens (a token answers as
the customer). Surveys, scores and drivers are aggregates for every role. Writes are
for staff (``STAFF``); ``send_due`` reads every recipient's address in full, so only
an admin (or the integrator's code) runs it, and each run that sent or failed
something appends one ``bulk_send`` entry (counts only) to the audit log.

One module a concept: ``records``, ``clock``, ``surveys``, ``inviting``, ``sending``,
``answering``, ``triggers``. Every public name is importable from here
(``from recrm_survey.service import X``).
"""

from __future__ import annotations

from .answering import AnswerItem, LinkState, answer, answer_many, answers, link_state, loop_cases
from .clock import add_months, period_month
from .inviting import (
    NewInvitation,
    blocked_of,
    consent_blocks,
    consent_blocks_clause,
    due,
    invitation_for,
    invitations,
    invite,
    invite_in,
    invite_many_in,
    new_token,
    status_counts,
)
from .records import (
    BULK_SEND,
    MAX_LIMIT,
    READERS,
    SENDERS,
    STAFF,
    Answer,
    Invitation,
    Outcome,
    SendResult,
    SurveyInfo,
    TriggerResult,
)
from .sending import expire, invitation_message, send_due, survey_link
from .surveys import (
    code_definitions,
    define_survey,
    definition_in,
    get_definition,
    list_surveys,
    parse_definition,
)
from .triggers import (
    Handover,
    csat_for_case_in,
    handover_key,
    schedule_checkins_in,
    schedule_handovers_in,
    trigger_yearly,
)

__all__ = [
    "BULK_SEND",
    "MAX_LIMIT",
    "READERS",
    "SENDERS",
    "STAFF",
    "Answer",
    "AnswerItem",
    "Handover",
    "Invitation",
    "LinkState",
    "NewInvitation",
    "Outcome",
    "SendResult",
    "SurveyInfo",
    "TriggerResult",
    "add_months",
    "answer",
    "answer_many",
    "answers",
    "blocked_of",
    "code_definitions",
    "consent_blocks",
    "consent_blocks_clause",
    "csat_for_case_in",
    "define_survey",
    "definition_in",
    "due",
    "expire",
    "get_definition",
    "handover_key",
    "invitation_for",
    "invitation_message",
    "invitations",
    "invite",
    "invite_in",
    "invite_many_in",
    "link_state",
    "list_surveys",
    "loop_cases",
    "new_token",
    "parse_definition",
    "period_month",
    "schedule_checkins_in",
    "schedule_handovers_in",
    "send_due",
    "status_counts",
    "survey_link",
    "trigger_yearly",
]
