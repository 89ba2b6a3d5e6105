"""Who sees what: the one module that decides, for an actor, how much of a customer a
read shows. Every read path (the 360 view, ``find``, segment listings, list exports,
plugins' read APIs and commands) asks it; nothing else masks.

Three presentations of a customer:

- ``full``: everything;
- ``masked``: identifiers masked (``138****5678``, ``110101********123X``,
  ``z***@example.com``, ``王**``), the birth date left out, the rest shown;
- ``minimal`` (partners): the masked name and mobiles only; no ID card, email,
  WeChat, birth date, gender, persona or budget.

Who may see a customer in full: admins (and SDK calls without an actor) everyone;
a manager the customers of their department's projects; a consultant (``sales``)
the customers they own at some project; ``service`` the customers with a case
assigned to them or their department. Partners and analysts never. A manager is
*shown* masked data even where allowed full, and asks with ``disclose`` (audited):
bulk views of a whole department are where leaks start. Free text (interaction
summaries, case subjects and descriptions, notes) is withheld from partners and
analysts: masking cannot reach inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from sqlalchemy import Connection, or_, select
from sqlalchemy.orm import Session

from . import identity
from .db import chunks
from .errors import Forbidden
from .models import Actor, Case, CaseHistoryEntry, Customer, CustomerView, IdentityEntry

if TYPE_CHECKING:
    from .crm import CRM
    from .models import Interaction, Task, TimelineEntry

Presentation = Literal["full", "masked", "minimal"]
#: what stands in for free text a role may not read
HIDDEN = "(hidden)"
#: roles that never read free text about customers
NO_FREE_TEXT = frozenset({"partner", "analyst"})
#: roles that never see a customer's identifiers in full, whoever the customer is (a
#: plugin's rows that hold a mobile without a customer record mask it for them too)
NEVER_FULL = frozenset({"partner", "analyst"})
#: what a partner never sees, so may not select customers by either
NO_IDENTIFIERS_FOR_PARTNER = frozenset({"name", "id_card", "email", "wechat_unionid",
                                        "birth_date", "gender", "persona", "budget",
                                        "external_id", "source_system"})
#: what ``mask_customer`` masks or leaves out: a role that never sees a customer in full
#: selects by these only whole (``eq``), a value it already holds
MASKED_FIELDS = frozenset({"name", "mobile", "id_card", "email", "wechat_unionid",
                           "birth_date"})
#: roles shown masked data even where they may see it in full (they ``disclose``)
DISCLOSE_TO_SEE = frozenset({"manager"})

_T = TypeVar("_T")


@dataclass(frozen=True)
class Scope:
    """An actor with what the directory says of them, resolved once per read."""

    #: None for SDK calls without an actor (the integrator's own code)
    actor: Actor | None
    role: str
    staff_id: str | None
    #: the actor's department in the directory, if they are in it
    department: str | None
    #: codes of the projects of that department (a manager's scope)
    projects: frozenset[str]

    @classmethod
    def of_role(cls, actor: Actor) -> Scope:
        """The scope of rules that need only the role (free text, partners, admins):
        no look-up in the directory."""
        return cls(actor, actor.role, actor.staff_id, None, frozenset())

    @property
    def sees_all(self) -> bool:
        return self.role in ("admin", "sdk")

    @property
    def free_text(self) -> bool:
        """Whether this actor may read free text about customers."""
        return self.role not in NO_FREE_TEXT


def scope_of(session: Session | Connection | None, actor: Actor | None) -> Scope:
    """The actor's scope: their department and its projects, from the directory
    (``session`` may be None for ``actor`` None: the SDK's own calls need no look-up)."""
    from .tables import DepartmentProjectRow, ProjectRow, StaffRow

    if actor is None:
        return Scope(None, "sdk", None, None, frozenset())
    if actor.role in ("admin", "partner", "analyst", "sales"):
        # Their rules need nothing from the directory.
        return Scope.of_role(actor)
    assert session is not None
    department = session.scalar(select(StaffRow.department).where(StaffRow.id == actor.staff_id))
    projects: frozenset[str] = frozenset()
    if department is not None and actor.role == "manager":
        projects = frozenset(session.scalars(
            select(ProjectRow.code)
            .join(DepartmentProjectRow, DepartmentProjectRow.project_id == ProjectRow.id)
            .where(DepartmentProjectRow.department == department)
        ))
    return Scope(actor, actor.role, actor.staff_id, department, projects)


def _serviced(session: Session | Connection, scope: Scope, ids: list[int]) -> set[int]:
    """Of ``ids``, the customers with a case assigned to the actor or their department."""
    from .tables import CaseRow

    if not ids:
        return set()
    mine = [CaseRow.assignee == scope.staff_id]
    if scope.department is not None:
        mine.append(CaseRow.department == scope.department)
    found: set[int] = set()
    for part in chunks(ids):
        found.update(session.scalars(
            select(CaseRow.customer_id).where(CaseRow.customer_id.in_(part), or_(*mine))
            .distinct()
        ))
    return found


def allowed_full(session: Session | Connection, scope: Scope,
                 customers: Sequence[Customer]) -> set[int]:
    """Of ``customers``, the ids the actor may see in full (whether or not a read shows
    them so: a manager's reads are masked until they disclose)."""
    if scope.sees_all:
        return {c.id for c in customers}
    if scope.role == "manager":
        return {c.id for c in customers
                if any(p.project in scope.projects for p in c.projects)}
    if scope.role == "sales":
        return {c.id for c in customers
                if any(p.owner_staff == scope.staff_id for p in c.projects)}
    if scope.role == "service":
        return _serviced(session, scope, [c.id for c in customers])
    return set()


def presentations(session: Session | Connection, scope: Scope,
                  customers: Sequence[Customer]) -> dict[int, Presentation]:
    """How each of ``customers`` is shown to the actor."""
    if scope.role == "partner":
        return {c.id: "minimal" for c in customers}
    if scope.role in DISCLOSE_TO_SEE:
        return {c.id: "masked" for c in customers}
    full = allowed_full(session, scope, customers)
    return {c.id: "full" if c.id in full else "masked" for c in customers}


def mask_customer(customer: Customer, how: Presentation) -> Customer:
    """``customer`` as ``how`` shows it."""
    if how == "full":
        return customer
    name = identity.mask_name(customer.name) if customer.name else None
    mobiles = [identity.mask_mobile(m) for m in customer.mobiles]
    if how == "minimal":
        return customer.model_copy(update={
            "name": name, "mobiles": mobiles, "id_card": None, "email": None,
            "wechat_unionids": [], "gender": None, "birth_date": None, "persona": None,
            "budget": None, "source_system": None, "external_id": None, "masked": True,
        })
    return customer.model_copy(update={
        "name": name, "mobiles": mobiles,
        "id_card": identity.mask_id_card(customer.id_card) if customer.id_card else None,
        "email": identity.mask_email(customer.email) if customer.email else None,
        "wechat_unionids": [identity.mask_wechat_unionid(u) for u in customer.wechat_unionids],
        "birth_date": None, "masked": True,
    })


def mask_identity(entry: IdentityEntry, how: Presentation) -> IdentityEntry | None:
    """An identity of the 360 view as ``how`` shows it (None: left out)."""
    if how == "full":
        return entry
    if entry.kind == "mobile":
        value = identity.mask_mobile(identity.normalise_mobile(entry.value)) \
            if _is_mobile(entry.value) else "****"
    elif how == "minimal":
        return None
    elif entry.kind == "id_card":
        value = identity.mask_id_card(entry.value)
    else:
        value = identity.mask_wechat_unionid(entry.value)
    return entry.model_copy(update={"value": value})


def _is_mobile(value: str) -> bool:
    try:
        identity.normalise_mobile(value)
    except identity.IdentityError:
        return False
    return True


def free_text(scope: Scope, text: str | None) -> str | None:
    """``text``, or :data:`HIDDEN` for a role that may not read free text."""
    if text is None or scope.free_text:
        return text
    return HIDDEN


def case_for(scope: Scope, case: Case) -> Case:
    """A case as the actor may read it: subject, description and notes are free text."""
    if scope.free_text:
        return case
    return case.model_copy(update={
        "subject": HIDDEN, "description": free_text(scope, case.description),
        "history": [_history_for(scope, h) for h in case.history],
    })


def _history_for(scope: Scope, entry: CaseHistoryEntry) -> CaseHistoryEntry:
    return entry.model_copy(update={"note": free_text(scope, entry.note)})


def task_for(scope: Scope, task: Task) -> Task:
    """A follow-up task as ``scope`` may read it: no note or reason for partners and
    analysts."""
    if scope.free_text:
        return task
    return task.model_copy(update={"note": free_text(scope, task.note),
                                   "cancel_reason": free_text(scope, task.cancel_reason)})


def interaction_for(scope: Scope, interaction: Interaction) -> Interaction:
    """An interaction as the actor may read it (the summary is free text, the details
    may hold anything)."""
    if scope.free_text:
        return interaction
    # The details too: a plugin or an integrator may have put a caller's number there.
    return interaction.model_copy(update={"summary": free_text(scope, interaction.summary),
                                          "data": {}})


def timeline_entry_for(scope: Scope, entry: TimelineEntry) -> TimelineEntry:
    """A timeline line as the actor may read it: a title is free text (a summary, or a
    plugin's words about the person), and so may be the details."""
    if scope.free_text:
        return entry
    return entry.model_copy(update={"title": f"{entry.kind} {HIDDEN}", "data": {}})


class AccessService:
    """``crm.access``: the rules above for callers and plugins.

    ``crm.access.present(actor, customers)`` gives the customers as the actor may see
    them; ``crm.access.can_see(actor, customer)`` says how (``full``, ``masked`` or
    ``minimal``); ``crm.access.free_text(actor, text)`` hides free text from the
    roles that may not read it. An ``actor`` of None is the integrator's own code:
    it sees everything.
    """

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def scope(self, actor: Actor | None, session: Session | Connection | None = None) -> Scope:
        """The actor's scope (their department and its projects)."""
        if actor is None or session is not None:
            return scope_of(session, actor)
        with self.crm.unit_of_work(readonly=True) as uow:
            return scope_of(uow.session, actor)

    def present(self, actor: Actor | None, customers: Iterable[Customer],
                session: Session | Connection | None = None) -> list[Customer]:
        """``customers`` as ``actor`` may see them, in the same order."""
        listed = list(customers)
        if actor is None or actor.role == "admin" or not listed:
            return listed
        if session is None:
            with self.crm.unit_of_work(readonly=True) as uow:
                return self.present(actor, listed, uow.session)
        scope = scope_of(session, actor)
        how = presentations(session, scope, listed)
        return [mask_customer(c, how[c.id]) for c in listed]

    def can_see(self, actor: Actor | None, customer: Customer,
                session: Session | Connection | None = None) -> Presentation:
        """How a read shows ``customer`` to ``actor``."""
        if actor is None or actor.role == "admin":
            return "full"
        if session is None:
            with self.crm.unit_of_work(readonly=True) as uow:
                return self.can_see(actor, customer, uow.session)
        return presentations(session, scope_of(session, actor), [customer])[customer.id]

    def may_see_full(self, actor: Actor | None, customer: Customer,
                     session: Session | Connection) -> bool:
        """Whether ``actor`` may see ``customer`` in full (by disclosing, for a manager)."""
        scope = scope_of(session, actor)
        return customer.id in allowed_full(session, scope, [customer])

    def free_text(self, actor: Actor | None, text: str | None) -> str | None:
        """``text``, or ``(hidden)`` for partners and analysts."""
        if actor is None:
            return text
        return free_text(Scope.of_role(actor), text)

    def case_for(self, actor: Actor | None, case: Case) -> Case:
        """A case as ``actor`` may read it (its free text hidden from partners and
        analysts)."""
        if actor is None:
            return case
        return case_for(Scope.of_role(actor), case)

    def view_for(self, actor: Actor | None, view: CustomerView,
                 session: Session | Connection) -> CustomerView:
        """The 360 view as ``actor`` may see it."""
        if actor is None or actor.role == "admin":
            return view
        scope = scope_of(session, actor)
        how = presentations(session, scope, [view.customer])[view.customer.id]
        return mask_view(scope, view, how)

    def require_full(self, actor: Actor | None, customer: Customer,
                     session: Session | Connection) -> None:
        """Refuse unless ``actor`` may see ``customer`` in full."""
        if actor is None or self.may_see_full(actor, customer, session):
            return
        raise Forbidden(f"role {actor.role} ({actor.staff_id}) may not see customer "
                        f"{customer.id} in full")


def mask_view(scope: Scope, view: CustomerView, how: Presentation) -> CustomerView:
    """The 360 view with ``how`` applied to the customer and the free text hidden
    from the roles that may not read it."""
    identities = [masked for entry in view.identities
                  if (masked := mask_identity(entry, how)) is not None]
    return view.model_copy(update={
        "customer": mask_customer(view.customer, how),
        "identities": identities,
        "birthplace": None if how == "minimal" else view.birthplace,
        "timeline": [timeline_entry_for(scope, e) for e in view.timeline],
        "cases": [case_for(scope, c) for c in view.cases],
        "consents": [] if how == "minimal" else view.consents,
        "tasks": [] if how == "minimal" else [task_for(scope, t) for t in view.tasks],
    })



def check_segment(actor: Actor | None, definition: Mapping[str, Any] | None) -> None:
    """Refuse a segment that would uncover what the actor's role is shown masked: a
    partner's on identifiers they never see or on a plugin's data, and a partner's or
    analyst's on a part, a range or a list of candidates of a masked value (counting
    by ``mobile contains 1381234`` digit by digit spells out the masked digits)."""
    if actor is None or actor.role not in NEVER_FULL or definition is None:
        return
    for name, op in _conditions(definition):
        # A plugin's field (membership.points, survey.last_nps) selects on data the
        # plugins refuse a partner: only the core's own fields, identifiers aside.
        if actor.role == "partner" and (name in NO_IDENTIFIERS_FOR_PARTNER or "." in name):
            raise Forbidden(f"role partner may not select customers by {name}")
        # One whole value they already know, yes; a part of one, a range, or a list of
        # candidates halved request by request, would uncover what the masking hides.
        if name in MASKED_FIELDS and op != "eq":
            raise Forbidden(f"role {actor.role} may select by one whole {name} only (op eq)")


def _conditions(node: Any) -> Iterator[tuple[str, str]]:
    """``(field, op)`` of every condition in a segment definition, however nested."""
    if isinstance(node, Mapping):
        if isinstance(node.get("field"), str):
            yield node["field"], str(node.get("op", ""))
        for value in node.values():
            yield from _conditions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _conditions(item)


#: the roles that change data; partners and analysts only read
WRITERS = ("admin", "manager", "sales", "service")
#: the roles that move customers from one consultant to another (reassign, a release to
#: the public pool, a claim for someone else): a consultant who could would take a
#: colleague's customers, and see them in full as their owner
OWNERSHIP_MANAGERS = ("admin", "manager")


def check_writer(actor: Actor | None) -> None:
    """Refuse a change by a role that only reads (partner, analyst): a write would also
    tell them what they may not read (adding a record with an ID card says whose it is)."""
    if actor is not None and actor.role not in WRITERS:
        raise Forbidden(f"role {actor.role} may not change data (only {', '.join(WRITERS)})")


def require_role(actor: Actor | None, roles: Iterable[str], what: str) -> None:
    """Refuse ``what`` unless ``actor`` (None: the integrator's code) has one of ``roles``."""
    allowed = tuple(roles)
    if actor is not None and actor.role not in allowed:
        raise Forbidden(f"role {actor.role} may not {what} (only {', '.join(allowed)})")
