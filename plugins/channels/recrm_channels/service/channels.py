"""The service itself: agencies, agents, rule versions, registrations and visits."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select

from recrm_core import (
    CRM,
    Actor,
    Customer,
    Forbidden,
    IdentityError,
    InvalidInput,
    NotFound,
    Refused,
    UnitOfWork,
    normalise_mobile,
    project_code,
    utcnow,
)
from recrm_core.access import require_role
from recrm_core.contention import retrying
from recrm_core.db import valid_id
from recrm_core.projects import known_project_id
from recrm_core.values import optional_text

from ..attribution import Event, acceptance, attribute
from ..models import (
    Agency,
    Agent,
    AgentRegistrationIn,
    Explanation,
    Registration,
    RuleSet,
    SweepResult,
    Transition,
    VisitIn,
)
from ..settings import Rules, default_rules
from ..tables import AgencyRow, AgentRow, RegistrationRow, RuleSetRow, TransitionRow
from .judging import (
    _HELD_BY_AGENCY,
    _HELD_BY_AGENT,
    _LATEST_OF,
    _NEW,
    _REGISTRATIONS_OF,
    RegistrationReads,
    _transition,
    events_for,
    lock_person,
    rule_book,
    store_decision,
)
from .registrations import RegistrationRefused, as_of, registration_model, shown_in_full

MANAGERS = ("admin", "manager")
#: who may log a visit or register on an agent's behalf (partners register as themselves)
OFFICE = ("admin", "manager", "sales")


def _agency(row: AgencyRow) -> Agency:
    return Agency(code=row.code, name=row.name, status=row.status, contact=row.contact,
                  created_at=row.created_at, suspended_at=row.suspended_at)


def _agent(row: AgentRow) -> Agent:
    return Agent(id=row.id, agency=row.agency, name=row.name, mobile=row.mobile)


def _code(value: str, what: str) -> str:
    # NFKC as the core's codes: "ＬＪ" typed on a Chinese keyboard is agency LJ, and an
    # agent id is the staff id the directory stores (cleaned the same way), never a
    # look-alike that no API key's staff id matches
    cleaned = unicodedata.normalize("NFKC", value or "").strip()
    if not cleaned or len(cleaned) > 64 or any(c.isspace() for c in cleaned) \
            or any(unicodedata.category(c) in ("Cc", "Cf") for c in cleaned):
        raise InvalidInput(what, f"{what} must be 1 to 64 characters without spaces or "
                           "control characters")
    return cleaned


def text_of(value: str | None, what: str, limit: int, *, required: bool = False) -> str | None:
    """Free text the plugin stores (a name, a note): trimmed and NFKC-normalised, refused
    (never cut) when longer than ``limit``, empty when ``required``, or holding control
    characters (NUL, which PostgreSQL cannot store, among them)."""
    try:
        text = optional_text(value, limit)
    except ValueError as exc:
        raise InvalidInput(what, f"{what} {exc}") from None
    if text is None:
        if required:
            raise InvalidInput(what, f"{what} is empty")
        return None
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidInput(what, f"{what} contains control characters")
    return text


class Channels:
    """``recrm_channels.service(crm)``: agencies, agents, rules and registrations."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    # agencies and agents -----------------------------------------------------------------
    def add_agency(self, code: str, name: str, contact: str | None = None,
                   actor: Actor | None = None) -> Agency:
        require_role(actor, MANAGERS, "add agencies")
        code = _code(code, "agency")
        name = text_of(name, "name", 200, required=True) or ""
        contact = text_of(contact, "contact", 200)
        with self.crm.unit_of_work(actor) as uow:
            if uow.session.get(AgencyRow, code) is not None:
                raise Refused(f"agency {code!r} exists")
            row = AgencyRow(code=code, name=name, status="active", contact=contact,
                            created_at=utcnow())
            uow.session.add(row)
            uow.session.flush()
            return _agency(row)

    def agencies(self, actor: Actor | None = None) -> list[Agency]:
        require_role(actor, MANAGERS, "list agencies")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            return [_agency(r) for r in uow.session.scalars(
                select(AgencyRow).order_by(AgencyRow.code))]

    def suspend_agency(self, code: str, actor: Actor | None = None) -> Agency:
        require_role(actor, MANAGERS, "suspend agencies")
        code = _code(code, "agency")
        with self.crm.unit_of_work(actor) as uow:
            row = uow.session.get(AgencyRow, code, with_for_update=True)
            if row is None:
                raise NotFound(f"no such agency {code!r}")
            if row.status != "suspended":
                row.status, row.suspended_at = "suspended", utcnow()
            return _agency(row)

    def add_agent(self, agent_id: str, name: str, agency: str, mobile: str | None = None,
                  actor: Actor | None = None) -> Agent:
        """An agent, added to the directory as staff of role ``partner`` (so an API key
        can belong to them); a partner already in the directory is linked."""
        require_role(actor, MANAGERS, "add agents")
        agent_id, agency = _code(agent_id, "agent"), _code(agency, "agency")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            if uow.session.get(AgencyRow, agency) is None:
                raise NotFound(f"no such agency {agency!r}")
            if uow.session.get(AgentRow, agent_id) is not None:
                raise Refused(f"agent {agent_id!r} exists")
            staff = self.crm.directory.find(uow.session, agent_id)
        if staff is None:
            staff = self.crm.directory.add_staff(
                {"id": agent_id, "name": name, "role": "partner", "mobile": mobile}, actor=actor)
        elif staff.role != "partner":
            raise Refused(f"staff {agent_id!r} has role {staff.role}, not partner")
        with self.crm.unit_of_work(actor) as uow:
            row = AgentRow(id=agent_id, agency=agency, name=staff.name, mobile=staff.mobile,
                           created_at=utcnow())
            uow.session.add(row)
            uow.session.flush()
            return _agent(row)

    def agents(self, agency: str | None = None, actor: Actor | None = None) -> list[Agent]:
        require_role(actor, MANAGERS, "list agents")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = select(AgentRow).order_by(AgentRow.id)
            if agency:
                query = query.where(AgentRow.agency == agency)
            return [_agent(r) for r in uow.session.scalars(query)]

    # rules ------------------------------------------------------------------------------
    def set_rules(self, project: str, values: Mapping[str, Any],
                  effective_from: dt.datetime | None = None,
                  actor: Actor | None = None) -> RuleSet:
        """A new rule version for ``project``, in force from ``effective_from`` (now or
        later: history is never rewritten); keys left out take the [channels] defaults."""
        require_role(actor, MANAGERS, "set registration rules")
        code = project_code(project)
        self.crm.projects.get(code)
        now = utcnow()
        start = effective_from or now
        if start.tzinfo is None:
            raise InvalidInput("from", "give the time with a time zone")
        if start < now - dt.timedelta(minutes=1):
            raise InvalidInput("from", "a rule set applies from now or later, never the past")
        try:
            rules = Rules.model_validate({**default_rules(self.crm).model_dump(), **values})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "rules"
            raise InvalidInput("rules", f"{where}: {err['msg']}") from None
        with self.crm.unit_of_work(actor) as uow:
            last = uow.session.scalar(select(func.max(RuleSetRow.version))
                                      .where(RuleSetRow.project == code)) or 0
            uow.session.add(RuleSetRow(
                project=code, version=last + 1, effective_from=start,
                rules=rules.model_dump(), actor_staff=actor.staff_id if actor else None,
                created_at=now))
            return RuleSet(project=code, version=last + 1, effective_from=start, rules=rules)

    def rules(self, project: str, at: dt.datetime | None = None,
              actor: Actor | None = None) -> list[RuleSet]:
        """Every version of the project's rules (version 0, the defaults, first)."""
        code = project_code(project)
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            book = rule_book(self.crm, uow.session, code)
        versions = [RuleSet(project=code, version=0, effective_from=None, rules=book.default)]
        versions += [RuleSet(project=code, version=v.version, effective_from=v.effective_from,
                             rules=v.rules) for v in sorted(book.versions,
                                                            key=lambda v: v.version)]
        return versions

    # registrations ----------------------------------------------------------------------
    def register(self, agent: str | None, project: str, mobile: str, name: str | None = None,
                 *, actor: Actor | None = None, now: dt.datetime | None = None) -> Registration:
        """Register ``mobile`` for ``project`` as ``agent`` (a partner registers as
        themselves). The outcome is stored either way; a refusal raises
        :class:`RegistrationRefused` after it is stored."""
        agent, code, number, cleaned = self._checked(agent, project, mobile, name, actor)
        row = self._register(agent, code, number, cleaned, actor, now)
        assert row is not None  # only a visit's registration may be skipped
        result = registration_model(row, now or utcnow(), actor)
        if row.state == "rejected":
            raise RegistrationRefused(result)
        return result

    def register_many(self, entries: Sequence[AgentRegistrationIn], *,
                      actor: Actor | None = None) -> list[Registration]:
        """``register`` for many registrations in one unit of work, in order: the same
        rows as one ``register`` per entry (each one judged against those before it,
        under the same locks, held to the end). A refusal is returned (state
        ``rejected``), not raised. Every entry is checked before anything is written."""
        checked = [self._checked(e.agent, e.project, e.mobile, e.name, actor)
                   for e in entries]
        customers = [self._customer_of(number) for _, _, number, _ in checked]

        def attempt() -> list[tuple[RegistrationRow, dt.datetime]]:
            stored: list[tuple[RegistrationRow, dt.datetime]] = []
            with self.crm.unit_of_work(actor) as uow:
                reads = RegistrationReads(uow, [agent for agent, _, _, _ in checked],
                                          [code for _, code, _, _ in checked], customers)
                for e, (agent, code, number, name), cid in zip(entries, checked, customers,
                                                                strict=True):
                    now = e.at or utcnow()  # taken again on a retry, as in ``_register``
                    row = self._register_in(uow, reads, agent, code, number, name, cid, now)
                    assert row is not None  # only a visit's registration may be skipped
                    stored.append((row, now))
            return stored

        return [registration_model(row, now, actor) for row, now in retrying(attempt)]

    def _checked(self, agent: str | None, project: str, mobile: str, name: str | None,
                 actor: Actor | None) -> tuple[str, str, str, str | None]:
        """A registration's agent (a partner: themselves), project code, normalised
        mobile and name, or why it is refused before anything is read."""
        if actor is not None and actor.role == "partner":
            if agent not in (None, actor.staff_id):
                raise Forbidden("a partner registers as themselves only")
            agent = actor.staff_id
        else:
            require_role(actor, OFFICE, "register customers for an agent")
        if not agent:
            raise InvalidInput("agent", "name the agent")
        try:
            number = normalise_mobile(mobile, self.crm.config.default_region)
        except IdentityError as exc:
            raise InvalidInput("mobile", exc.reason) from None
        return agent, project_code(project), number, text_of(name, "name", 100)

    def _customer_of(self, mobile: str) -> int | None:
        found = self.crm.customers.find(mobile=mobile)
        return found[0].id if found else None

    def _register(self, agent: str, code: str, mobile: str, name: str | None,
                  actor: Actor | None, now: dt.datetime | None, *,
                  unless_held: bool = False) -> RegistrationRow | None:
        """The registration stored (``unless_held``: none when the agent's agency
        holds an active one of ``mobile`` at ``code`` already)."""
        customer_id = self._customer_of(mobile)

        def attempt() -> RegistrationRow | None:
            # "now" taken again on a retry: a writer that won meanwhile registered
            # later than a time taken before it.
            with self.crm.unit_of_work(actor) as uow:
                reads = RegistrationReads(uow, [agent], [code], [customer_id])
                return self._register_in(uow, reads, agent, code, mobile, name, customer_id,
                                         now or utcnow(), unless_held=unless_held)

        return retrying(attempt)

    def _register_in(self, uow: UnitOfWork, reads: RegistrationReads, agent_id: str, code: str,
                     mobile: str, name: str | None, customer_id: int | None,
                     now: dt.datetime, *, unless_held: bool = False) -> RegistrationRow | None:
        """One registration judged and stored, with what ``reads`` (made in ``uow``
        for it, or for a batch of them) read."""
        session = uow.session
        if customer_id is not None:
            # Found by mobile before this transaction: resolved again and locked, so a
            # merge since (or running) leaves the registration on the survivor.
            customer_id = reads.survivor[customer_id]
        agent = reads.agents.get(agent_id)
        # The project checked in the registration's own transaction (one fewer than a
        # crm.projects.get), and still before the agent.
        known_project_id(session, code)
        if agent is None:
            raise NotFound(f"no such agent {agent_id!r}")
        agency = reads.agency_rows[agent.agency]
        assert agency is not None
        lock_person(session, code, mobile)
        if unless_held and session.scalar(_HELD_BY_AGENCY, {
                "mobile": mobile, "project": code, "agency": agency.code}):
            return None
        book = reads.books[code]
        version = book.in_force(now)
        # The mobile's rows held until their decisions are stored (store_decision finds
        # them in the session rather than reading each again).
        rows = session.scalars(_REGISTRATIONS_OF, {"mobiles": [mobile], "project": code}).all()
        events = events_for(uow, mobile, code, customer_id, agencies=reads.agencies, rows=rows,
                            customer=None if customer_id is None else reads.customers[customer_id])
        # Stale rows of this mobile and project are decided first, under the lock.
        store_decision(uow, attribute(events, book, now), customer_id, now)
        active = 0
        if agency.status == "active":
            held = session.scalars(_HELD_BY_AGENT, {"agent": agent_id, "project": code}).all()
            active = sum(1 for r in held if as_of(r, now)[0] in ("pending", "confirmed"))
        new = Event("registration", now, _NEW, agency.code, agent_id,
                    rule_version=version.version)
        outcome = attribute([*events, new], book, now).of(_NEW)
        assert outcome is not None
        reason = acceptance(outcome, version, agency=agency.code,
                            agency_active=agency.status == "active", agent_active=active)
        state = "rejected" if reason else outcome.state
        row = RegistrationRow(
            agent_id=agent_id, agency=agency.code, project=code, mobile=mobile,
            name=(name or "").strip() or None, customer_id=customer_id, registered_at=now,
            rule_version=version.version, state=state,
            reason=(reason or outcome.explanation)[:300],
            explanation=(reason or outcome.explanation)[:1000],
            decided_version=version.version, decided_at=now,
            valid_until=outcome.times["valid_until"],
            confirmed_at=outcome.times.get("confirmed_at"),
            protected_until=outcome.times.get("protected_until"),
            ended_at=now if reason else outcome.ended_at,
        )
        session.add(row)
        session.flush()
        _transition(session, row.id, state, row.reason, version.version, now, now)
        return row

    def visit(self, project: str, mobile: str, agent: str | None = None,
              name: str | None = None, *, at: dt.datetime | None = None,
              actor: Actor | None = None) -> Registration | None:
        """Log a visit at the sales office (the core's interaction, creating or matching
        the customer by mobile), which judges; returns the registration it decided,
        if any. A confirmed registration's agency becomes the customer's source at the
        project.

        Under ``visit_is_king`` a visit accompanied by an agent whose agency holds no
        registration of the customer registers them for that agent at the visit's time:
        the first accompanied visit decides, whoever registered before."""
        return self.visits(project, [VisitIn(mobile=mobile, agent=agent, name=name, at=at)],
                           actor=actor)[0]

    def visits(self, project: str, visits: Sequence[VisitIn], *,
               actor: Actor | None = None) -> list[Registration | None]:
        """``visit`` for many visits at ``project``, in order: the same rows and results
        as one ``visit`` per entry, the visits logged with one ``log_many`` (one unit of
        work, the batch hooks judging once for all) for each run of distinct customers
        (a customer's second visit starts a new run, as it must see the first's
        project link). Every agent is checked before anything is written."""
        require_role(actor, OFFICE, "log visits")
        code = project_code(project)
        now = utcnow()
        for v in visits:
            if v.at is not None and v.at.tzinfo is not None \
                    and v.at > now + dt.timedelta(minutes=1):
                raise InvalidInput("at", "a visit cannot be in the future")
        king = [False] * len(visits)
        if any(v.agent is not None for v in visits):
            with self.crm.unit_of_work(actor, readonly=True) as uow:
                for agent in dict.fromkeys(v.agent for v in visits if v.agent is not None):
                    if uow.session.get(AgentRow, agent) is None:
                        raise NotFound(f"no such agent {agent!r}")
                book = rule_book(self.crm, uow.session, code)
                king = [v.agent is not None and book.in_force(v.at or now).rules.visit_is_king
                        for v in visits]
        results: list[Registration | None] = []
        start = 0
        while start < len(visits):
            run: list[Customer] = []
            for v in visits[start:]:
                customer = self._visitor(v, actor)
                if any(c.id == customer.id for c in run):
                    break
                run.append(customer)
            results += self._visit_run(code, visits[start:start + len(run)],
                                       king[start:start + len(run)], run, actor)
            start += len(run)
        return results

    def _visitor(self, visit: VisitIn, actor: Actor | None) -> Customer:
        """The visitor's customer as before the visit: added (or their empty name
        filled) through ``customers.add`` only when that changes something, since a
        known customer's add is a unit of work and every plugin's hooks for nothing
        (most visitors are known: the agency registered them)."""
        try:
            found = self.crm.customers.find(mobile=visit.mobile)
        except InvalidInput:
            found = []  # the add says why the mobile is refused
        if found and (visit.name is None or found[0].name is not None):
            return found[0]
        return self.crm.customers.add({"mobile": visit.mobile, "name": visit.name},
                                      actor=actor).customer

    def _visit_run(self, code: str, visits: Sequence[VisitIn], king: Sequence[bool],
                   customers: Sequence[Customer],
                   actor: Actor | None) -> list[Registration | None]:
        """Visits of distinct customers: logged, judged, their registrations read and
        the customers linked to the project with a confirmed registration's agency as
        source."""
        logged = self.crm.interactions.log_many([{
            "customer_id": c.id, "kind": "visit", "project": code, "occurred_at": v.at,
            "data": {"agent": v.agent} if v.agent else {},
        } for v, c in zip(visits, customers, strict=True)], actor=actor)
        numbers = [normalise_mobile(v.mobile, self.crm.config.default_region) for v in visits]
        for v, number, interaction, is_king in zip(visits, numbers, logged, king, strict=True):
            if v.agent is not None and is_king:
                self._king_registers(v.agent, code, number, v.name, interaction.occurred_at,
                                     actor)
        latest: dict[str, RegistrationRow] = {}
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            for row in uow.session.scalars(_LATEST_OF, {"mobiles": sorted(set(numbers)),
                                                        "project": code}):
                latest.setdefault(row.mobile or "", row)
            read_at = utcnow()
            results = [registration_model(latest[n], read_at, actor) if n in latest else None
                       for n in numbers]
        for v, number, customer in zip(visits, numbers, customers, strict=True):
            decided = latest.get(number)
            source = f"channel:{decided.agency}" if decided and decided.confirmed_at else None
            link = next((p for p in customer.projects if p.project == code), None)
            # Linked already, with a source or none to fill: the add would change nothing.
            if link is not None and (link.source is not None or source is None):
                continue
            self.crm.customers.add({"mobile": v.mobile, "project": code, "source": source},
                                   actor=actor)
        return results

    def _king_registers(self, agent: str, code: str, mobile: str, name: str | None,
                        at: dt.datetime, actor: Actor | None) -> None:
        # A refusal (a suspended agency, an agent over the cap) is stored with its reason.
        self._register(agent, code, mobile, text_of(name, "name", 100), actor, at,
                       unless_held=True)

    def registrations(self, *, agency: str | None = None, state: str | None = None,
                      project: str | None = None, actor: Actor | None = None,
                      now: dt.datetime | None = None) -> list[Registration]:
        """Registrations read as of now (newest first); a partner sees their own
        agency's only, with masked mobiles and names."""
        now = now or utcnow()
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = select(RegistrationRow).order_by(RegistrationRow.registered_at.desc(),
                                                     RegistrationRow.id.desc())
            if actor is not None and actor.role == "partner":
                own = uow.session.get(AgentRow, actor.staff_id)
                if own is None:
                    raise Forbidden("only an agency's agents see its registrations")
                query = query.where(RegistrationRow.agency == own.agency)
            elif actor is not None:
                require_role(actor, (*OFFICE, "analyst"), "list registrations")
            if agency:
                query = query.where(RegistrationRow.agency == agency)
            if project:
                query = query.where(RegistrationRow.project == project_code(project))
            rows = list(uow.session.scalars(query))
            full = shown_in_full(self.crm, uow.session, actor, (r.customer_id for r in rows))
            found = [registration_model(r, now, actor, full=r.customer_id in full)
                     for r in rows]
        return [r for r in found if state is None or r.state == state]

    def explain(self, registration: int, *, actor: Actor | None = None,
                now: dt.datetime | None = None) -> Explanation:
        """Why a registration is in its state: the decision replayed from the events."""
        require_role(actor, (*OFFICE, "analyst"), "explain registrations")
        now = now or utcnow()
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            row = uow.session.get(RegistrationRow, registration) \
                if valid_id(registration) else None
            if row is None:
                raise NotFound(f"no such registration {registration}")
            transitions = [
                Transition(state=t.state, reason=t.reason, rule_version=t.rule_version, at=t.at)
                for t in uow.session.scalars(select(TransitionRow).where(
                    TransitionRow.registration_id == row.id).order_by(TransitionRow.id))]
            full = shown_in_full(self.crm, uow.session, actor, [row.customer_id])
            model = registration_model(row, now, actor, full=row.customer_id in full)
            decided = None
            if row.state != "rejected" and row.mobile is not None:
                book = rule_book(self.crm, uow.session, row.project)
                decided = attribute(events_for(uow, row.mobile, row.project, row.customer_id),
                                    book, now).of(row.id)
        if decided is None:
            return Explanation(registration=model, state=model.state,
                               rule_version=row.decided_version,
                               explanation=row.explanation or model.reason or "",
                               times={}, transitions=transitions)
        return Explanation(registration=model, state=decided.state, rule_version=decided.rule,
                           explanation=decided.explanation, times=decided.times,
                           transitions=transitions)

    def sweep(self, *, actor: Actor | None = None,
              now: dt.datetime | None = None) -> SweepResult:
        """Write the expiries and releases that time brought (idempotent: a second run
        changes nothing)."""
        require_role(actor, MANAGERS, "sweep registrations")
        now = now or utcnow()
        expired = released = checked = 0
        with self.crm.unit_of_work(actor) as uow:
            rows = uow.session.scalars(select(RegistrationRow).where(
                RegistrationRow.state.in_(("pending", "confirmed")))
                .order_by(RegistrationRow.id).with_for_update()).all()
            for row in rows:
                checked += 1
                state, reason, ended = as_of(row, now)
                if state == row.state:
                    continue
                row.state, row.reason, row.ended_at = state, reason, ended
                row.decided_at = now
                uow.session.flush()
                _transition(uow.session, row.id, state, reason, row.rule_version,
                            ended or now, now)
                expired += state == "expired"
                released += state == "released"
        return SweepResult(checked=checked, expired=expired, released=released)


def service(crm: CRM) -> Channels:
    return Channels(crm)
