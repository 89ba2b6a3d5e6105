"""Commission terms per agency and project, and the commission ledger.

Each registration earns, as its agency's terms at the project say:

- ``visit``: the visit reward, once the registration is confirmed;
- ``subscription``: the subscription reward, on a subscription while it is converted;
- ``deal``: the deal's commission (a percent of the contract amount, or a fixed sum)
  on the contract (the move to ``buyer``) while it is converted — once per unit, not
  per party: co-buyers of one unit never double it.

Every entry is written once: its ``key`` is unique, so retries and concurrent stage
moves insert it once whoever gets there first. A deal cancelled (a forced move back
below ``buyer``) is reversed by a ``clawback`` entry and the registration returns to
``confirmed`` (protection still running) or ``released``. Money is ``Decimal`` held in
``Numeric(14, 2)``, never a float.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel
from sqlalchemy import bindparam, func, or_, select, update

from recrm_core import (
    CRM,
    Actor,
    Customer,
    Forbidden,
    InvalidInput,
    NotFound,
    StageChange,
    UnitOfWork,
    insert_or_ignore,
    mask_mobile,
    project_code,
    utcnow,
)
from recrm_core.access import require_role
from recrm_core.values import STAGE_RANK, parse_amount

from .service import MANAGERS, OFFICE, as_of, judge_customer_in, shown_in_full
from .settings import settings
from .tables import AgencyRow, AgentRow, CommissionEntryRow, RegistrationRow, TermsRow

CENT = Decimal("0.01")
HELD = ("confirmed", "converted")
#: the audit actions the plugin records
AUDIT_ACTIONS = {
    "channels.terms": "an agency's commission terms at a project set",
}
#: the entry kinds
KINDS = ("visit", "subscription", "deal", "clawback", "withheld")


class Terms(BaseModel):
    agency: str
    project: str
    percent: Decimal | None
    fixed: Decimal | None
    visit_reward: Decimal
    subscription_reward: Decimal
    updated_at: dt.datetime


class CommissionEntry(BaseModel):
    id: int
    registration: int
    agency: str
    project: str
    kind: str
    amount: Decimal
    unit: str | None
    deal_amount: Decimal | None
    reverses: int | None
    note: str | None
    at: dt.datetime
    #: the registration's mobile (masked for partners; None once erased)
    mobile: str | None


def money(value: Decimal | int | str | None, what: str, places: int = 2) -> Decimal | None:
    """An exact amount of CNY with two decimals (``places`` for a percent), never a
    float, by the core's :func:`~recrm_core.values.parse_amount`; None stays None."""
    try:
        parsed = parse_amount(value, places=places)
    except ValueError as exc:
        raise InvalidInput(what, f"{what} {exc}") from None
    if parsed is None and value is not None:  # a blank string is no amount, not "none"
        raise InvalidInput(what, f"{what}: {str(value)[:40]!r} is not a number")
    return parsed


def _terms(row: TermsRow) -> Terms:
    return Terms(agency=row.agency, project=row.project, percent=row.percent, fixed=row.fixed,
                 visit_reward=row.visit_reward, subscription_reward=row.subscription_reward,
                 updated_at=row.updated_at)


def _put(uow: UnitOfWork, key: str, reg: RegistrationRow, kind: str, amount: Decimal,
         at: dt.datetime, *, unit: str | None = None, deal_amount: Decimal | None = None,
         reverses: int | None = None, note: str | None = None) -> bool:
    return bool(insert_or_ignore(uow.session, CommissionEntryRow, {
        "key": key[:200], "registration_id": reg.id, "agency": reg.agency,
        "project": reg.project, "kind": kind, "amount": amount, "unit": unit,
        "deal_amount": deal_amount, "reverses_id": reverses,
        "note": note[:300] if note else None, "at": at, "recorded_at": utcnow(),
    }, on=["key"]))


def _held(uow: UnitOfWork, customer: Customer, project: str,
          now: dt.datetime) -> list[RegistrationRow]:
    """The customer's confirmed or converted registrations at ``project`` (as of now)."""
    rows = uow.session.scalars(_HELD_ROWS, {"cid": customer.id, "project": project,
                                            "mobiles": list(customer.mobiles)})
    return [r for r in rows if as_of(r, now)[0] in HELD]


# Prebuilt: every interaction and stage change runs it (6,800 times in the demo), and
# building it per call (an IN list whose length varies) cost more than running it.
# An empty expanding IN matches nothing, so a customer without mobiles needs no variant.
_HELD_ROWS = (
    select(RegistrationRow)
    .where(RegistrationRow.project == bindparam("project"),
           RegistrationRow.state.in_(HELD),
           or_(RegistrationRow.customer_id == bindparam("cid"),
               RegistrationRow.mobile.in_(bindparam("mobiles", expanding=True))))
    .order_by(RegistrationRow.id)
)


def _open_entries(uow: UnitOfWork, reg_id: int, kinds: tuple[str, ...]) -> list[CommissionEntryRow]:
    """The registration's entries of ``kinds`` that no clawback reversed yet."""
    reversed_ids = select(CommissionEntryRow.reverses_id).where(
        CommissionEntryRow.registration_id == reg_id,
        CommissionEntryRow.reverses_id.is_not(None))
    return list(uow.session.scalars(select(CommissionEntryRow).where(
        CommissionEntryRow.registration_id == reg_id, CommissionEntryRow.kind.in_(kinds),
        CommissionEntryRow.id.not_in(reversed_ids)).order_by(CommissionEntryRow.id)))


def _withheld(uow: UnitOfWork, reg_id: int) -> bool:
    return (uow.session.scalar(select(func.count()).select_from(CommissionEntryRow).where(
        CommissionEntryRow.registration_id == reg_id,
        CommissionEntryRow.kind == "withheld")) or 0) > 0


def deal_commission(terms: TermsRow, amount: Decimal | None) -> Decimal:
    if terms.fixed is not None:
        return terms.fixed
    if terms.percent is None or amount is None:
        return Decimal("0.00")
    return (amount * terms.percent / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def _deal_key(uow: UnitOfWork, reg: RegistrationRow, unit: str | None) -> str:
    """``deal:<project>:<unit>:<n>``: one per unit (co-buyers share it), ``n`` counting
    the unit's deals already clawed back (a unit signed again earns again)."""
    where = unit if unit else f"registration {reg.id}"
    prefix = f"deal:{reg.project}:{where}:"
    deals = select(CommissionEntryRow.id).where(CommissionEntryRow.key.startswith(prefix,
                                                                                  autoescape=True))
    n = uow.session.scalar(select(func.count()).select_from(CommissionEntryRow).where(
        CommissionEntryRow.kind == "clawback", CommissionEntryRow.reverses_id.in_(deals))) or 0
    return f"{prefix}{n}"


def rename_deal_keys_in(uow: UnitOfWork, old_code: str, new_code: str) -> None:
    """A project's code changed: the deal keys ``_deal_key`` wrote under the old one
    take the new one, so the unit signed again (a replayed step) finds its entry."""
    old, new = f"deal:{old_code}:", f"deal:{new_code}:"
    table = CommissionEntryRow
    uow.session.execute(
        update(table).where(table.key.startswith(old, autoescape=True))
        .values(key=new + func.substr(table.key, len(old) + 1))
        .execution_options(synchronize_session=False))


def accrue_in(uow: UnitOfWork, customer: Customer, project: str,
              change: StageChange | None = None, now: dt.datetime | None = None) -> None:
    """Write what the customer's held registrations at ``project`` earned (each once)."""
    now = now or utcnow()
    for reg in _held(uow, customer, project, now):
        terms = uow.session.get(TermsRow, (reg.agency, reg.project))
        if terms is None:
            continue
        accrue_registration(uow, reg, terms, change, now)


def accrue_registration(uow: UnitOfWork, reg: RegistrationRow, terms: TermsRow,
                        change: StageChange | None, now: dt.datetime,
                        note: str | None = None) -> None:
    if terms.visit_reward > 0:
        _put(uow, f"visit:{reg.id}", reg, "visit", terms.visit_reward,
             reg.confirmed_at or now, note=note)
    if reg.state != "converted" or change is None:
        return
    step = change.step or change.new_stage
    at = change.occurred_at or now
    if step == "subscriber" and terms.subscription_reward > 0:
        _put(uow, f"subscription:{reg.id}", reg, "subscription", terms.subscription_reward,
             at, unit=change.unit, note=note)
    if step == "buyer" and not _withheld(uow, reg.id):
        amount = money(change.amount, "amount")
        _put(uow, _deal_key(uow, reg, change.unit), reg, "deal",
             deal_commission(terms, amount), at, unit=change.unit, deal_amount=amount,
             note=note)


def clawback_in(uow: UnitOfWork, reg: RegistrationRow, kinds: tuple[str, ...], why: str,
                at: dt.datetime) -> int:
    """Reverse the registration's open entries of ``kinds``; the number reversed."""
    done = 0
    for entry in _open_entries(uow, reg.id, kinds):
        done += _put(uow, f"clawback:{entry.id}", reg, "clawback", -entry.amount, at,
                     unit=entry.unit, reverses=entry.id, note=why)
    return done


def cancel_in(uow: UnitOfWork, customer: Customer, change: StageChange,
              now: dt.datetime | None = None) -> None:
    """A forced move back below ``buyer`` (or ``subscriber``) cancels the deal (or the
    subscription): the registrations are judged again (a converted one returns to
    ``confirmed`` while protection runs, else ``released``) and the entries earned by
    the cancelled steps are clawed back."""
    now = now or utcnow()
    rank = STAGE_RANK[change.new_stage]
    kinds = tuple(k for k, stage in (("deal", "buyer"), ("subscription", "subscriber"))
                  if rank < STAGE_RANK[stage])
    if not kinds:
        return
    regs = _held(uow, customer, change.project, now)
    judge_customer_in(uow, customer, change.project, now)
    why = f"cancelled: stage moved back from {change.old_stage} to {change.new_stage}"
    for reg in regs:
        clawback_in(uow, reg, kinds, why, change.occurred_at or now)


def on_stage_changed(uow: UnitOfWork, customer: Customer, change: StageChange) -> None:
    """From the plugin's ``recrm_stages_changed`` (per change), after 判客."""
    old = STAGE_RANK[change.old_stage] if change.old_stage else -1
    if change.forced and STAGE_RANK[change.new_stage] < old:
        cancel_in(uow, customer, change)
    else:
        accrue_in(uow, customer, change.project, change)


def withhold_referral_reward_in(uow: UnitOfWork, customer: Customer, project: str,
                                referrer_id: int) -> str | None:
    """``referral_vs_agency``: ``agency`` withholds the referral reward of a customer an
    agency holds (confirmed or converted registration); ``referral`` lets it through and
    notes on the registration why its agency earns no deal commission; ``both`` pays
    both."""
    now = utcnow()
    held = _held(uow, customer, project, now)
    if not held:
        return None
    reg = held[-1]
    mode = settings(uow.crm).referral_vs_agency
    if mode == "agency":
        day = reg.registered_at.astimezone(uow.crm.config.zone)  # the office's day
        return (f"registered by agency {reg.agency} on {day:%Y-%m-%d} "
                "(referral_vs_agency = agency)")
    if mode == "referral":
        why = (f"referred by owner customer {referrer_id}: no deal commission "
               "(referral_vs_agency = referral)")
        _put(uow, f"withheld:{reg.id}", reg, "withheld", Decimal("0.00"), now, note=why)
        clawback_in(uow, reg, ("deal",), why, now)
    return None


class Commissions:
    """``recrm_channels.commission.Commissions(crm)``: terms and the ledger."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def set_terms(self, agency: str, project: str, *, percent: Decimal | str | None = None,
                  fixed: Decimal | str | None = None,
                  visit_reward: Decimal | str | None = None,
                  subscription_reward: Decimal | str | None = None,
                  actor: Actor | None = None) -> Terms:
        require_role(actor, MANAGERS, "set commission terms")
        if (percent is None) == (fixed is None):
            raise InvalidInput("percent", "give either a percent or a fixed commission")
        pct = money(percent, "percent", 4)
        if pct is not None and pct > 100:
            raise InvalidInput("percent", "a percent is at most 100")
        code = project_code(project)
        self.crm.projects.get(code)
        values = {
            "percent": pct, "fixed": money(fixed, "fixed"),
            "visit_reward": money(visit_reward, "visit_reward") or Decimal("0.00"),
            "subscription_reward": money(subscription_reward, "subscription_reward")
            or Decimal("0.00"),
            "actor_staff": actor.staff_id if actor else None, "updated_at": utcnow(),
        }
        with self.crm.unit_of_work(actor) as uow:
            if uow.session.get(AgencyRow, agency) is None:
                raise NotFound(f"no such agency {agency!r}")
            row = uow.session.get(TermsRow, (agency, code), with_for_update=True)
            if row is None:
                row = TermsRow(agency=agency, project=code, **values)
                uow.session.add(row)
            else:
                for k, v in values.items():
                    setattr(row, k, v)
            uow.session.flush()
            self.crm.audit.record(uow, "channels.terms", details={
                "agency": agency, "project": code,
                **{k: str(v) for k, v in values.items() if k in (
                    "percent", "fixed", "visit_reward", "subscription_reward")}})
            return _terms(row)

    def terms(self, agency: str | None = None, project: str | None = None,
              actor: Actor | None = None) -> list[Terms]:
        require_role(actor, (*OFFICE, "analyst"), "see commission terms")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = select(TermsRow).order_by(TermsRow.agency, TermsRow.project)
            if agency:
                query = query.where(TermsRow.agency == agency)
            if project:
                query = query.where(TermsRow.project == project_code(project))
            return [_terms(r) for r in uow.session.scalars(query)]

    def entries(self, agency: str | None = None, *, registration: int | None = None,
                actor: Actor | None = None) -> list[CommissionEntry]:
        """The ledger (oldest first); a partner sees their own agency's, masked; an
        analyst every agency's, masked; the office each mobile as the core shows them
        its customer (:func:`shown_in_full`)."""
        partner = actor is not None and actor.role == "partner"
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = (select(CommissionEntryRow, RegistrationRow.mobile,
                            RegistrationRow.customer_id)
                     .join(RegistrationRow,
                           RegistrationRow.id == CommissionEntryRow.registration_id)
                     .order_by(CommissionEntryRow.id))
            if partner:
                assert actor is not None
                own = uow.session.get(AgentRow, actor.staff_id)
                if own is None:
                    raise Forbidden("only an agency's agents see its commissions")
                query = query.where(CommissionEntryRow.agency == own.agency)
            else:
                require_role(actor, (*OFFICE, "analyst"), "see commissions")
            if agency:
                query = query.where(CommissionEntryRow.agency == agency)
            if registration is not None:
                query = query.where(CommissionEntryRow.registration_id == registration)
            rows = uow.session.execute(query).all()
            full = shown_in_full(self.crm, uow.session, actor, (cid for _, _, cid in rows))
            return [CommissionEntry(
                id=e.id, registration=e.registration_id, agency=e.agency, project=e.project,
                kind=e.kind, amount=e.amount, unit=e.unit, deal_amount=e.deal_amount,
                reverses=e.reverses_id, note=e.note, at=e.at,
                mobile=mask_mobile(mobile) if mobile and cid not in full else mobile)
                for e, mobile, cid in rows]
