"""Exports of customer lists (``recrm customers export-list``): a segment, or every
customer, streamed into CSV or XLSX with the columns the actor's role may see, masked
as ``access.py`` decides, and recorded in the audit log with the row count."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .listexport import open_list_writer
from .models import Actor, Customer

if TYPE_CHECKING:
    from .crm import CRM

#: every column, in order; partners get :data:`PARTNER_COLUMNS` only
COLUMNS = ("id", "name", "mobiles", "id_card", "email", "wechat_unionids", "gender",
           "birth_date", "persona", "budget", "stage", "projects", "owners", "masked")
PARTNER_COLUMNS = ("id", "name", "mobiles", "stage", "projects")
#: segment fields whose values are personal identifiers: hashed in the audit entry
_IDENTITY_FIELDS = frozenset({"mobile", "id_card", "email", "name", "wechat_unionid"})


def columns_for(actor: Actor | None) -> tuple[str, ...]:
    """The columns of a list export for ``actor``'s role."""
    return PARTNER_COLUMNS if actor is not None and actor.role == "partner" else COLUMNS


def _mobile(value: str) -> str:
    # A mainland mobile as people dial it (a leading '+' would make Excel read a number).
    return value[3:] if value.startswith("+86") else value


def row_of(customer: Customer, columns: tuple[str, ...]) -> list[object]:
    values: dict[str, Any] = {
        "id": customer.id,
        "name": customer.name,
        "mobiles": " ".join(_mobile(m) for m in customer.mobiles),
        "id_card": customer.id_card,
        "email": customer.email,
        "wechat_unionids": " ".join(customer.wechat_unionids),
        "gender": customer.gender,
        "birth_date": customer.birth_date,
        "persona": customer.persona,
        "budget": customer.budget,
        "stage": customer.stage,
        "projects": " ".join(f"{p.project}:{p.stage}" for p in customer.projects),
        "owners": " ".join(f"{p.project}:{p.owner_staff}" for p in customer.projects
                           if p.owner_staff),
        "masked": "yes" if customer.masked else "no",
    }
    return [values[c] for c in columns]


def audited_definition(crm: CRM, node: Any) -> Any:
    """``node`` with every identity value replaced by its keyed hash: the audit entry
    says which list was exported without holding a mobile in clear."""
    if isinstance(node, list):
        return [audited_definition(crm, item) for item in node]
    if not isinstance(node, Mapping):
        return node
    out = {key: audited_definition(crm, value) for key, value in node.items()}
    if node.get("field") in _IDENTITY_FIELDS and "value" in node:
        kind = str(node["field"])
        value = node["value"]
        values = value if isinstance(value, list) else [value]
        hashed = [crm.audit.hash(kind, str(v)) for v in values]
        out["value"] = hashed if isinstance(value, list) else hashed[0]
    return out


def export_list(crm: CRM, path: str | os.PathLike[str], definition: Mapping[str, Any] | None,
                actor: Actor | None = None) -> int:
    """Write the customers of ``definition`` (every active customer for None) to
    ``path`` (.csv: UTF-8 with BOM; .xlsx) as ``actor`` may see them; returns the rows
    written. Nothing is left under ``path`` when it fails; the export is audited."""
    columns = columns_for(actor)
    # Hash first: a missing key file stops the export before a file is written.
    audited = "all" if definition is None else audited_definition(crm, definition)
    rows = masked = 0
    with open_list_writer(path, columns) as writer:
        for customer in crm.segments.iter_customers(definition, actor=actor):
            writer.write_row(row_of(customer, columns))
            rows += 1
            masked += customer.masked
        # Recorded before the file is finished: an export the log cannot record is
        # not left behind (the writer removes its file when this raises).
        crm.audit.append("export", actor=actor, details={
            "rows": rows, "masked_rows": masked, "segment": audited,
            "format": os.fspath(path).rsplit(".", 1)[-1].lower(), "columns": list(columns)})
    return rows
