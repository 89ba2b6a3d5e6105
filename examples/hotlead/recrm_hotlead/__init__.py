"""recrm-hotlead: tag a customer as a hot lead after their third visit.

The tutorial plugin of recrm (see ``README.md`` beside ``pyproject.toml``). It uses
only public API, ``recrm_core`` and ``recrm_core.cli``, like any third-party plugin:

- settings: ``[hotlead] threshold = 3`` (visits that make a hot lead);
- a table of its own, ``hotlead_tags``, declared on ``recrm_core.Base``;
- ``recrm_interactions_logged`` counts visits inside the operation's transaction;
- ``recrm_customer_merged`` combines the two customers' counts;
- ``recrm_project_renamed`` moves the project code a tag keeps;
- ``recrm_timeline`` adds a "hot lead" entry to the 360 view;
- ``recrm_segment_fields`` registers ``hotlead.hot`` and ``hotlead.visits``;
- ``recrm_register_commands`` adds ``recrm hotlead list [--json]``;
- ``recrm_api_routes`` adds ``GET /v1/hotlead/leads`` to the HTTP API (the route is in
  ``recrm_hotlead.api``, imported by the hook only: FastAPI stays out of the CLI).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, ForeignKey, Integer, String, exists, func, select
from sqlalchemy import delete as sql_delete
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Mapped, Session, mapped_column

from recrm_core import (
    CRM,
    Actor,
    Base,
    Customer,
    ErasureStep,
    Interaction,
    SegmentField,
    TimelineEntry,
    UnitOfWork,
    UTCDateTime,
    hookimpl,
    upsert_many,
    utcnow,
)
from recrm_core.cli import current_actor, emit_json, local_time, pass_crm, table

if TYPE_CHECKING:
    from recrm_core.api import ApiRoutes

#: the plugin's name: its settings section, table prefix and segment-field prefix
name = "hotlead"
__version__ = "0.1.0"


class HotleadSettings(BaseModel):
    """``[hotlead]`` in ``recrm.toml``."""

    model_config = ConfigDict(extra="forbid")

    threshold: int = Field(default=3, ge=1, le=100, description="visits that make a hot lead")


class HotleadTag(Base):
    """Visits counted per customer; ``hot_since`` is set once the threshold is reached."""

    __tablename__ = "hotlead_tags"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    hot_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    #: the project of the visit that made the customer hot
    project: Mapped[str | None] = mapped_column(String(64))


class HotLead(BaseModel):
    """One hot lead, as ``hot_leads()`` and ``recrm hotlead list --json`` return it."""

    customer_id: int
    name: str | None
    mobiles: list[str]
    visits: int
    hot_since: dt.datetime
    project: str | None


def settings(crm: CRM) -> HotleadSettings:
    """The ``[hotlead]`` settings (the defaults when the section is absent)."""
    found: HotleadSettings = crm.settings_for(name)
    return found


def hot_leads(crm: CRM, actor: Actor | None = None) -> list[HotLead]:
    """Every hot lead, earliest first, as ``actor`` may see them: the core's
    ``get_many`` masks the names and mobiles the actor's role may not see in full."""
    with crm.unit_of_work(actor, readonly=True) as uow:
        tags = uow.session.scalars(
            select(HotleadTag)
            .where(HotleadTag.hot_since.is_not(None))
            .order_by(HotleadTag.hot_since, HotleadTag.customer_id)
        ).all()
    customers = {c.id: c for c in crm.customers.get_many([t.customer_id for t in tags],
                                                          actor=actor)}
    leads: list[HotLead] = []
    for tag in tags:
        customer = customers[tag.customer_id]
        assert tag.hot_since is not None  # filtered above
        leads.append(
            HotLead(
                customer_id=tag.customer_id,
                name=customer.name,
                mobiles=customer.mobiles,
                visits=tag.visits,
                hot_since=tag.hot_since,
                project=tag.project,
            )
        )
    return leads


# -- hooks ---------------------------------------------------------------------------------


@hookimpl
def recrm_register_settings(register: Any) -> None:
    register(name, HotleadSettings)


@hookimpl
def recrm_interactions_logged(uow: UnitOfWork, interactions: Sequence[Interaction]) -> None:
    # The batch form: one call per operation (a single visit, or every visit of a
    # batch), so the counting is one statement for the batch, not one per visit.
    visits: dict[int, list[Interaction]] = {}
    for interaction in interactions:
        if interaction.kind == "visit":
            visits.setdefault(interaction.customer_id, []).append(interaction)
    threshold = settings(uow.crm).threshold
    counts = _count_visits(uow.session, {c: len(theirs) for c, theirs in visits.items()})
    for (customer_id, theirs), count in zip(visits.items(), counts, strict=True):
        if count < threshold:
            continue
        # The visit that reached the threshold (the first of the batch if the count
        # had reached it before): hot since then, unless hot already.
        made_hot = theirs[max(threshold - (count - len(theirs)), 1) - 1]
        uow.session.execute(
            sql_update(HotleadTag)
            .where(HotleadTag.customer_id == customer_id, HotleadTag.hot_since.is_(None))
            .values(hot_since=made_hot.occurred_at, project=made_hot.project)
        )


def _count_visits(session: Session, visits: dict[int, int]) -> list[int]:
    """Add each customer's new visits and return their new counts, in that order.

    An upsert, so two sales offices logging visits of one customer at the same
    moment both count: the database serialises them on the primary key.
    """
    counts = upsert_many(session, HotleadTag,
                         [{"customer_id": c, "visits": n} for c, n in visits.items()],
                         on=[HotleadTag.customer_id],
                         set_=lambda new: {"visits": HotleadTag.visits + new.visits},
                         returning=HotleadTag.visits)
    return [int(count) for count in counts]


@hookimpl
def recrm_customer_merged(uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
    session = uow.session
    dup = session.get(HotleadTag, duplicate_id)
    if dup is None:
        return
    kept = session.get(HotleadTag, survivor.id)
    if kept is None:
        kept = HotleadTag(customer_id=survivor.id, visits=0)
        session.add(kept)
    kept.visits += dup.visits
    if dup.hot_since is not None and (kept.hot_since is None or dup.hot_since < kept.hot_since):
        kept.hot_since, kept.project = dup.hot_since, dup.project
    if kept.hot_since is None and kept.visits >= settings(uow.crm).threshold:
        kept.hot_since = utcnow()  # hot only by the visits the two records share
    session.delete(dup)
    session.flush()


@hookimpl
def recrm_customer_export(uow: UnitOfWork, customer: Customer) -> dict[str, Any] | None:
    # A person's copy of their data (PIPL Art. 45): everything this plugin holds on them.
    tag = uow.session.get(HotleadTag, customer.id)
    if tag is None:
        return None
    return {"visits": tag.visits, "project": tag.project,
            "hot_since": tag.hot_since.isoformat() if tag.hot_since else None}


@hookimpl
def recrm_customer_erase(uow: UnitOfWork, customer: Customer,
                         merged_ids: list[int]) -> list[ErasureStep]:
    # Erasure (PIPL Art. 47): the tag is about the person alone, so it goes whole. The
    # core then scans every column of every table, ours included.
    gone = uow.session.execute(
        sql_delete(HotleadTag).where(HotleadTag.customer_id.in_([customer.id, *merged_ids])))
    return [ErasureStep(table="hotlead_tags", deleted=int(getattr(gone, "rowcount", 0) or 0))]


@hookimpl
def recrm_project_renamed(uow: UnitOfWork, old_code: str, new_code: str) -> None:
    # The tag keeps the code, not the project's id: it moves with the project.
    uow.session.execute(
        sql_update(HotleadTag).where(HotleadTag.project == old_code).values(project=new_code)
    )


@hookimpl
def recrm_timeline(uow: UnitOfWork, customer: Customer) -> list[TimelineEntry] | None:
    tag = uow.session.get(HotleadTag, customer.id)
    if tag is None or tag.hot_since is None:
        return None
    return [
        TimelineEntry(
            at=tag.hot_since,
            kind="hot_lead",
            title=f"hot lead ({tag.visits} visits)",
            source=name,
            data={"visits": tag.visits, "project": tag.project},
        )
    ]


def _hot(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    return exists().where(
        HotleadTag.customer_id == customer_id, HotleadTag.hot_since.is_not(None)
    )


def _visits(customer_id: ColumnElement[int]) -> ColumnElement[Any]:
    # Customers without a row have had no visit: 0, not NULL, so "lt 2" finds them.
    return (
        select(func.coalesce(func.max(HotleadTag.visits), 0))
        .where(HotleadTag.customer_id == customer_id)
        .scalar_subquery()
    )


@hookimpl
def recrm_segment_fields(register: Any) -> None:
    register(SegmentField(name="hotlead.hot", expression=_hot, type="bool",
                          description="tagged as a hot lead"))
    register(SegmentField(name="hotlead.visits", expression=_visits, type="int",
                          description="visits counted by the hotlead plugin"))


# -- command line --------------------------------------------------------------------------


@click.group(name)
def hotlead_group() -> None:
    """Hot leads: customers who visited a sales office often enough."""


@hotlead_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one line of JSON.")
@pass_crm
def list_command(crm: CRM, as_json: bool) -> None:
    """List hot leads, earliest first (masked as your role requires: ``--as``)."""
    leads = hot_leads(crm, current_actor())
    if as_json:
        emit_json(leads)
        return
    zone = crm.config.zone
    table(
        "hot leads",
        ["customer", "name", "mobiles", "visits", "hot since", "project"],
        [(lead.customer_id, lead.name, ", ".join(lead.mobiles), lead.visits,
          local_time(lead.hot_since, zone), lead.project) for lead in leads],
    )


@hookimpl
def recrm_register_commands(cli: click.Group) -> None:
    cli.add_command(hotlead_group)


# -- HTTP API ------------------------------------------------------------------------------


@hookimpl
def recrm_api_routes(crm: CRM, routes: ApiRoutes) -> None:
    # The route lives in recrm_hotlead/api.py, which imports FastAPI: only the app
    # that serves it pays for that import, never a command.
    from .api import add_routes

    add_routes(crm, routes)


__all__ = ["HotLead", "HotleadSettings", "HotleadTag", "hot_leads", "name", "settings"]
