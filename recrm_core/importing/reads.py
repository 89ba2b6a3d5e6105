"""A batch's batched reads: the state, ID numbers and project links of the customers
its keys name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from .. import bulkcopy, sqlitebatch
from ..customers import load_customers
from ..db import chunks
from ..models import Customer
from ..resolution import ID_CARD, STATE_FIELDS

_STATE_FIELDS = STATE_FIELDS


@dataclass
class _Link:
    """A customer-project link: existing (``id``) or to be inserted (``id`` None)."""

    id: int | None
    owner_staff: str | None
    source: str | None


def _customer_state(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    if conn.dialect.name == "postgresql":
        return bulkcopy.customer_state(conn, ids, _STATE_FIELDS)
    return sqlitebatch.customer_state(conn, ids, _STATE_FIELDS)


def _id_cards(conn: Connection, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    if conn.dialect.name == "postgresql":
        return bulkcopy.id_cards(conn, ids, ID_CARD)
    # The kind is filtered here, not in SQL: with ``kind = 'id_card'`` in the WHERE
    # clause SQLite (without statistics) searches the UNIQUE (kind, value) index on
    # kind alone and reads every ID card of the table per batch, which made a 1M
    # import ever slower; by customer_id it reads the batch's few identities.
    return {cid: value for cid, kind, value in sqlitebatch.identities_of(conn, ids)
            if kind == ID_CARD}


def _links_of(
    conn: Connection, customer_ids: list[int], project_ids: list[int]
) -> dict[tuple[int, int], _Link]:
    """(customer, project) -> the existing link, for the batch's projects."""
    if not customer_ids or not project_ids:
        return {}
    found = (bulkcopy.links(conn, customer_ids, project_ids)
             if conn.dialect.name == "postgresql"
             else sqlitebatch.links(conn, customer_ids, project_ids))
    return {(cid, pid): _Link(lid, owner, source) for lid, cid, pid, owner, source in found}


def _load_many(session: Session, ids: list[int]) -> dict[int, Customer]:
    """Full models of ``ids`` (survivors for merged-away ids), read in the batch's
    transaction, so they include what the batch wrote."""
    loaded: dict[int, Customer] = {}
    for chunk in chunks(ids):
        loaded.update(load_customers(session, chunk))
    return loaded
