"""Static lists: the customers a CSV or XLSX file names, resolved as the core
resolves identities."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from recrm_core import (
    CUSTOMER_COLUMNS,
    Actor,
    ErrorsFile,
    InvalidInput,
    NotFound,
    RejectedRow,
    UnknownColumns,
    Vocabulary,
    insert_or_ignore,
    open_table,
    require_role,
    utcnow,
)

from ..tables import ListMemberRow, ListRow
from .rules import SENDERS, _name, _Service

#: the fields a list row names its customer by
_LIST_KEYS = ("mobile", "mobiles", "id_card")


class _Lists(_Service):
    """The static lists."""

    def import_list(self, name: str, path: str | Path, actor: Actor | None = None,
                    errors_path: str | Path | None = None, *, encoding: str | None = None,
                    sheet: str | None = None) -> dict[str, Any]:
        """Add the customers a CSV or XLSX file names (by mobile or ID card, resolved as
        the core resolves identities) to list ``name``. Its header is found as the
        customer import finds its own (title rows above it are skipped); columns the
        customer import does not know (备注) are ignored and named in
        ``ignored_columns``. Every row read falls in one count, so they add up to
        ``rows``: ``added``; ``already`` (on the list before this import: idempotent,
        a row is never added twice); ``repeated`` (a customer an earlier row of this
        file named); ``unknown`` (naming nobody); ``rejected`` (a row the file cannot
        give: an invalid mobile or ID card, neither, a cell beyond the header), each
        with its number, field and reason in ``rejections`` (and ``errors_path``). A file
        without a mobile or ID-card column is refused before the list is made.
        ``encoding`` (CSV) and ``sheet`` (a workbook's; default: the first visible one)
        are the customer import's."""
        require_role(actor, SENDERS, "import lists")
        name = _name(name, "list name")
        counts: dict[str, Any] = {"rows": 0, "added": 0, "already": 0, "repeated": 0,
                                  "unknown": 0, "rejected": 0}
        rejections: list[RejectedRow] = []
        columns = _list_columns(path, encoding, sheet)
        seen: set[int] = set()
        with open_table(path, columns, encoding=encoding, sheet=sheet) as source, \
                ExitStack() as stack:
            fed = set(source.header.fields.values())
            if not fed & set(_LIST_KEYS):
                # a workbook's first sheet is often a cover or instructions
                where = "" if source.sheet is None else \
                    f" (sheet {source.sheet!r}; choose another with --sheet NAME)"
                raise InvalidInput("file", f"{source.path!r} has no mobile or ID-card column"
                                   " (手机 / 身份证) in its header ("
                                   + ", ".join(columns.ignored) + ")" + where
                                   + "; nobody on it could be found")
            errors = stack.enter_context(ErrorsFile(
                errors_path, sheet_rows=source.sheet is not None, reading=path)) \
                if errors_path else None
            with self.crm.unit_of_work(actor) as uow:
                list_id = insert_or_ignore(uow.session, ListRow,
                                           {"name": name, "created_at": utcnow()},
                                           on=[ListRow.name], returning=ListRow.id)
                if list_id is None:
                    list_id = uow.session.scalar(select(ListRow.id)
                                                 .where(ListRow.name == name))
            for line, row in source:
                counts["rows"] += 1
                if not isinstance(row, dict):
                    bad = row
                else:
                    try:
                        customer = self._resolve(row)
                    except InvalidInput as exc:
                        bad = RejectedRow(row=line, field=exc.field, reason=exc.reason,
                                          sheet_row=source.sheet_row)
                    else:
                        counts[self._add_member(list_id, customer, seen, actor)] += 1
                        continue
                counts["rejected"] += 1
                rejections.append(bad)
                if errors is not None:
                    errors.write(bad)
        return {**counts, "ignored_columns": columns.ignored, "rejections": rejections}

    def _add_member(self, list_id: int, customer: int | None, seen: set[int],
                    actor: Actor | None) -> str:
        """Add ``customer`` to the list; the count its row falls in (``seen``: the
        customers earlier rows of this file named)."""
        if customer is None:
            return "unknown"
        if customer in seen:
            return "repeated"
        seen.add(customer)
        with self.crm.unit_of_work(actor) as uow:
            added = insert_or_ignore(uow.session, ListMemberRow,
                                     {"list_id": list_id, "customer_id": customer},
                                     on=[ListMemberRow.list_id, ListMemberRow.customer_id])
        return "added" if added else "already"

    def _resolve(self, row: Mapping[str, Any]) -> int | None:
        """The customer the row names, or None; InvalidInput for a value that is no
        mobile or ID card at all (a typo to fix, not a stranger), and for a row with
        neither (its key cells left blank: a row to complete, not a stranger either)."""
        mobiles = row.get("mobiles", row.get("mobile"))
        given = [m for m in (mobiles if isinstance(mobiles, list) else [mobiles]) if m]
        if not given and not row.get("id_card"):
            raise InvalidInput("mobile,id_card", "no mobile or ID card")
        for mobile in given:
            found = self.crm.customers.find(mobile=str(mobile))
            if found:
                return found[0].id
        if row.get("id_card"):
            found = self.crm.customers.find(id_card=str(row["id_card"]))
            if found:
                return found[0].id
        return None

    def list_size(self, name: str) -> int:
        with self.crm.unit_of_work(readonly=True) as uow:
            list_id = self._list_id(uow.session, name)
            return uow.session.scalar(select(func.count()).where(
                ListMemberRow.list_id == list_id)) or 0

    def _list_id(self, session: Session, name: str) -> int:
        found = session.scalar(select(ListRow.id).where(ListRow.name == name))
        if found is None:
            raise NotFound(f"no list {name!r}")
        return found


def _list_columns(path: str | Path, encoding: str | None, sheet: str | None) -> _ListColumns:
    """The columns of the list file at ``path``: the customer import's, and those of
    its header the customer import does not know, to ignore.

    The header is found by the customer import's own rule
    (:func:`~recrm_core.csvsource.find_header`): a first reading with the customer
    import's columns skips the title rows and names the header's unknown columns; the
    import then reads with those ignored. Ignoring every unknown name from the start
    would make a title row ("2024 VIP 客户名单") a header of one ignored column."""
    try:
        with open_table(path, _ListColumns(()), encoding=encoding, sheet=sheet):
            return _ListColumns(())
    except UnknownColumns as exc:
        return _ListColumns(exc.unknown)


class _ListColumns(Vocabulary):
    """The customer import's columns, and ``unknown`` header names that are ignored
    (fed to a field nothing reads) and remembered in ``ignored``, not a refusal of the
    file."""

    IGNORED = "_ignored"

    def __init__(self, unknown: Iterable[str]) -> None:
        super().__init__({})
        self.aliases = dict(CUSTOMER_COLUMNS.aliases)
        self.known = CUSTOMER_COLUMNS.known
        self.lists = {**CUSTOMER_COLUMNS.lists, self.IGNORED: self.IGNORED}
        self.text_only = CUSTOMER_COLUMNS.text_only
        self.units = CUSTOMER_COLUMNS.units
        self.unknown = {name.strip() for name in unknown}
        self.ignored: list[str] = []

    def field_of(self, cell: str) -> str | None:
        found = super().field_of(cell)
        label = cell.strip()
        if found is not None or (label and label not in self.unknown):
            return found
        if label and label not in self.ignored:
            self.ignored.append(label)
        return self.IGNORED
