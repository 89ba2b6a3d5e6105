"""Disputes over who brought a customer, and their rulings.

An agency disputes its own registration that was refused, expired or released, or
another agency's registration that holds the customer (the disputing agency's own
registration of that mobile at the project is then the claimant). A manager resolves
it: dismissed, nothing changes; upheld, the ruling becomes an event of 判客
(:func:`recrm_channels.attribution.attribute` replays it at its time, now and in
every later replay): the claimant's registration holds the customer, every other one
that held them ends ``released``, their commission entries are clawed back and the
claimant's registration earns the same steps under its agency's terms.

Notes are free text typed by people, so they count as personal data (exported and
erased with the registrations); explanations name the dispute's number only.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, Field
from sqlalchemy import or_, select

from recrm_core import (
    CRM,
    Actor,
    Forbidden,
    NotFound,
    Refused,
    StageChange,
    UnitOfWork,
    utcnow,
)
from recrm_core.access import require_role
from recrm_core.db import valid_id

from .attribution import CONVERTING, attribute
from .commission import KINDS, accrue_registration, clawback_in
from .service import (
    MANAGERS,
    OFFICE,
    STEP_STAGES,
    as_of,
    events_for,
    lock_person,
    rule_book,
    store_decision,
    text_of,
)
from .tables import AgentRow, DisputeRow, RegistrationRow, TermsRow

#: the states a registration may be disputed in by its own agency
OWN_DISPUTABLE = ("rejected", "expired", "released")
#: the states of another agency's registration that may be disputed
HOLDING = ("confirmed", "converted")
#: the entry kinds a lost hold gives back
EARNED = tuple(k for k in KINDS if k not in ("clawback", "withheld"))


class DisputeIn(BaseModel):
    """``POST /v1/channels/disputes``: dispute a registration."""

    registration: int = Field(description="the registration disputed")
    note: str = Field(min_length=1, max_length=500, description="why (free text)")
    agency: str | None = Field(
        default=None, description="the disputing agency (office staff disputing another "
        "agency's registration; a partner disputes for their own agency)")


class ResolveIn(BaseModel):
    """``POST /v1/channels/disputes/{id}/resolve``: a manager's ruling."""

    uphold: bool = Field(description="true: the claimant holds the customer; false: dismissed")
    note: str = Field(min_length=1, max_length=500, description="the ruling's reasons")


class Dispute(BaseModel):
    id: int
    registration: int = Field(description="the registration disputed")
    claimant: int = Field(description="the disputing agency's registration")
    agency: str = Field(description="the disputing agency")
    project: str
    state: str = Field(description="open, upheld or dismissed")
    note: str | None
    opened_by: str | None
    opened_at: dt.datetime
    resolution: str | None = None
    resolved_by: str | None = None
    resolved_at: dt.datetime | None = None


def _model(row: DisputeRow) -> Dispute:
    return Dispute(id=row.id, registration=row.registration_id, claimant=row.claimant_id,
                   agency=row.agency, project=row.project, state=row.state, note=row.note,
                   opened_by=row.opened_by, opened_at=row.opened_at,
                   resolution=row.resolution, resolved_by=row.resolved_by,
                   resolved_at=row.resolved_at)


def _note(note: str, what: str = "note") -> str:
    return text_of(note, what, 500, required=True) or ""


def _own_agency(uow: UnitOfWork, actor: Actor | None) -> str | None:
    """A partner's agency (None for office staff)."""
    if actor is None or actor.role != "partner":
        return None
    own = uow.session.get(AgentRow, actor.staff_id)
    if own is None:
        raise Forbidden("only an agency's agents dispute for it")
    return own.agency


def reaccrue_in(uow: UnitOfWork, reg: RegistrationRow, customer_id: int | None,
                now: dt.datetime, note: str) -> None:
    """Write what ``reg`` earned under its agency's terms once it holds the customer:
    the visit reward and, while converted, each subscription and contract step since
    it was made (a cancelled step earns nothing)."""
    terms = uow.session.get(TermsRow, (reg.agency, reg.project))
    if terms is None or reg.state not in HOLDING:
        return
    accrue_registration(uow, reg, terms, None, now, note=note)
    if reg.state != "converted" or customer_id is None or reg.mobile is None:
        return
    steps = {e.ref: e for e in events_for(uow, reg.mobile, reg.project, customer_id)
             if e.kind == "stage" and e.stage in CONVERTING and e.at >= reg.registered_at
             and (reg.protected_until is None or e.at <= reg.protected_until)}
    for i in reversed(uow.crm.interactions.list_in(uow.session, customer_id,
                                                   kinds=STEP_STAGES)):
        event = steps.get(i.id)
        if event is None or event.stage is None:
            continue
        amount = i.data.get("amount")
        change = StageChange(
            customer_id=customer_id, project=reg.project, old_stage=None,
            new_stage=event.stage, step=event.stage,
            unit=i.data.get("unit") if isinstance(i.data.get("unit"), str) else None,
            amount=amount if isinstance(amount, int) else None, occurred_at=event.at)
        accrue_registration(uow, reg, terms, change, now, note=note)


class Disputes:
    """``recrm_channels.disputes.Disputes(crm)``: open, resolve and list disputes."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def open(self, registration: int, note: str, *, agency: str | None = None,
             actor: Actor | None = None, now: dt.datetime | None = None) -> Dispute:
        """Dispute ``registration``: the disputing agency's own registration refused,
        expired or released, or another agency's that holds the customer (then the
        disputing agency, ``agency`` or the partner's own, needs a registration of that
        mobile at the project, which becomes the claimant)."""
        if actor is None or actor.role != "partner":
            require_role(actor, OFFICE, "open disputes")
        text = _note(note)
        now = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            own = _own_agency(uow, actor)
            if own is not None and agency not in (None, own):
                raise Forbidden("a partner disputes for their own agency only")
            row = session.get(RegistrationRow, registration) if valid_id(registration) else None
            # A partner never learns of another agency's registration, not even its id.
            if row is None or (own is not None and row.agency != own):
                raise NotFound(f"no such registration {registration}")
            if row.mobile is None:
                raise Refused(f"registration {row.id} was erased")
            claimant_agency = own or agency or row.agency
            state = as_of(row, now)[0]
            if claimant_agency == row.agency:
                if state not in OWN_DISPUTABLE:
                    raise Refused(f"registration {row.id} is {state}: an agency disputes its "
                                  f"own registration when it is {', '.join(OWN_DISPUTABLE)}")
                claimant = row
            else:
                if state not in HOLDING:
                    raise Refused(f"registration {row.id} is {state}: another agency's "
                                  "registration is disputed while it holds the customer")
                found = session.scalars(select(RegistrationRow).where(
                    RegistrationRow.mobile == row.mobile, RegistrationRow.project == row.project,
                    RegistrationRow.agency == claimant_agency)
                    .order_by(RegistrationRow.registered_at.desc(),
                              RegistrationRow.id.desc())).first()
                if found is None:
                    raise Refused(f"agency {claimant_agency} has no registration of this "
                                  "customer at the project")
                claimant = found
            # The claimant's row lock serialises two openers; the partial unique index
            # uq_channels_disputes_open holds one open dispute whatever happens.
            session.get(RegistrationRow, claimant.id, with_for_update=True)
            existing = session.scalars(select(DisputeRow).where(
                DisputeRow.claimant_id == claimant.id, DisputeRow.state == "open")).first()
            if existing is not None:
                raise Refused(f"dispute {existing.id} about registration {claimant.id} is "
                              "open already")
            created = DisputeRow(
                registration_id=row.id, claimant_id=claimant.id, agency=claimant_agency,
                project=row.project, state="open", note=text,
                opened_by=actor.staff_id if actor else None, opened_at=now)
            session.add(created)
            session.flush()
            return _model(created)

    def resolve(self, dispute: int, *, uphold: bool, note: str,
                actor: Actor | None = None, now: dt.datetime | None = None) -> Dispute:
        """Uphold or dismiss an open dispute (managers). Upholding re-attributes at once:
        see the module's description."""
        require_role(actor, MANAGERS, "resolve disputes")
        text = _note(note)
        now = now or utcnow()
        if not valid_id(dispute):
            raise NotFound(f"no such dispute {dispute}")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            mobile = uow.session.scalar(select(RegistrationRow.mobile).join(
                DisputeRow, DisputeRow.claimant_id == RegistrationRow.id)
                .where(DisputeRow.id == dispute))
        found = self.crm.customers.find(mobile=mobile) if mobile else []
        customer_id = found[0].id if found else None
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            row = session.get(DisputeRow, dispute, with_for_update=True)
            if row is None:
                raise NotFound(f"no such dispute {dispute}")
            if row.state != "open":
                raise Refused(f"dispute {row.id} was {row.state} already")
            claimant = session.get(RegistrationRow, row.claimant_id)
            assert claimant is not None
            if uphold and claimant.mobile is None:
                raise Refused(f"registration {claimant.id} was erased")
            row.state = "upheld" if uphold else "dismissed"
            row.resolution, row.resolved_at = text, now
            row.resolved_by = actor.staff_id if actor else None
            session.flush()
            if uphold:
                assert claimant.mobile is not None
                self._rule(uow, row, claimant.mobile, customer_id, now)
            return _model(row)

    def _rule(self, uow: UnitOfWork, dispute: DisputeRow, mobile: str,
              customer_id: int | None, now: dt.datetime) -> None:
        session = uow.session
        lock_person(session, dispute.project, mobile)
        rows = session.scalars(select(RegistrationRow).where(
            RegistrationRow.mobile == mobile, RegistrationRow.project == dispute.project)
            .order_by(RegistrationRow.id).with_for_update()).all()
        held = {r.id for r in rows if as_of(r, now)[0] in HOLDING}
        book = rule_book(self.crm, session, dispute.project)
        store_decision(uow, attribute(events_for(uow, mobile, dispute.project, customer_id),
                                      book, now), customer_id, now)
        why = f"dispute #{dispute.id} upheld for agency {dispute.agency}"
        for r in rows:
            if r.id in held and r.id != dispute.claimant_id and as_of(r, now)[0] not in HOLDING:
                clawback_in(uow, r, EARNED, why, now)
        claimant = session.get(RegistrationRow, dispute.claimant_id)
        assert claimant is not None
        reaccrue_in(uow, claimant, customer_id, now, why)

    def list(self, *, agency: str | None = None, state: str | None = None,
             registration: int | None = None, actor: Actor | None = None) -> list[Dispute]:
        """Disputes, newest first; a partner sees their own agency's."""
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            own = _own_agency(uow, actor)
            if own is None:
                require_role(actor, (*OFFICE, "analyst"), "list disputes")
            query = select(DisputeRow).order_by(DisputeRow.id.desc())
            if own is not None:
                query = query.where(DisputeRow.agency == own)
            if agency:
                query = query.where(DisputeRow.agency == agency)
            if state:
                query = query.where(DisputeRow.state == state)
            if registration is not None:
                query = query.where(or_(DisputeRow.registration_id == registration,
                                        DisputeRow.claimant_id == registration))
            return [_model(r) for r in uow.session.scalars(query)]
