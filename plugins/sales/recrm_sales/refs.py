"""How units, customers and staff are named on every command, and who may do what.

A unit is ``PROJECT/BUILDING-ROOM`` (``XL2/3-1201``: building ``3``, room ``1201``;
the building is everything before the first ``-``) or its numeric id. A customer is a
customer id or a mobile, resolved by the core's identity rules (a mobile nobody has
yet adds the customer).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    Actor,
    InvalidInput,
    NotFound,
    UnitOfWork,
    clean_code,
    project_code,
    valid_id,
)
from recrm_core.values import check_day, optional_code

from .tables import BuildingRow, UnitRow

#: who runs the sales office's daily work (holds, tickets, subscriptions, payments)
OFFICE = ("admin", "manager", "sales")
#: who may change a deal after the fact (退房, 换房, 更名) and import the 销控表
MANAGERS = ("admin", "manager")
#: who may read the inventory, deals and reports
READERS = (*OFFICE, "analyst")


def unit_name(project: str, building: str, room: str) -> str:
    return f"{project}/{building}-{room}"


def code_text(value: object, field: str, what: str, limit: int = 64) -> str | None:
    """A building, room, label or reference as the core cleans codes (full-width
    characters are ASCII, format characters go), None when blank, or InvalidInput
    naming ``field``: a control character is refused, as in every other code, and
    two spellings of one reference are one key."""
    try:
        return optional_code(value, limit)
    except ValueError as exc:
        raise InvalidInput(field, f"{what} {exc}") from None


def parse_unit(ref: str) -> tuple[str, str, str] | int:
    """``(project, building, room)`` of a unit name, or the id a number gives (any
    number: :func:`find_unit` finds none outside the core's id range)."""
    # cleaned as the import cleans building and room: "XL/３-１２０１" is XL/3-1201
    text = clean_code(ref or "")
    if text.isascii() and text.isdigit():
        return int(text)
    project, slash, rest = text.partition("/")
    building, dash, room = rest.partition("-")
    if not (slash and dash and project and building and room):
        raise InvalidInput("unit", f"{ref[:60]!r} is no unit: give PROJECT/BUILDING-ROOM "
                           "(e.g. XL2/3-1201) or the unit's id")
    return project_code(project), building.strip(), room.strip()


def find_unit(session: Session, ref: str | int, *, lock: bool = False) -> UnitRow:
    """The unit ``ref`` names, locked for update when ``lock``; NotFound if none."""
    parsed = parse_unit(str(ref))
    if isinstance(parsed, int):
        # the core's id rule (as for deals and tickets): a number outside 1..2^31-1
        # names no row, and is never sent to the driver (it would overflow)
        row = session.get(UnitRow, parsed, with_for_update=lock or None) \
            if valid_id(parsed) else None
    else:
        project, building, room = parsed
        query = select(UnitRow).join(BuildingRow, BuildingRow.id == UnitRow.building_id).where(
            BuildingRow.project == project, BuildingRow.code == building, UnitRow.room == room)
        row = session.scalars(query.with_for_update(of=UnitRow) if lock else query).first()
    if row is None:
        raise NotFound(f"no unit {str(ref)[:60]!r}")
    return row


def name_of(session: Session, unit: UnitRow) -> str:
    building = session.get_one(BuildingRow, unit.building_id)
    return unit_name(unit.project, building.code, unit.room)


def customer_id(crm: CRM, ref: str | int, actor: Actor | None = None,
                what: str = "customer") -> int:
    """A customer id for ``ref``: an id (a merged one gives the survivor), or a mobile
    found or added by the core's identity rules. A value that is neither is refused
    as InvalidInput naming ``what`` (the option or field it was given as)."""
    text = str(ref).strip()
    if text.isdigit() and len(text) < 10:
        with crm.unit_of_work(actor, readonly=True) as uow:
            try:
                return crm.customers.resolve_in(uow, int(text))
            except NotFound:
                raise NotFound(f"no customer {text}") from None
    if not text:
        raise InvalidInput(what, f"name the {what} (a customer id or a mobile)")
    try:
        return crm.customers.add({"mobile": text}, actor=actor).customer.id
    except InvalidInput as exc:
        raise InvalidInput(what, exc.reason) from None


def check_staff(uow: UnitOfWork, staff: str | None) -> str | None:
    """The staff id acting (the actor's own when none is given); NotFound for an
    unknown one."""
    if staff is None:
        return uow.actor.staff_id if uow.actor is not None else None
    # Cleaned as the core's staff ids are: a control character (a NUL would be
    # PostgreSQL's error, a 500) is refused before the directory is asked.
    cleaned = code_text(staff, "staff", "a staff id")
    if cleaned is None or uow.crm.directory.find(uow.session, cleaned) is None:
        raise NotFound(f"no staff {staff[:64]!r}")
    return cleaned


def local_date(crm: CRM, at: dt.datetime) -> dt.date:
    """The date at the company's time zone."""
    return at.astimezone(crm.config.zone).date()


def entered_day(day: dt.date, field: str) -> dt.date:
    """A day a person gave (a receipt's, a handover's, a due date), within the core's
    range of entered days (:func:`~recrm_core.values.check_day`: 1900 to 9998, as
    ``recrm audit list`` takes), or InvalidInput naming ``field``."""
    try:
        return check_day(day)
    except ValueError as exc:
        raise InvalidInput(field, f"{field} {exc}") from None
