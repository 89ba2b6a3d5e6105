"""The interaction timeline: append-only."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from sqlalchemy import Integer, Select, Table, bindparam, insert, select
from sqlalchemy.orm import Session

from .access import check_writer, interaction_for, scope_of
from .customers import resolve_id
from .db import UnitOfWork, utcnow
from .errors import InvalidInput
from .models import Actor, Interaction, InteractionIn, first_error
from .projects import known_project_id, project_code, project_id_in
from .tables import InteractionRow, ProjectRow
from .values import MAX_MINUTES

if TYPE_CHECKING:
    from .crm import CRM

_INSERT = insert(cast(Table, InteractionRow.__table__))


def _to_model(row: InteractionRow, code: str | None) -> Interaction:
    return Interaction(
        id=row.id,
        customer_id=row.customer_id,
        kind=row.kind,
        channel=row.channel,
        project=code,
        staff=row.staff,
        occurred_at=row.occurred_at,
        summary=row.summary,
        data=row.data or {},
        minutes=row.minutes,
    )


class InteractionService:
    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def log(
        self,
        customer_id: int,
        data: InteractionIn | Mapping[str, Any],
        actor: Actor | None = None,
    ) -> Interaction:
        """Append an interaction (call, visit, SMS, WeChat, email, event, ...)."""
        check_writer(actor)
        if not isinstance(data, InteractionIn):
            try:
                data = InteractionIn.model_validate(dict(data))
            except ValidationError as exc:
                raise InvalidInput(*first_error(exc)) from None
        with self.crm.unit_of_work(actor) as uow:
            self.crm.directory.check(uow, [data.staff])
            cid = resolve_id(uow.session, customer_id)
            return self.log_in(
                uow,
                cid,
                kind=data.kind,
                channel=data.channel,
                project=data.project,
                staff=data.staff or (actor.staff_id if actor else None),
                occurred_at=data.occurred_at,
                summary=data.summary,
                data=data.data,
                minutes=data.minutes,
            )

    def log_in(
        self,
        uow: UnitOfWork,
        customer_id: int,
        *,
        kind: str,
        channel: str | None = None,
        project: str | None = None,
        staff: str | None = None,
        occurred_at: dt.datetime | None = None,
        summary: str | None = None,
        data: dict[str, Any] | None = None,
        minutes: int | None = None,
    ) -> Interaction:
        """Append inside an existing unit of work (used by other services and plugins)."""
        code = project_code(project) if project else None
        pid = project_id_in(uow, code) if code else None
        return self.append_in(
            uow, customer_id, kind=kind, channel=channel, project=code, project_id=pid,
            staff=staff, occurred_at=occurred_at, summary=summary, data=data, minutes=minutes,
        )

    def append_in(
        self,
        uow: UnitOfWork,
        customer_id: int,
        *,
        kind: str,
        project: str | None,
        project_id: int | None,
        channel: str | None = None,
        staff: str | None = None,
        occurred_at: dt.datetime | None = None,
        summary: str | None = None,
        data: dict[str, Any] | None = None,
        minutes: int | None = None,
    ) -> Interaction:
        """``log_in`` for a caller that already holds the project's code and id."""
        if minutes is not None and not 0 <= minutes <= MAX_MINUTES:
            raise InvalidInput("minutes", f"minutes must be from 0 to {MAX_MINUTES}, "
                                          f"not {minutes}")
        session = uow.session
        # Pending ORM changes first, as an ORM flush would have written them.
        session.flush()
        values = {
            "customer_id": customer_id,
            "kind": kind,
            "channel": channel,
            "project_id": project_id,
            "staff": staff,
            "occurred_at": occurred_at or utcnow(),
            "summary": summary,
            "data": data or {},
            "created_at": utcnow(),
            "minutes": minutes,
        }
        # A Core insert: an ORM object and its flush cost several times more, and
        # nothing here needs the row object afterwards.
        result = session.connection().execute(_INSERT, values)
        interaction = Interaction(
            id=result.inserted_primary_key[0],  # type: ignore[index]
            customer_id=customer_id,
            kind=kind,
            channel=channel,
            project=project,
            staff=staff,
            occurred_at=values["occurred_at"],
            summary=summary,
            data=values["data"],
            minutes=minutes,
        )
        self.crm.hooks.interaction_logged(uow, interaction)
        return interaction

    def list(
        self, customer_id: int, limit: int | None = None, actor: Actor | None = None,
        *, project: str | None = None,
    ) -> builtins.list[Interaction]:
        """The customer's interactions, newest first; only those at ``project`` when
        given (an unknown project is UnknownProject)."""
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            cid = resolve_id(uow.session, customer_id)
            pid = known_project_id(uow.session, project_code(project)) if project is not None \
                else None
            scope = scope_of(uow.session, actor)
            return [interaction_for(scope, i)
                    for i in self.list_in(uow.session, cid, limit, project_id=pid)]

    def list_in(
        self, session: Session, customer_id: int, limit: int | None = None,
        kinds: Iterable[str] | None = None, *, project_id: int | None = None,
    ) -> builtins.list[Interaction]:
        """The customer's interactions (of ``kinds``, when given), newest first,
        inside the caller's transaction."""
        # builtins.list: inside this class ``list`` is the method above.
        shape = (kinds is not None, project_id is not None, limit is not None)
        query = _LIST_QUERIES.get(shape)
        if query is None:
            query = _LIST_QUERIES[shape] = _list_query(*shape)
        params: dict[str, Any] = {"cid": customer_id}
        if kinds is not None:
            params["kinds"] = builtins.list(kinds)
        if project_id is not None:
            params["pid"] = project_id
        if limit is not None:
            params["limit"] = limit
        return [_to_model(row, code) for row, code in session.execute(query, params)]


def _list_query(kinds: bool, project: bool, limit: bool) -> Select[InteractionRow, str]:
    """``list_in``'s statement for one combination of filters, with parameters."""
    query = (
        select(InteractionRow, ProjectRow.code)
        .outerjoin(ProjectRow, ProjectRow.id == InteractionRow.project_id)
        .where(InteractionRow.customer_id == bindparam("cid"))
        .order_by(InteractionRow.occurred_at.desc(), InteractionRow.id.desc())
    )
    if kinds:
        query = query.where(InteractionRow.kind.in_(bindparam("kinds", expanding=True)))
    if project:
        query = query.where(InteractionRow.project_id == bindparam("pid"))
    if limit:
        query = query.limit(bindparam("limit", type_=Integer))
    return query


# Prebuilt per combination of filters: plugins' hooks read a customer's history on
# every stage change (membership counts contracts), and building the statement cost
# about as much as running it.
_LIST_QUERIES: dict[tuple[bool, bool, bool], Select[InteractionRow, str]] = {}
