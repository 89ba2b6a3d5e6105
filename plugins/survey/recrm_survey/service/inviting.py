"""Invitations: consent, creating them (once per key), reading them, those due."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    bindparam,
    column,
    func,
    select,
    values,
)

from recrm_core import (
    CRM,
    HIDDEN,
    Actor,
    InvalidInput,
    Refused,
    UnitOfWork,
    consent_granted_clause,
    consent_withdrawn_clause,
    insert_or_ignore_many,
    utcnow,
)
from recrm_core.access import require_role

from ..settings import settings
from ..tables import SurveyInvitation
from .clock import _aware
from .records import MAX_LIMIT, READERS, STAFF, Invitation, Outcome
from .surveys import definition_in


def _to_invitation(row: SurveyInvitation) -> Invitation:
    return Invitation(
        id=row.id, customer_id=row.customer_id, survey=row.survey_key, trigger=row.trigger,
        project=row.project, unit=row.unit, case_id=row.case_id,
        months_after=row.months_after, year=row.year, channel=row.channel,
        status=row.status, created_at=row.created_at, due_at=row.due_at,
        expires_at=row.expires_at, sent_at=row.sent_at, detail=row.detail, token=row.token,
    )


def consent_blocks_clause(
    customer_id: ColumnElement[int], channel: str, require_opt_in: bool
) -> ColumnElement[bool]:
    """SQL: consent keeps the customer from a survey on ``channel``.

    The newest ``surveys`` record for that channel decides (the core keeps consent
    per channel, and the invitation goes out on exactly one); without any record
    the customer is invited unless ``require_opt_in`` is set.
    """
    if require_opt_in:
        return ~consent_granted_clause(customer_id, channel, "surveys")
    return consent_withdrawn_clause(customer_id, channel, "surveys")


#: (channel, require_opt_in) -> the prebuilt ``SELECT <blocks>`` for one customer
_BLOCKS_QUERIES: dict[tuple[str, bool], Select[Any]] = {}


def consent_blocks(uow: UnitOfWork, customer_id: int, channel: str) -> bool:
    """Whether consent keeps ``customer_id`` from a survey on ``channel``."""
    opt_in = settings(uow.crm).require_opt_in
    query = _BLOCKS_QUERIES.get((channel, opt_in))
    if query is None:
        # Built once per channel and setting (building the clause costs more than
        # running it) and run with the customer as a parameter.
        query = _BLOCKS_QUERIES[(channel, opt_in)] = select(
            consent_blocks_clause(bindparam("cid", type_=Integer), channel, opt_in))
    return bool(uow.session.scalar(query, {"cid": customer_id}))


def blocked_of(uow: UnitOfWork, customer_ids: list[int], channel: str) -> set[int]:
    """Which of ``customer_ids`` consent keeps from a survey on ``channel``: one
    query for a whole batch."""
    if not customer_ids:
        return set()
    if len(customer_ids) == 1:
        # The prebuilt statement: building the batch's VALUES costs more than the
        # query for one customer (a hook's batch of one).
        [cid] = customer_ids
        return {cid} if consent_blocks(uow, cid, channel) else set()
    # A CTE, not VALUES in FROM: SQLite does not accept column names on a derived table.
    batch = values(column("customer_id", Integer), name="batch").data(
        [(cid,) for cid in customer_ids]
    ).cte()
    return set(uow.session.scalars(
        select(batch.c.customer_id).where(
            consent_blocks_clause(batch.c.customer_id, channel, settings(uow.crm).require_opt_in)
        )
    ))


class NewInvitation(NamedTuple):
    """One invitation to create (:func:`invite_many_in`)."""

    customer_id: int
    trigger: str
    dedupe_key: str
    due_at: dt.datetime
    project: str | None = None
    unit: str | None = None
    case_id: int | None = None
    months_after: int | None = None
    year: int | None = None


def invite_in(
    uow: UnitOfWork,
    customer_id: int,
    survey_key: str,
    *,
    trigger: str,
    dedupe_key: str,
    due_at: dt.datetime,
    project: str | None = None,
    unit: str | None = None,
    case_id: int | None = None,
    months_after: int | None = None,
    year: int | None = None,
    check_consent: bool = True,
) -> tuple[Outcome, int | None]:
    """Create one invitation inside ``uow``: ``("invited", id)``, ``("already",
    None)`` when ``dedupe_key`` was used before, or ``("no_consent", None)``.
    ``check_consent=False`` for a caller that filtered its customers already
    (``blocked_of``)."""
    definition_in(uow.session, uow.crm, survey_key)  # an unknown survey is an error here
    if check_consent and consent_blocks(uow, customer_id, settings(uow.crm).channel):
        return "no_consent", None
    [found] = invite_many_in(uow, survey_key, [NewInvitation(
        customer_id, trigger, dedupe_key, due_at, project, unit, case_id, months_after, year)])
    return found


def invite_many_in(uow: UnitOfWork, survey_key: str,
                   items: Sequence[NewInvitation]) -> list[tuple[Outcome, int | None]]:
    """Create invitations to ``survey_key`` inside ``uow`` (customers filtered for
    consent by the caller), in order: per item ``("invited", id)``, or ``("already",
    None)`` when its ``dedupe_key`` was used before (earlier in ``items`` too)."""
    crm = uow.crm
    conf = settings(crm)
    definition_in(uow.session, crm, survey_key)  # an unknown survey is an error here
    now = utcnow()
    expiry = dt.timedelta(days=conf.invitation_expiry_days)
    rows = [{
        "customer_id": item.customer_id, "survey_key": survey_key, "trigger": item.trigger,
        "dedupe_key": item.dedupe_key, "token": new_token(), "project": item.project,
        "unit": item.unit, "case_id": item.case_id, "months_after": item.months_after,
        "year": item.year, "channel": conf.channel, "status": "pending", "created_at": now,
        "due_at": item.due_at, "expires_at": item.due_at + expiry,
    } for item in items]
    # ON CONFLICT DO NOTHING: two triggers racing on one key both finish, the
    # database keeps one; a key twice in ``items`` is invited on its first item.
    found = insert_or_ignore_many(uow.session, SurveyInvitation, rows,
                                  on=[SurveyInvitation.dedupe_key], returning=SurveyInvitation.id)
    return [("already", None) if new_id is None else ("invited", int(new_id))
            for new_id in found]


def invite(
    crm: CRM,
    customer_id: int,
    survey_key: str,
    *,
    project: str | None = None,
    due_at: dt.datetime | None = None,
    actor: Actor | None = None,
) -> Invitation:
    """Invite one customer by hand (``recrm survey trigger --customer``). Refused
    when consent keeps the customer from surveys."""
    require_role(actor, STAFF, "invite customers to surveys")
    due = _aware(due_at, "due_at")
    # Projects are never deleted: this read needs no place in our transaction.
    code = crm.projects.get(project).code if project is not None else None
    with crm.unit_of_work(actor) as uow:
        cid = crm.customers.resolve_for_write_in(uow, customer_id)
        outcome, new_id = invite_in(uow, cid, survey_key, trigger="manual",
                                    dedupe_key=f"manual:{secrets.token_hex(8)}", due_at=due,
                                    project=code)
        if outcome == "no_consent":
            raise Refused(f"customer {cid} does not consent to surveys by "
                          f"{settings(crm).channel}")
        row = uow.session.get_one(SurveyInvitation, new_id)
        return _to_invitation(row)


def invitations(
    crm: CRM,
    *,
    customer_id: int | None = None,
    survey: str | None = None,
    status: str | None = None,
    actor: Actor | None = None,
) -> list[Invitation]:
    """Invitations, oldest due first, filtered in SQL, as ``actor`` may read them
    (:func:`invitation_for`); refused to partners."""
    require_role(actor, READERS, "see survey invitations")
    query = select(SurveyInvitation).order_by(SurveyInvitation.due_at, SurveyInvitation.id)
    if customer_id is not None:
        query = query.where(SurveyInvitation.customer_id == customer_id)
    if survey is not None:
        query = query.where(SurveyInvitation.survey_key == survey)
    if status is not None:
        query = query.where(SurveyInvitation.status == status)
    with crm.unit_of_work(actor, readonly=True) as uow:
        return [invitation_for(crm, actor, _to_invitation(r))
                for r in uow.session.scalars(query)]


def status_counts(crm: CRM, *, actor: Actor | None = None) -> dict[str, int]:
    """How many invitations are in each status: an aggregate, for every role."""
    with crm.unit_of_work(actor, readonly=True) as uow:
        return {str(status): int(n) for status, n in uow.session.execute(
            select(SurveyInvitation.status, func.count()).group_by(SurveyInvitation.status))}


def invitation_for(crm: CRM, actor: Actor | None, invitation: Invitation) -> Invitation:
    """An invitation as ``actor`` may read it: for a role that reads no free text
    (analysts), the unit (a flat number: with the customer, a home address), the
    detail (a transport's words, which may quote an address) and the link token (it
    answers as the customer) are hidden."""
    if actor is None or crm.access.free_text(actor, "") != HIDDEN:
        return invitation
    return invitation.model_copy(update={
        "unit": crm.access.free_text(actor, invitation.unit),
        "detail": crm.access.free_text(actor, invitation.detail), "token": HIDDEN,
    })


def new_token() -> str:
    """An invitation's link token: 24 URL-safe characters (144 random bits), never
    starting with ``-``, which a shell command such as ``recrm survey answer TOKEN``
    would read as an option (one token in 64 did)."""
    while True:
        token = secrets.token_urlsafe(18)
        if not token.startswith("-"):
            return token


def _due_clause(now: dt.datetime) -> Any:
    return (
        (SurveyInvitation.status == "pending")
        & (SurveyInvitation.due_at <= now)
        & (SurveyInvitation.expires_at > now)
    )


def due(crm: CRM, *, now: dt.datetime | None = None, limit: int | None = None,
        actor: Actor | None = None) -> list[Invitation]:
    """Invitations waiting to be sent at ``now``: pending, due, not expired, as
    ``actor`` may read them (:func:`invitation_for`); refused to partners."""
    require_role(actor, READERS, "see survey invitations")
    at = _aware(now, "now")
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"limit must be from 1 to {MAX_LIMIT}")
    query = (select(SurveyInvitation).where(_due_clause(at))
             .order_by(SurveyInvitation.due_at, SurveyInvitation.id).limit(limit))
    with crm.unit_of_work(actor, readonly=True) as uow:
        return [invitation_for(crm, actor, _to_invitation(r))
                for r in uow.session.scalars(query)]
