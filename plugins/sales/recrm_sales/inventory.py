"""Buildings and units (the 销控表): import, list, hold and release.

Every hold locks its unit's row (``SELECT ... FOR UPDATE``; SQLite's ``BEGIN
IMMEDIATE`` serialises writers), writes stale holds of the unit as ``expired`` first,
then inserts; the partial unique index ``uq_sales_holds_active`` keeps one active hold
per unit whatever happens. An active hold past its expiry reads as released.
"""

from __future__ import annotations

import builtins
import datetime as dt
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import ExitStack
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    Actor,
    ErrorsFile,
    InvalidInput,
    Refused,
    RejectedRow,
    UnitOfWork,
    UnknownProject,
    Vocabulary,
    open_table,
    project_code,
    require_role,
    utcnow,
)
from recrm_core.contention import retrying
from recrm_core.projects import project_id_in
from recrm_core.values import AMOUNT_LIMIT, parse_whole

from .models import Hold, ImportOutcome, Unit
from .money import CENT, amount
from .refs import (
    MANAGERS,
    OFFICE,
    READERS,
    check_staff,
    code_text,
    customer_id,
    find_unit,
    name_of,
    parse_unit,
    unit_name,
)
from .settings import settings
from .tables import ACTIVE_DEAL_STATES, BuildingRow, DealRow, HoldRow, UnitRow

UNIT_STATES = ("withheld", "available", "held", "subscribed", "contracted", "handed_over")
#: the states an import may set (the others come from holds and deals)
_IMPORT_STATES = {"available": "available", "withheld": "withheld", "可售": "available",
                  "待售": "available", "销控": "withheld", "不可售": "withheld",
                  "保留": "withheld"}

#: the 销控表's columns, English or Chinese
UNIT_COLUMNS = Vocabulary({
    "project": "project", "项目": "project", "楼盘": "project",
    "building": "building", "楼栋": "building", "楼号": "building", "栋": "building",
    "entrance": "entrance", "单元": "entrance",
    "floor": "floor", "楼层": "floor", "层": "floor",
    "room": "room", "房号": "room", "室号": "room",
    "gross_area": "gross_area", "建筑面积": "gross_area", "area": "gross_area",
    "net_area": "net_area", "套内面积": "net_area",
    "layout": "layout", "户型": "layout",
    "orientation": "orientation", "朝向": "orientation",
    "list_price": "list_price", "总价": "list_price", "price": "list_price",
    "标价": "list_price",
    "price_per_m2": "price_per_m2", "单价": "price_per_m2",
    "status": "status", "状态": "status", "销控": "status",
}, units={"gross_area": "m2", "net_area": "m2", "list_price": "元", "price_per_m2": "元/m2"})
BATCH = 500


def _building_code(value: object) -> str:
    code = code_text(value, "building", "building", 32)
    if not code or any(c in code for c in "/-") or any(c.isspace() for c in code):
        raise InvalidInput("building", "a building is 1 to 32 characters without spaces, "
                           "'/' or '-'")
    return code


def _room(value: object) -> str:
    room = code_text(value, "room", "room", 32)
    if not room or "/" in room or any(c.isspace() for c in room):
        raise InvalidInput("room", "a room is 1 to 32 characters without spaces or '/'")
    return room


def _short(value: object, what: str, limit: int) -> str | None:
    return code_text(value, what, what, limit)


#: the cells a unit cannot go without besides its building and room (whose own rules
#: refuse a blank), with the header a 销控表 gives them: a blank one is named as missing,
#: not as a value of the wrong kind ("a floor is a whole number")
_REQUIRED = (("floor", "楼层"), ("gross_area", "建筑面积"))


def unit_values(row: Mapping[str, Any], default_project: str | None) -> dict[str, Any]:
    """One 销控表 row checked and priced, or InvalidInput naming the field. A row gives
    the list price, the price per ㎡ or both (the other is computed from the gross
    area)."""
    project = row.get("project") or default_project
    if not project:
        raise InvalidInput("project", "no project: add a project column or give --project")
    for field, header in _REQUIRED:
        if not str(row.get(field) or "").strip():  # a missing column reads as blank too
            raise InvalidInput(field, f"no {field}: add a {header} ({field}) column or fill"
                               " its cell")
    try:
        floor = parse_whole(row.get("floor"))
    except ValueError as exc:
        raise InvalidInput("floor", f"floor {exc}") from None
    if floor is None or not -10 <= floor <= 300:
        raise InvalidInput("floor", "a floor is between -10 and 300")
    gross = amount(row.get("gross_area"), "gross_area", positive=True)
    net = amount(row["net_area"], "net_area", positive=True) if row.get("net_area") else None
    if net is not None and net > gross:
        raise InvalidInput("net_area", "the net area is larger than the gross area")
    # A 销控表 often writes prices in 万 (总价 150万, 单价 2.3万): money, as a budget is.
    listed = amount(row["list_price"], "list_price", positive=True, units=True) \
        if row.get("list_price") else None
    per_m2 = amount(row["price_per_m2"], "price_per_m2", positive=True, units=True) \
        if row.get("price_per_m2") else None
    if listed is None and per_m2 is None:
        raise InvalidInput("list_price", "give the list price or the price per ㎡")
    if listed is None:
        assert per_m2 is not None
        listed = (per_m2 * gross).quantize(CENT)
    if per_m2 is None:
        per_m2 = (listed / gross).quantize(CENT)
    for field, value, source in (("list_price", listed, "price_per_m2 × gross_area"),
                                 ("price_per_m2", per_m2, "list_price / gross_area")):
        # Each figure was checked alone; the one computed from them may still exceed
        # the column, which PostgreSQL refuses for the whole batch.
        if value >= AMOUNT_LIMIT:
            raise InvalidInput(field, f"{field} ({source}) must be below 10^12: check the "
                               "area and the price")
    status = str(row.get("status") or "available").strip().lower()
    if status not in _IMPORT_STATES:
        raise InvalidInput("status", "a status in the file is available (可售) or withheld "
                           "(销控); holds and deals come from their commands")
    return {
        "project": project_code(str(project)), "building": _building_code(row.get("building")),
        "entrance": _short(row.get("entrance"), "entrance", 16), "floor": floor,
        "room": _room(row.get("room")), "gross_area": gross, "net_area": net,
        "layout": _short(row.get("layout"), "layout", 32),
        "orientation": _short(row.get("orientation"), "orientation", 16),
        "list_price": listed, "price_per_m2": per_m2, "status": _IMPORT_STATES[status],
    }


#: where an earlier row of the file gave a unit: its row number and its entrance
FirstRows = dict[tuple[str, str, str], tuple[int, str | None]]


def _repeated(first_row: FirstRows, line: int,
              values: Mapping[str, Any]) -> tuple[str, str] | None:
    """The field and reason row ``line`` is refused for when an earlier row gave its
    unit (``first_row`` remembers them): which of two rows the user meant is theirs to
    say, so the later one never silently overwrites the first."""
    key = (values["project"], values["building"], values["room"])
    if key in first_row:
        earlier, entrance = first_row[key]
        clash = _entrance_clash(key, entrance, values["entrance"], f"row {earlier}")
        if clash is not None:
            return "entrance", clash
        return "room", f"unit {unit_name(*key)} is also on row {earlier}: give each unit once"
    first_row[key] = (line, values["entrance"])
    return None


def _entrance_clash(key: tuple[str, str, str], held: str | None, given: str | None,
                    where: str) -> str | None:
    """Why a row of entrance ``given`` cannot be the unit ``key`` whose entrance is
    ``held`` (``where``: the earlier row or the database), or None when they agree.
    A unit is named by building and room, so a 销控表 numbering rooms per entrance
    (单元) names two units alike; updating one with the other's row would lose it."""
    if not held or not given or _entrance(held) == _entrance(given):
        return None
    return (f"unit {unit_name(*key)} is room {key[2]} of entrance {held} ({where}); rooms "
            f"numbered per entrance (单元) need it in the room: {given}-{key[2]}")


_NUMERALS = str.maketrans("一二三四五六七八九", "123456789")


def _entrance(text: str) -> str:
    """An entrance as its number, however a sheet spells it: ``1``, ``01``, ``1单元``
    and ``一单元`` are one entrance (a re-import in another spelling is no clash)."""
    plain = text.removesuffix("单元").translate(_NUMERALS)
    return plain.lstrip("0") or plain


def expire_stale(session: Session, unit: UnitRow, now: dt.datetime) -> None:
    """Write the unit's lapsed holds as expired (under the unit's lock)."""
    for hold in session.scalars(select(HoldRow).where(
            HoldRow.unit_id == unit.id, HoldRow.state == "active",
            HoldRow.expires_at <= now)):
        hold.state, hold.ended_at = "expired", hold.expires_at
        if unit.status == "held":
            unit.status, unit.updated_at = "available", now
    session.flush()


def active_hold(session: Session, unit_id: int, now: dt.datetime) -> HoldRow | None:
    hold = session.scalars(select(HoldRow).where(HoldRow.unit_id == unit_id,
                                                 HoldRow.state == "active")).first()
    return hold if hold is not None and hold.expires_at > now else None


def active_deal(session: Session, unit_id: int) -> DealRow | None:
    return session.scalars(select(DealRow).where(
        DealRow.unit_id == unit_id, DealRow.state.in_(ACTIVE_DEAL_STATES))).first()


def hold_model(session: Session, row: HoldRow, now: dt.datetime) -> Hold:
    unit = session.get_one(UnitRow, row.unit_id)
    building = session.get_one(BuildingRow, unit.building_id)
    lapsed = row.state == "active" and row.expires_at <= now
    return Hold(id=row.id, unit=unit_name(unit.project, building.code, unit.room),
                unit_id=unit.id, customer_id=row.customer_id, staff=row.staff,
                state="expired" if lapsed else row.state,
                held_at=row.held_at, expires_at=row.expires_at,
                ended_at=row.expires_at if lapsed else row.ended_at)


def units_in(session: Session, rows: Sequence[tuple[UnitRow, str]],
             now: dt.datetime) -> list[Unit]:
    """Units as of ``now``: a held unit whose hold lapsed reads as available."""
    ids = [u.id for u, _ in rows]
    holds = {h.unit_id: h for h in session.scalars(select(HoldRow).where(
        HoldRow.unit_id.in_(ids), HoldRow.state == "active"))} if ids else {}
    deals = dict(session.execute(select(DealRow.unit_id, DealRow.id).where(
        DealRow.unit_id.in_(ids), DealRow.state.in_(ACTIVE_DEAL_STATES))).all()) \
        if ids else {}
    found = []
    for u, building in rows:
        hold = holds.get(u.id)
        if hold is not None and hold.expires_at <= now:
            hold = None
        status = u.status
        if status == "held" and hold is None:
            status = "available"
        found.append(Unit(
            id=u.id, name=unit_name(u.project, building, u.room), project=u.project,
            building=building, entrance=u.entrance, floor=u.floor, room=u.room,
            gross_area=u.gross_area, net_area=u.net_area, final_area=u.final_area,
            layout=u.layout, orientation=u.orientation, list_price=u.list_price,
            price_per_m2=u.price_per_m2, status=status,
            hold_customer_id=hold.customer_id if hold else None,
            hold_staff=hold.staff if hold else None,
            hold_expires_at=hold.expires_at if hold else None, deal_id=deals.get(u.id)))
    return found


class Inventory:
    """``service(crm).units``: buildings and units, holds."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    # -- the 销控表 -----------------------------------------------------------------------
    def import_file(self, path: str | os.PathLike[str], *, project: str | None = None,
                    errors_path: str | None = None, encoding: str | None = None,
                    sheet: str | None = None, actor: Actor | None = None) -> ImportOutcome:
        """Add or update units from a CSV file or an .xlsx workbook (one row per unit;
        buildings are added as named). A bad row is rejected whole — row number,
        field and reason in ``errors_path`` — and the good rows are kept; a unit held
        or sold keeps its state (the row may change its areas and prices)."""
        require_role(actor, MANAGERS, "import the sales-control table")
        default = project_code(project) if project else None
        known = {p.code for p in self.crm.projects.list()}
        rows = created = updated = 0
        rejected: list[RejectedRow] = []
        with open_table(path, UNIT_COLUMNS, encoding=encoding, sheet=sheet) as source, \
                ExitStack() as stack:
            errors = stack.enter_context(ErrorsFile(
                errors_path, sheet_rows=source.sheet is not None, reading=path)) \
                if errors_path else None
            batch: list[tuple[int, int | None, dict[str, Any]]] = []
            first_row: FirstRows = {}

            def reject(line: int, sheet_row: int | None, field: str, reason: str) -> None:
                bad = RejectedRow(row=line, field=field, reason=reason, sheet_row=sheet_row)
                rejected.append(bad)
                if errors is not None:
                    errors.write(bad)

            def flush() -> None:
                nonlocal created, updated
                if not batch:
                    return
                c, u, bad = self._apply(batch, actor)
                created, updated = created + c, updated + u
                for line, sheet_row, field, reason in bad:
                    reject(line, sheet_row, field, reason)
                batch.clear()

            for line, row in source:
                rows += 1
                if isinstance(row, RejectedRow):
                    reject(row.row, row.sheet_row, row.field, row.reason)
                    continue
                try:
                    values = unit_values(row, default)
                except InvalidInput as exc:
                    reject(line, source.sheet_row, exc.field, exc.reason)
                    continue
                if values["project"] not in known and not self.crm.config.auto_create_projects:
                    # the core's import rule and words (otherwise _apply creates it)
                    reject(line, source.sheet_row, "project",
                           str(UnknownProject(values["project"])))
                    continue
                repeated = _repeated(first_row, line, values)
                if repeated is not None:
                    reject(line, source.sheet_row, *repeated)
                    continue
                batch.append((line, source.sheet_row, values))
                if len(batch) >= BATCH:
                    flush()
            flush()
        rejected.sort(key=lambda r: r.row)
        return ImportOutcome(rows=rows, created=created, updated=updated,
                             rejected=len(rejected), errors_path=errors_path,
                             rejections=rejected)

    def add(self, rows: Iterable[Mapping[str, Any]], *, project: str | None = None,
            actor: Actor | None = None) -> ImportOutcome:
        """Add or update units from rows keyed like the file's columns (for code and the
        demo); the first invalid row raises InvalidInput naming its number."""
        require_role(actor, MANAGERS, "add units")
        default = project_code(project) if project else None
        batch = []
        first_row: FirstRows = {}
        for line, row in enumerate(rows, 1):
            try:
                values = unit_values(row, default)
            except InvalidInput as exc:
                raise InvalidInput(exc.field, f"row {line}: {exc.reason}") from None
            repeated = _repeated(first_row, line, values)
            if repeated is not None:
                raise InvalidInput(repeated[0], f"row {line}: {repeated[1]}")
            batch.append((line, None, values))
        created, updated, bad = self._apply(batch, actor)
        if bad:
            line, _, field, reason = bad[0]
            raise Refused(f"row {line}: {field}: {reason}")
        return ImportOutcome(rows=len(batch), created=created, updated=updated, rejected=0)

    def _apply(self, batch: Iterable[tuple[int, int | None, dict[str, Any]]],
               actor: Actor | None) -> tuple[int, int, list[tuple[int, int | None, str, str]]]:
        created = updated = 0
        bad: list[tuple[int, int | None, str, str]] = []
        now = utcnow()
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            projects: set[str] = set()
            buildings: dict[tuple[str, str], int] = {}
            existing: dict[int, dict[str, UnitRow]] = {}
            for line, sheet_row, v in batch:
                if v["project"] not in projects:
                    # created in this batch's transaction while auto_create_projects is
                    # on, as the core's import does; else UnknownProject
                    project_id_in(uow, v["project"])
                    projects.add(v["project"])
                key = (v["project"], v["building"])
                if key not in buildings:
                    found = session.scalar(select(BuildingRow.id).where(
                        BuildingRow.project == key[0], BuildingRow.code == key[1]))
                    if found is None:
                        b = BuildingRow(project=key[0], code=key[1], created_at=now)
                        session.add(b)
                        session.flush()
                        found = b.id
                    buildings[key] = found
                bid = buildings[key]
                if bid not in existing:  # the building's units, read once per batch
                    existing[bid] = {u.room: u for u in session.scalars(select(UnitRow).where(
                        UnitRow.building_id == bid).with_for_update())}
                unit = existing[bid].get(v["room"])
                clash = None if unit is None else _entrance_clash(
                    (v["project"], v["building"], v["room"]), unit.entrance, v["entrance"],
                    "in the sales-control table")
                if clash is not None:
                    bad.append((line, sheet_row, "entrance", clash))
                    continue
                fields = {k: v[k] for k in ("entrance", "floor", "gross_area", "net_area",
                                            "layout", "orientation", "list_price",
                                            "price_per_m2")}
                if unit is None:
                    unit = UnitRow(building_id=bid, project=v["project"], room=v["room"],
                                   status=v["status"], updated_at=now, **fields)
                    session.add(unit)
                    existing[bid][v["room"]] = unit
                    created += 1
                    continue
                if unit.status not in ("available", "withheld") and \
                        unit.status != "held" and v["status"] != "available":
                    bad.append((line, sheet_row, "status",
                                f"unit is {unit.status}; it cannot be withheld"))
                    continue
                expire_stale(session, unit, now)
                if unit.status == "held" and v["status"] == "withheld":
                    bad.append((line, sheet_row, "status",
                                "unit is held; release it before withholding it"))
                    continue
                for k, val in fields.items():
                    setattr(unit, k, val)
                if unit.status in ("available", "withheld"):
                    unit.status = v["status"]
                unit.updated_at = now
                updated += 1
            session.flush()
        return created, updated, bad

    def list(self, *, project: str | None = None, building: str | None = None,
             status: str | None = None, actor: Actor | None = None,
             now: dt.datetime | None = None) -> list[Unit]:
        """Units as of now, by project, building, floor and room."""
        require_role(actor, READERS, "list units")
        if status is not None and status not in UNIT_STATES:
            raise InvalidInput("status", f"a status is one of {', '.join(UNIT_STATES)}")
        if project:
            self.crm.projects.get(project)  # UnknownProject: "no such project"
        now = now or utcnow()
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = select(UnitRow, BuildingRow.code).join(
                BuildingRow, BuildingRow.id == UnitRow.building_id).order_by(
                UnitRow.project, BuildingRow.code, UnitRow.floor, UnitRow.room)
            if project:
                query = query.where(UnitRow.project == project_code(project))
            if building:
                query = query.where(BuildingRow.code == building.strip())
            found = units_in(uow.session, uow.session.execute(query).all(), now)
        return [u for u in found if status is None or u.status == status]

    def get(self, unit: str | int, *, actor: Actor | None = None,
            now: dt.datetime | None = None) -> Unit:
        require_role(actor, READERS, "read units")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            row = find_unit(uow.session, unit)
            code = uow.session.get_one(BuildingRow, row.building_id).code
            return units_in(uow.session, [(row, code)], now or utcnow())[0]

    # -- holds ----------------------------------------------------------------------------
    def hold(self, unit: str | int, customer: str | int, *, staff: str | None = None,
             actor: Actor | None = None, now: dt.datetime | None = None) -> Hold:
        """Hold an available unit for a customer (for ``[sales] hold_minutes``).
        Refused when the unit is withheld, held (until when) or sold."""
        require_role(actor, OFFICE, "hold units")
        parse_unit(str(unit))  # a malformed name is a usage error before anything else
        cid = customer_id(self.crm, customer, actor)
        at = now or utcnow()
        minutes = settings(self.crm).hold_minutes

        def attempt() -> Hold:
            with self.crm.unit_of_work(actor) as uow:
                row = self.hold_in(uow, unit, cid, check_staff(uow, staff), at, minutes)
                return hold_model(uow.session, row, at)

        return retrying(attempt)

    def hold_in(self, uow: UnitOfWork, unit: str | int, cid: int, staff: str | None,
                now: dt.datetime, minutes: int) -> HoldRow:
        session = uow.session
        # Resolved again inside the write (``customer_id`` resolved before it): a merge
        # since moves the hold to the survivor, and one running waits for it.
        cid = uow.crm.customers.resolve_for_write_in(uow, cid)
        row = find_unit(session, unit, lock=True)
        expire_stale(session, row, now)
        refuse_taken(session, row, now, zone=uow.crm.config.zone)
        held = HoldRow(unit_id=row.id, customer_id=cid, staff=staff, state="active",
                       held_at=now, expires_at=now + dt.timedelta(minutes=minutes))
        session.add(held)
        row.status, row.updated_at = "held", now
        session.flush()
        return held

    def release(self, unit: str | int, *, actor: Actor | None = None,
                now: dt.datetime | None = None) -> Hold:
        """Release the unit's active hold (a consultant releases their own; managers
        anyone's)."""
        require_role(actor, OFFICE, "release holds")
        at = now or utcnow()
        with self.crm.unit_of_work(actor) as uow:
            session = uow.session
            row = find_unit(session, unit, lock=True)
            expire_stale(session, row, at)
            hold = active_hold(session, row.id, at)
            if hold is None:
                raise Refused(f"unit {unit} is not held")
            if actor is not None and actor.role == "sales" and hold.staff not in (
                    None, actor.staff_id):
                raise Refused(f"unit {unit} is held by {hold.staff}; ask them or a manager")
            hold.state, hold.ended_at = "released", at
            row.status, row.updated_at = "available", at
            session.flush()
            return hold_model(session, hold, at)

    def holds(self, *, active: bool = True, actor: Actor | None = None,
              now: dt.datetime | None = None) -> builtins.list[Hold]:
        require_role(actor, READERS, "list holds")
        at = now or utcnow()
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = select(HoldRow).order_by(HoldRow.id)
            if active:
                query = query.where(HoldRow.state == "active", HoldRow.expires_at > at)
            return [hold_model(uow.session, h, at) for h in uow.session.scalars(query)]


def refuse_taken(session: Session, unit: UnitRow, now: dt.datetime,
                 customers: Collection[int | None] = (), *,
                 zone: dt.tzinfo) -> HoldRow | None:
    """Refused unless the unit is free: not withheld, no deal, and no hold but one for
    one of ``customers`` (which is returned, for the caller to convert). A hold's
    expiry is named at the business time zone ``zone``, as the CLI shows it."""
    label = f"unit {name_of(session, unit)}"
    if unit.status == "withheld":
        raise Refused(f"{label} is withheld (销控), not for sale")
    deal = active_deal(session, unit.id)
    if deal is not None:
        raise Refused(f"{label} is {deal.state} (deal {deal.id})")
    hold = active_hold(session, unit.id, now)
    if hold is None:
        return None
    if hold.customer_id in customers:
        return hold
    until = hold.expires_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    raise Refused(f"{label} is held for another customer until {until}")
