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
"""

from __future__ import annotations

import calendar
import datetime as dt
import secrets
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple, cast

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    bindparam,
    column,
    func,
    insert,
    select,
    update,
    values,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    HIDDEN,
    Actor,
    Customer,
    InvalidInput,
    Message,
    NotFound,
    RecrmError,
    Refused,
    UnitOfWork,
    consent_granted_clause,
    consent_withdrawn_clause,
    insert_or_ignore_many,
    utcnow,
    valid_id,
)
from recrm_core.access import require_role

from .definitions import BUILTIN, SurveyDefinition, _storable, validate_answers, with_key
from .settings import SurveySettings, settings
from .tables import SurveyAnswer, SurveyDefinitionRow, SurveyInvitation, SurveyScore

Outcome = Literal["invited", "already", "no_consent"]
#: the largest id the INTEGER id columns hold on PostgreSQL
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


# -- models ----------------------------------------------------------------------------------


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


# -- time --------------------------------------------------------------------------------------


def _aware(value: dt.datetime | None, field: str) -> dt.datetime:
    if value is None:
        return utcnow()
    if value.tzinfo is None:
        raise InvalidInput(field, f"{field} needs a time zone")
    return value


def add_months(at: dt.datetime, months: int, crm: CRM) -> dt.datetime:
    """``at`` plus whole calendar months in the business time zone; the day is
    clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    local = at.astimezone(crm.config.zone)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day).astimezone(dt.UTC)


def period_month(at: dt.datetime, crm: CRM) -> str:
    return at.astimezone(crm.config.zone).strftime("%Y-%m")


# -- definitions -------------------------------------------------------------------------------


def code_definitions(crm: CRM) -> dict[str, tuple[SurveyDefinition, str]]:
    """Built-in and ``recrm.toml`` definitions (the latter replace the former).

    Built once per settings object: every answer, invitation and schedule looks a
    definition up, and validating the models anew cost ~0.3 ms a call (1.4 s of the
    demo). The cache holds the settings object, so its identity cannot be reused.
    Callers read the result; they never change it."""
    conf = settings(crm)
    cached = _CODE_DEFINITIONS.get(id(conf))
    if cached is not None and cached[0] is conf:
        return cached[1]
    found = {key: (with_key(key, body), "builtin") for key, body in BUILTIN.items()}
    for key, body in conf.definitions.items():
        found[key] = (with_key(key, body), "config")
    if len(_CODE_DEFINITIONS) > 16:  # tests build many CRMs: keep the cache small
        _CODE_DEFINITIONS.clear()
    _CODE_DEFINITIONS[id(conf)] = (conf, found)
    return found


_CODE_DEFINITIONS: dict[int, tuple[SurveySettings, dict[str, tuple[SurveyDefinition, str]]]] = {}


def definition_in(session: Session, crm: CRM, key: str) -> SurveyDefinition:
    """The survey ``key`` (code and configuration first, then the database)."""
    code = code_definitions(crm).get(key)
    if code is not None:
        return code[0]
    row = session.get(SurveyDefinitionRow, key)
    if row is None:
        raise NotFound(f"no survey {key!r}")
    return SurveyDefinition.model_validate({**row.definition, "key": key})


def get_definition(crm: CRM, key: str) -> SurveyDefinition:
    with crm.unit_of_work(readonly=True) as uow:
        return definition_in(uow.session, crm, key)


def parse_definition(data: SurveyDefinition | Mapping[str, Any]) -> SurveyDefinition:
    """Validate a definition; a bad one is InvalidInput naming the place
    (``questions.1.type: ...``)."""
    if isinstance(data, SurveyDefinition):
        return data
    if not isinstance(data, Mapping):
        raise InvalidInput("definition", "a survey definition is an object (a TOML table)")
    try:
        return SurveyDefinition.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(where or "definition",
                           err["msg"].removeprefix("Value error, ")) from None


def define_survey(crm: CRM, data: SurveyDefinition | Mapping[str, Any], *,
                  actor: Actor | None = None) -> SurveyDefinition:
    """Store a survey definition in the database (create, or replace one that has
    no invitations yet). Keys of built-in and configured surveys are refused: change
    those in ``recrm.toml``."""
    require_role(actor, STAFF, "define surveys")
    definition = parse_definition(data)
    code = code_definitions(crm).get(definition.key)
    if code is not None:
        raise Refused(f"survey {definition.key!r} is defined in {code[1]}; "
                      "choose another key (or change it in recrm.toml)")
    body = definition.model_dump(mode="json", exclude={"key"})
    now = utcnow()
    with crm.unit_of_work(actor) as uow:
        session = uow.session
        row = session.get(SurveyDefinitionRow, definition.key, with_for_update=True)
        if row is None:
            session.add(SurveyDefinitionRow(key=definition.key, definition=body,
                                            created_at=now, updated_at=now))
        else:
            used = session.scalar(select(func.count()).select_from(SurveyInvitation)
                                  .where(SurveyInvitation.survey_key == definition.key))
            if used:
                # Answers are validated and scored against the definition: changing
                # the questions under existing invitations would corrupt them.
                raise Refused(f"survey {definition.key!r} already has {used} invitation(s); "
                              "define the new version under a new key")
            row.definition, row.updated_at = body, now
    return definition


def list_surveys(crm: CRM, *, actor: Actor | None = None) -> list[SurveyInfo]:
    """Every survey with its counts of invitations and answers: an aggregate, for
    every role."""
    with crm.unit_of_work(actor, readonly=True) as uow:
        session = uow.session
        defs: dict[str, tuple[SurveyDefinition, str]] = dict(code_definitions(crm))
        for row in session.scalars(select(SurveyDefinitionRow)):
            defs.setdefault(row.key, (SurveyDefinition.model_validate(
                {**row.definition, "key": row.key}), "database"))
        invitations: dict[str, int] = {key: int(n) for key, n in session.execute(
            select(SurveyInvitation.survey_key, func.count()).group_by(SurveyInvitation.survey_key)
        )}
        answers: dict[str, int] = {key: int(n) for key, n in session.execute(
            select(SurveyAnswer.survey_key, func.count()).group_by(SurveyAnswer.survey_key)
        )}
    return [
        SurveyInfo(key=key, title=d.title, source=source, questions=len(d.questions),
                   roles=[q.role for q in d.questions if q.role],
                   invitations=invitations.get(key, 0), answers=answers.get(key, 0))
        for key, (d, source) in sorted(defs.items())
    ]


# -- invitations -------------------------------------------------------------------------------


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
        cid = crm.customers.resolve_in(uow, customer_id)
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


# -- sending (outbox) --------------------------------------------------------------------------


def expire(crm: CRM, *, now: dt.datetime | None = None, actor: Actor | None = None) -> int:
    """Mark pending invitations whose window closed as expired; how many."""
    require_role(actor, STAFF, "expire survey invitations")
    at = _aware(now, "now")
    with crm.unit_of_work(actor) as uow:
        result = uow.session.execute(
            update(SurveyInvitation)
            .where(SurveyInvitation.status == "pending", SurveyInvitation.expires_at <= at)
            .values(status="expired")
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _claim(crm: CRM, invitation_id: int, now: dt.datetime,
           actor: Actor | None = None) -> tuple[str, SurveyInvitation | None]:
    """Claim one invitation for sending, committed before anything is sent.

    The conditional UPDATE is the lock: of two senders only one sees rowcount 1
    (PostgreSQL re-checks the WHERE after waiting for the other's row lock; SQLite
    has one writer). A claimed invitation is never claimed again, so a crash after
    the claim loses at most that one message instead of sending it twice.
    """
    with crm.unit_of_work(actor) as uow:
        session = uow.session
        result = session.execute(
            update(SurveyInvitation)
            .where(SurveyInvitation.id == invitation_id, _due_clause(now))
            .values(status="sending", claimed_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return "skipped", None
        row = session.get_one(SurveyInvitation, invitation_id)
        session.refresh(row)
        if consent_blocks(uow, row.customer_id, row.channel):
            row.status, row.detail = "cancelled", "consent withdrawn before sending"
            return "cancelled", None
        session.expunge(row)
        return "claimed", row


def _finish(crm: CRM, invitation_id: int, status: str, actor: Actor | None = None,
            **values: Any) -> None:
    with crm.unit_of_work(actor) as uow:
        uow.session.execute(
            update(SurveyInvitation)
            .where(SurveyInvitation.id == invitation_id, SurveyInvitation.status == "sending")
            .values(status=status, **values)
            .execution_options(synchronize_session=False)
        )


def _recipient(customer: Customer, channel: str) -> str | None:
    if channel == "email":
        return customer.email
    return customer.mobiles[0] if customer.mobiles else None


def survey_link(crm: CRM, token: str, conf: SurveySettings | None = None) -> str:
    """The link of an invitation's survey: ``link_template`` with its ``{token}`` and
    ``{base}`` (the core's ``public_base_url``) filled in."""
    conf = conf or settings(crm)
    return conf.link_template.format(token=token, base=crm.config.public_base_url)


def invitation_message(
    crm: CRM, row: SurveyInvitation | Invitation, customer: Customer,
    definition: SurveyDefinition, conf: SurveySettings,
) -> Message | None:
    """The message for one invitation, or None when the customer has no address
    on the invitation's channel."""
    to = _recipient(customer, row.channel)
    if to is None:
        return None
    token = row.token
    survey = row.survey_key if isinstance(row, SurveyInvitation) else row.survey
    expires = row.expires_at.astimezone(crm.config.zone).strftime("%Y-%m-%d")
    body = definition.invitation_text.format(
        name=customer.name or "尊敬的业主", title=definition.title,
        link=survey_link(crm, token, conf), project=row.project or "",
        expires=expires,
    )
    return Message(
        channel=row.channel,
        to=to, subject=definition.title, body=body, customer_id=customer.id,
        headers={"X-Recrm-Survey": survey, "X-Recrm-Invitation": str(row.id)},
    )


def send_due(
    crm: CRM, *, limit: int | None = None, now: dt.datetime | None = None,
    actor: Actor | None = None,
) -> SendResult:
    """Send every due invitation (at most ``limit``) through ``crm.send_message``.

    Each invitation is claimed in its own committed transaction before delivery
    and marked ``sent`` (or ``failed``) afterwards, so a re-run, a crash or a second
    sender at the same moment never sends one twice. A transport that raises or
    answers ``ok=False`` marks the invitation ``failed`` with the reason; it is not
    retried automatically (the message may have left).

    Only an admin (or the integrator's code, ``actor`` None) sends: a message needs
    its recipient's name and address in full. A run that sent or failed anything
    appends one ``bulk_send`` entry to the audit log: the surveys and the counts,
    no customer and no address.
    """
    require_role(actor, SENDERS, "send surveys")
    at = _aware(now, "now")
    result = SendResult(expired=expire(crm, now=at, actor=actor))
    conf = settings(crm)
    candidates = [i.id for i in due(crm, now=at, limit=limit, actor=actor)]
    per_survey: dict[str, dict[str, int]] = {}
    try:
        for invitation_id in candidates:
            state, row = _claim(crm, invitation_id, at, actor)
            if row is None:
                if state == "cancelled":
                    result.cancelled += 1
                else:
                    result.skipped += 1
                continue
            counts = per_survey.setdefault(row.survey_key, {"sent": 0, "failed": 0})
            outcome = _deliver(crm, row, conf, actor)
            counts[outcome] += 1
            if outcome == "sent":
                result.sent += 1
                result.invitation_ids.append(row.id)
            else:
                result.failed += 1
    finally:
        # Also when a run is interrupted: what left before that is recorded.
        if result.sent or result.failed:
            crm.audit.append(BULK_SEND, actor=actor, details={
                "plugin": "survey", "surveys": sorted(per_survey),
                "sent": result.sent, "failed": result.failed,
                "cancelled": result.cancelled, "expired": result.expired,
                "skipped": result.skipped, "by_survey": per_survey,
            })
    return result


def _deliver(crm: CRM, row: SurveyInvitation, conf: SurveySettings,
             actor: Actor | None) -> Literal["sent", "failed"]:
    """Deliver one claimed invitation and mark it ``sent`` or ``failed``."""
    # The recipient in full (no actor): the message goes to the real address.
    customer = crm.customers.get(row.customer_id)
    message = invitation_message(crm, row, customer, get_definition(crm, row.survey_key), conf)
    if message is None:
        _finish(crm, row.id, "failed", actor,
                detail=f"customer has no {row.channel} address")
        return "failed"
    try:
        delivery = crm.send_message(message)
    except Exception as exc:  # one broken message must not stop the batch
        # A PluginError already names the transport plugin and the cause.
        why = str(exc) if isinstance(exc, RecrmError) else f"{type(exc).__name__}: {exc}"
        _finish(crm, row.id, "failed", actor, detail=why[:300])
        return "failed"
    if delivery.ok:
        _finish(crm, row.id, "sent", actor, sent_at=utcnow(), transport=delivery.transport,
                detail=delivery.detail)
        return "sent"
    _finish(crm, row.id, "failed", actor, transport=delivery.transport,
            detail=(delivery.detail or "the transport refused it")[:300])
    return "failed"


# -- answers -----------------------------------------------------------------------------------


def _invitation_ref(ref: int | str) -> int | str:
    """An invitation reference as the lock query looks it up: an id (int) or a link
    token; what cannot be either is refused here, before any query."""
    if isinstance(ref, bool) or not isinstance(ref, int | str):
        raise InvalidInput("invitation", f"{ref!r} is not an invitation id or link token")
    # isascii: "³".isdigit() is true but int() refuses it
    if isinstance(ref, int) or (ref.isascii() and ref.isdigit()):
        number = int(ref)
        if not valid_id(number):  # beyond the id column: no such row, not a crash
            raise NotFound(f"no survey invitation {ref!r}")
        return number
    if not _storable(ref):  # undecodable bytes from the command line, or a NUL
        raise NotFound(f"no survey invitation {ref!r}")
    return ref


#: the invitations of a batch of answers, locked, in id order (two answering
#: transactions lock their common rows in the same order: no deadlock)
_LOCK_INVITATIONS = (
    select(SurveyInvitation)
    .where(SurveyInvitation.id.in_(bindparam("ids", expanding=True))
           | SurveyInvitation.token.in_(bindparam("tokens", expanding=True)))
    .order_by(SurveyInvitation.id)
    .with_for_update()
)


def _locked_invitations(session: Session,
                        refs: Sequence[int | str]) -> list[SurveyInvitation]:
    """The invitations ``refs`` name (ids or link tokens), locked, one row per
    reference in the order given; NotFound names the first reference that matches
    nothing."""
    keys = [_invitation_ref(ref) for ref in refs]
    found: dict[int | str, SurveyInvitation] = {}
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start:start + _IN_CHUNK]
        for row in session.scalars(_LOCK_INVITATIONS, {
            "ids": [k for k in chunk if isinstance(k, int)],
            "tokens": [k for k in chunk if isinstance(k, str)],
        }):
            found[row.id] = found[row.token] = row
    rows: list[SurveyInvitation] = []
    for ref, key in zip(refs, keys, strict=True):
        hit = found.get(key)
        if hit is None:
            raise NotFound(f"no survey invitation {ref!r}")
        rows.append(hit)
    return rows


def _low_score(definition: SurveyDefinition, values: Mapping[str, Any],
               conf: SurveySettings) -> str | None:
    """Why this answer needs a call back, or None (closing the loop)."""
    nps = definition.by_role("nps")
    if nps is not None and nps.id in values and values[nps.id] <= conf.detractor_threshold:
        return f"NPS {values[nps.id]}"
    overall = definition.by_role("overall_satisfaction")
    if (overall is not None and overall.id in values
            and values[overall.id] <= conf.low_rating_threshold):
        return f"overall satisfaction {values[overall.id]}/5"
    return None


#: whether an invitation may be answered (:func:`link_state`)
LinkState = Literal["open", "answered", "cancelled", "not_due", "expired"]


def link_state(row: SurveyInvitation | Invitation, at: dt.datetime) -> LinkState:
    """Whether the invitation may be answered at ``at``: ``open``, or why not (what
    :func:`answer` refuses; the survey page says it politely)."""
    if row.status == "answered":
        return "answered"
    if row.status == "cancelled":
        return "cancelled"
    if at < row.due_at:
        return "not_due"
    if at >= row.expires_at:
        return "expired"
    return "open"


class AnswerItem(NamedTuple):
    """One answer of :func:`answer_many`: the invitation (id or link token), the
    values, and optionally when it was answered (back-dated)."""

    invitation: int | str
    values: Mapping[str, Any]
    answered_at: dt.datetime | None = None


def answer(
    crm: CRM,
    invitation: int | str,
    values: Mapping[str, Any],
    *,
    answered_at: dt.datetime | None = None,
    actor: Actor | None = None,
) -> Answer:
    """Record the answer to an invitation (by id or link token).

    Validated against the survey's definition (InvalidInput names the question).
    Refused when the invitation was answered already (the database enforces it),
    was cancelled, is not due yet, or expired. ``answered_at`` back-dates it
    (imports, the demo). An NPS at or below ``detractor_threshold`` or an overall
    satisfaction at or below ``low_rating_threshold`` opens a service case in the
    same transaction; its id is stored on the answer.
    """
    [found] = answer_many(crm, [AnswerItem(invitation, values, answered_at)], actor=actor)
    return found


def answer_many(crm: CRM, items: Sequence[AnswerItem], *,
                actor: Actor | None = None) -> list[Answer]:
    """Record many answers in one transaction: each as :func:`answer` records it
    (the same validation, refusals, lock and closing the loop), all or none (the
    first refusal rolls the whole batch back). The answers in the order given; an
    invitation named twice is refused as answered already."""
    require_role(actor, STAFF, "record survey answers")
    ats = [_aware(item.answered_at, "answered_at") for item in items]
    now = utcnow()
    if any(at > now for at in ats):
        raise InvalidInput("answered_at", "answered_at is in the future")
    if not items:
        return []
    conf = settings(crm)
    with crm.unit_of_work(actor) as uow:
        session = uow.session
        rows = _locked_invitations(session, [item.invitation for item in items])
        definitions: dict[str, SurveyDefinition] = {}
        pending: list[_Pending] = []
        for item, row, at in zip(items, rows, ats, strict=True):
            _refuse_unless_open(crm, row, at)
            definition = definitions.get(row.survey_key)
            if definition is None:
                definition = definitions[row.survey_key] = definition_in(
                    session, crm, row.survey_key)
            pending.append(_Pending(row, definition, validate_answers(definition, item.values),
                                    at))
            # In memory at once, so the same invitation later in the batch is refused.
            row.status = "answered"
        return _record(uow, pending, conf)


class _Pending(NamedTuple):
    """A validated answer of :func:`answer_many`, not written yet."""

    row: SurveyInvitation
    definition: SurveyDefinition
    clean: dict[str, Any]
    at: dt.datetime


def _refuse_unless_open(crm: CRM, row: SurveyInvitation, at: dt.datetime) -> None:
    state = link_state(row, at)
    if state == "answered":
        raise Refused(f"survey invitation {row.id} was answered already")
    if state == "cancelled":
        raise Refused(f"survey invitation {row.id} was cancelled ({row.detail})")
    if state == "not_due":
        raise Refused(f"survey invitation {row.id} is not due until "
                      f"{row.due_at.astimezone(crm.config.zone):%Y-%m-%d}")
    if state == "expired":
        raise Refused(f"survey invitation {row.id} expired on "
                      f"{row.expires_at.astimezone(crm.config.zone):%Y-%m-%d}")


def _record(uow: UnitOfWork, pending: list[_Pending], conf: SurveySettings) -> list[Answer]:
    """Write validated answers (rows locked, states checked): the answers in one
    executemany, their scores in another, then a case per unhappy answer."""
    crm, session = uow.crm, uow.session
    try:
        with session.begin_nested():
            # Core rows, not ORM objects: nothing reads them back as objects, and a
            # flush per answer was most of the demo's answering time.
            ids = [int(i) for i in session.scalars(_INSERT_ANSWER, [
                {"invitation_id": p.row.id, "customer_id": p.row.customer_id,
                 "survey_key": p.row.survey_key, "project": p.row.project,
                 "answered_at": p.at, "period_month": period_month(p.at, crm),
                 "answers": p.clean, "case_id": None}
                for p in pending
            ])]
    except IntegrityError:
        # Only reachable when the row locks above are not enough (never on the two
        # supported backends); the unique constraint still has the last word.
        which = ", ".join(str(p.row.id) for p in pending)
        raise Refused(f"survey invitation {which} was answered already") from None
    scores = [{"answer_id": answer_id, "question_id": q.id, "role": q.role,
               "value": p.clean[q.id], "scale_max": q.scale[1]}
              for answer_id, p in zip(ids, pending, strict=True)
              for q in p.definition.questions if q.scale is not None and q.id in p.clean]
    if scores:
        session.execute(_INSERT_SCORE, scores)
    found: list[Answer] = []
    cases: list[dict[str, int]] = []
    for answer_id, p in zip(ids, pending, strict=True):
        case_id = _close_the_loop(uow, p, answer_id, conf)
        if case_id is not None:
            cases.append({"answer_id": answer_id, "case_id": case_id})
        found.append(Answer(id=answer_id, invitation_id=p.row.id, customer_id=p.row.customer_id,
                            survey=p.row.survey_key, project=p.row.project, answered_at=p.at,
                            answers=p.clean, case_id=case_id))
    if cases:
        session.execute(_SET_ANSWER_CASE, cases)
    return found


def _close_the_loop(uow: UnitOfWork, p: _Pending, answer_id: int,
                    conf: SurveySettings) -> int | None:
    """The service case an unhappy answer opens (its id), or None."""
    reason = _low_score(p.definition, p.clean, conf) if conf.close_the_loop else None
    if reason is None:
        return None
    row, definition = p.row, p.definition
    comments = [str(p.clean[q.id]) for q in definition.questions
                if q.type == "text" and q.id in p.clean]
    case = uow.crm.cases.open_in(uow, {
        "customer_id": row.customer_id,
        "category": conf.case_category,
        "priority": conf.case_priority,
        "project": row.project,
        "subject": f"{definition.title}: {reason}"[:200],
        "channel": "survey",
        "description": "\n".join([*comments, f"survey answer {answer_id} "
                                  f"(invitation {row.id}, survey {row.survey_key})"]),
    }, opened_at=p.at)
    return case.id


# On the Core tables: an ORM-enabled INSERT runs through the ORM's bulk machinery
# for nothing these need (no objects, no events).
_ANSWERS = cast(Table, SurveyAnswer.__table__)
_INSERT_ANSWER = insert(_ANSWERS).returning(_ANSWERS.c.id, sort_by_parameter_order=True)
_INSERT_SCORE = insert(cast(Table, SurveyScore.__table__))
_SET_ANSWER_CASE = (update(_ANSWERS).where(_ANSWERS.c.id == bindparam("answer_id"))
                    .values(case_id=bindparam("case_id")))


def answers(crm: CRM, *, customer_id: int | None = None,
            survey: str | None = None, actor: Actor | None = None) -> list[Answer]:
    """Answers, oldest first, as ``actor`` may read them: refused to partners; the
    answers to ``text`` questions (free text) hidden from analysts."""
    require_role(actor, READERS, "see survey answers")
    query = select(SurveyAnswer).order_by(SurveyAnswer.answered_at, SurveyAnswer.id)
    if customer_id is not None:
        query = query.where(SurveyAnswer.customer_id == customer_id)
    if survey is not None:
        query = query.where(SurveyAnswer.survey_key == survey)
    with crm.unit_of_work(actor, readonly=True) as uow:
        found = [Answer(id=r.id, invitation_id=r.invitation_id, customer_id=r.customer_id,
                        survey=r.survey_key, project=r.project, answered_at=r.answered_at,
                        answers=r.answers, case_id=r.case_id)
                 for r in uow.session.scalars(query)]
        if actor is None or crm.access.free_text(actor, "") != HIDDEN:
            return found
        texts: dict[str, set[str] | None] = {}
        for a in found:
            if a.survey not in texts:
                texts[a.survey] = _text_questions(uow.session, crm, a.survey)
        return [_answer_for(crm, actor, a, texts[a.survey]) for a in found]


def loop_cases(crm: CRM, *, actor: Actor | None = None) -> list[tuple[int, dt.datetime]]:
    """The service cases answers opened (closing the loop), with when the answer
    was given, oldest first; refused to partners, like the answers."""
    require_role(actor, READERS, "see survey answers")
    with crm.unit_of_work(actor, readonly=True) as uow:
        return [(case_id, at) for case_id, at in uow.session.execute(
            select(SurveyAnswer.case_id, SurveyAnswer.answered_at)
            .where(SurveyAnswer.case_id.is_not(None))
            .order_by(SurveyAnswer.answered_at, SurveyAnswer.id)) if case_id is not None]


def _text_questions(session: Session, crm: CRM, key: str) -> set[str] | None:
    """The ids of the ``text`` questions of survey ``key``; None when the survey is
    unknown (a definition since removed from recrm.toml)."""
    try:
        definition = definition_in(session, crm, key)
    except NotFound:
        return None
    return {q.id for q in definition.questions if q.type == "text"}


def _answer_for(crm: CRM, actor: Actor, found: Answer, texts: set[str] | None) -> Answer:
    """An answer as ``actor`` may read it: free text (the answers to ``text``
    questions; every text of an answer whose survey is unknown) hidden."""
    shown = {
        qid: crm.access.free_text(actor, value)
        if isinstance(value, str) and (texts is None or qid in texts) else value
        for qid, value in found.answers.items()
    }
    return found.model_copy(update={"answers": shown})


# -- triggers ----------------------------------------------------------------------------------


def handover_key(customer_id: int, project: str, unit: str | None, months: int,
                 survey: str) -> str:
    return f"handover:{customer_id}:{project}:{unit or '-'}:{months}:{survey}"


class Handover(NamedTuple):
    """One handover (a step to ``owner`` at a project) that schedules check-ins."""

    customer_id: int
    project: str
    unit: str | None
    handed_over_at: dt.datetime


def schedule_checkins_in(
    uow: UnitOfWork, customer_id: int, project: str, unit: str | None,
    handed_over_at: dt.datetime,
) -> TriggerResult | None:
    """Check-ins at every month of ``handover_schedule_months`` after the handover."""
    return schedule_handovers_in(uow, [Handover(customer_id, project, unit, handed_over_at)])


def schedule_handovers_in(uow: UnitOfWork,
                          handovers: Sequence[Handover]) -> TriggerResult | None:
    """:func:`schedule_checkins_in` for many handovers, in order, with one consent
    query for the batch; the counts over all of them."""
    conf = settings(uow.crm)
    if conf.handover_survey is None or not conf.handover_schedule_months:
        return None
    result = TriggerResult(survey=conf.handover_survey)
    definition_in(uow.session, uow.crm, conf.handover_survey)  # unknown: an error first
    blocked = blocked_of(uow, sorted({h.customer_id for h in handovers}), conf.channel)
    survey = conf.handover_survey
    wanted: list[NewInvitation] = []
    for h in handovers:
        if h.customer_id in blocked:
            # One answer for the whole schedule, asked once rather than per check-in.
            _count(result, "no_consent", None)
            continue
        wanted.extend(NewInvitation(
            h.customer_id, "handover", handover_key(h.customer_id, h.project, h.unit, months,
                                                    survey),
            add_months(h.handed_over_at, months, uow.crm), project=h.project, unit=h.unit,
            months_after=months,
        ) for months in conf.handover_schedule_months)
    for outcome, new_id in invite_many_in(uow, survey, wanted):
        _count(result, outcome, new_id)
    return result


def csat_for_case_in(uow: UnitOfWork, customer_id: int, case_id: int, project: str | None,
                     closed_at: dt.datetime) -> TriggerResult | None:
    conf = settings(uow.crm)
    if conf.csat_survey is None:
        return None
    result = TriggerResult(survey=conf.csat_survey)
    outcome, new_id = invite_in(
        uow, customer_id, conf.csat_survey, trigger="case",
        dedupe_key=f"case:{case_id}:{conf.csat_survey}",
        due_at=closed_at + dt.timedelta(days=conf.invitation_due_days),
        project=project, case_id=case_id,
    )
    return _count(result, outcome, new_id)


def _count(result: TriggerResult, outcome: Outcome, new_id: int | None) -> TriggerResult:
    if outcome == "invited" and new_id is not None:
        result.invited += 1
        result.invitation_ids.append(new_id)
    elif outcome == "already":
        result.already += 1
    else:
        result.no_consent += 1
    return result


def _owner_project(customer: Customer) -> str | None:
    # An owner at several projects gets one yearly survey, about the project handed
    # over most recently (the newest relationship).
    owned = [p for p in customer.projects if p.stage == "owner"]
    if not owned:
        return None
    return max(owned, key=lambda p: (p.first_seen_at, p.project)).project


def _batched(items: Iterator[Customer], size: int) -> Iterator[list[Customer]]:
    batch: list[Customer] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def trigger_yearly(
    crm: CRM,
    *,
    year: int | None = None,
    survey: str | None = None,
    now: dt.datetime | None = None,
    actor: Actor | None = None,
) -> TriggerResult:
    """Invite every owner to the yearly survey, once per customer, survey and year.

    Streams the owners in batches (one transaction each); running it again in the
    same year invites nobody twice (the dedupe key is unique in the database, and
    a survivor of a merge who inherited an invitation is recognised too).
    """
    require_role(actor, STAFF, "invite customers to surveys")
    at = _aware(now, "now")
    conf = settings(crm)
    key = survey or conf.yearly_survey
    if key is None:
        raise Refused("the yearly survey is switched off ([survey] yearly_survey)")
    get_definition(crm, key)
    year = year or at.astimezone(crm.config.zone).year
    if not 2000 <= year <= 2100:  # the range `recrm survey trigger --year` accepts
        raise InvalidInput("year", f"year {year} is not from 2000 to 2100")
    result = TriggerResult(survey=key)
    owners = crm.segments.iter_customers({"field": "project_stage", "op": "eq", "value": "owner"})
    due_at = at + dt.timedelta(days=conf.invitation_due_days)
    for batch in _batched(owners, 500):
        with crm.unit_of_work(actor) as uow:
            invited_before = set(uow.session.scalars(
                select(SurveyInvitation.customer_id).where(
                    SurveyInvitation.customer_id.in_([c.id for c in batch]),
                    SurveyInvitation.trigger == "yearly",
                    SurveyInvitation.survey_key == key, SurveyInvitation.year == year,
                )
            ))
            blocked = blocked_of(uow, [c.id for c in batch], conf.channel)
            wanted: list[NewInvitation] = []
            for customer in batch:
                if customer.id in invited_before:
                    result.already += 1
                    continue
                if customer.id in blocked:
                    result.no_consent += 1
                    continue
                wanted.append(NewInvitation(
                    customer.id, "yearly", f"yearly:{customer.id}:{key}:{year}", due_at,
                    project=_owner_project(customer), year=year))
            for outcome, new_id in invite_many_in(uow, key, wanted):
                _count(result, outcome, new_id)
    return result


__all__ = [
    "Answer",
    "AnswerItem",
    "Handover",
    "Invitation",
    "NewInvitation",
    "SendResult",
    "SurveyInfo",
    "TriggerResult",
    "add_months",
    "answer",
    "answer_many",
    "answers",
    "blocked_of",
    "consent_blocks",
    "consent_blocks_clause",
    "csat_for_case_in",
    "define_survey",
    "definition_in",
    "due",
    "expire",
    "get_definition",
    "invitation_for",
    "invitation_message",
    "invitations",
    "invite",
    "invite_in",
    "invite_many_in",
    "link_state",
    "list_surveys",
    "loop_cases",
    "parse_definition",
    "schedule_checkins_in",
    "schedule_handovers_in",
    "send_due",
    "status_counts",
    "survey_link",
    "trigger_yearly",
]
