"""Privacy requests: what the channels tables hold about one person, and its erasure.

Registrations hold the mobile and the name an agent typed. They are found by the
customer's id and by each of their mobiles. Erasure anonymises them: mobile and name
removed, the link to the customer removed, the agency, project, dates and states kept
(an agency's figures and any later commission stay as they were). Explanations and
reasons never hold a mobile or a name, so they stay. Commission entries hold the
registration's id, amounts and notes written by the plugin (never a mobile or a name):
exported with the registration, kept on erasure (the agency's ledger). Disputes hold
notes typed by people: exported with the registration (as claimant or disputed), their
notes removed on erasure (the dispute, its agency, states and dates stay); in other
people's disputes, a note or ruling naming the person's mobile, ID number or email is
replaced by ``(redacted)``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select

from recrm_core import Customer, ErasureStep, UnitOfWork

from .tables import CommissionEntryRow, DisputeRow, RegistrationRow, TransitionRow


def _rows(uow: UnitOfWork, customer: Customer, ids: list[int]) -> list[RegistrationRow]:
    conditions = [RegistrationRow.customer_id.in_(ids)]
    if customer.mobiles:
        conditions.append(RegistrationRow.mobile.in_(customer.mobiles))
    return list(uow.session.scalars(select(RegistrationRow).where(or_(*conditions))
                                    .order_by(RegistrationRow.id)))


def export_in(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    rows = _rows(uow, customer, [customer.id])
    if not rows:
        return None
    registrations = []
    for r in rows:
        transitions = uow.session.scalars(select(TransitionRow).where(
            TransitionRow.registration_id == r.id).order_by(TransitionRow.id))
        registrations.append({
            "id": r.id, "agency": r.agency, "agent": r.agent_id, "project": r.project,
            "mobile": r.mobile, "name": r.name, "state": r.state, "reason": r.reason,
            "rule_version": r.rule_version, "registered_at": r.registered_at.isoformat(),
            "transitions": [{"state": t.state, "reason": t.reason, "at": t.at.isoformat()}
                            for t in transitions],
            "commissions": [{"kind": e.kind, "amount": str(e.amount), "unit": e.unit,
                             "note": e.note, "at": e.at.isoformat()}
                            for e in uow.session.scalars(select(CommissionEntryRow).where(
                                CommissionEntryRow.registration_id == r.id)
                                .order_by(CommissionEntryRow.id))],
            "disputes": [{"id": d.id, "claimant": d.claimant_id, "state": d.state,
                          "note": d.note, "resolution": d.resolution,
                          "opened_at": d.opened_at.isoformat()}
                         for d in _disputes(uow, [r.id])],
        })
    return {"registrations": registrations}


def _disputes(uow: UnitOfWork, ids: list[int]) -> list[DisputeRow]:
    return list(uow.session.scalars(select(DisputeRow).where(or_(
        DisputeRow.registration_id.in_(ids), DisputeRow.claimant_id.in_(ids)))
        .order_by(DisputeRow.id)))


def erase_in(uow: UnitOfWork, customer: Customer, merged_ids: list[int]) -> list[ErasureStep]:
    rows = _rows(uow, customer, [customer.id, *merged_ids])
    for r in rows:
        r.mobile = None
        r.name = None
        r.customer_id = None
    disputes = _disputes(uow, [r.id for r in rows]) if rows else []
    for d in disputes:
        d.note = d.resolution = None
    uow.session.flush()
    # Other people's disputes stay, without the words that name the person: left, the
    # verification would roll the erasure back, and no command edits a note.
    from recrm_core.privacy import PersonValues, redact_in  # the erasure's module

    needles = PersonValues.of(customer, names=False)
    redacted = len(redact_in(uow.session, DisputeRow.note, needles)
                   | redact_in(uow.session, DisputeRow.resolution, needles))
    steps = [ErasureStep(table=RegistrationRow.__tablename__, anonymised=len(rows),
                         basis="agency figures: agency, project, dates and states kept "
                         "without the person's mobile or name")] if rows else []
    if disputes:
        steps.append(ErasureStep(table=DisputeRow.__tablename__, anonymised=len(disputes),
                                 basis="the ruling's record: agency, states and dates kept "
                                 "without the notes"))
    if redacted:
        steps.append(ErasureStep(table=DisputeRow.__tablename__, anonymised=redacted,
                                 basis="other records kept, their words naming the person "
                                 "redacted"))
    return steps
