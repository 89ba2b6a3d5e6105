"""An import's rows once validated: :class:`Record` (a row as the importer reads it),
:class:`Batch` (a transaction's worth of them), and how validating makes them —
in the importing process or in the worker of :mod:`recrm_core.importrows`, one way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from pydantic import ValidationError

from .collector import paused
from .csvsource import ImportReadError
from .idcards import encrypt, match_value
from .models import CustomerIn, RejectedRow, first_error, trusted
from .resolution import EXTERNAL, ID_CARD, Key, created_state, record_keys
from .resolution import Record as RecordFields

if TYPE_CHECKING:
    from .keys import Keys

_FIELDS = tuple(CustomerIn.model_fields)
#: field name -> its bit in a fields-set mask
_BITS = {name: 1 << i for i, name in enumerate(_FIELDS)}


class Record(NamedTuple):
    """A validated row as the importer reads it: ``CustomerIn``'s fields by position,
    then what follows from the row alone, derived where it was validated (in the
    worker, for big files), so the importing process — the import's bottleneck — only
    resolves and writes.

    Rebuilding a ``CustomerIn`` per row cost the importing process ~6 %, hashing and
    encrypting ID numbers another ~5 %. Where the keys were not there yet (rows
    validated before the importer loaded them), ``keys`` and ``identities`` are None
    and the importer derives them with :func:`derived`, as the worker does.
    """

    name: str | None
    mobiles: list[str]
    id_card: str | None
    wechat_unionids: list[str]
    email: str | None
    gender: str | None
    birth_date: dt.date | None
    source: str | None
    project: str | None
    persona: str | None
    budget: int | None
    owner_staff: str | None
    external_id: str | None
    source_system: str | None
    #: the fields the row set, as a bit mask (:data:`_BITS`)
    fields_set: int
    #: its keys (``resolution.record_keys``, the ID number's as its keyed hash)
    keys: list[Key] | None
    #: the identities a customer it creates holds: (kind, value, display), the ID
    #: number's display encrypted (``idcards.encrypt``)
    identities: tuple[Identity, ...] | None
    #: the ``resolution.STATE_FIELDS`` of the customer it would create
    state: tuple[Any, ...]


#: an identity row's kind, value and display
Identity = tuple[str, str, str]


#: :class:`Record`'s fields, each a column of a batch's valid rows (:attr:`Batch.columns`)
Columns = tuple[Sequence[Any], ...]
#: a batch's rows once validated, as they cross the process boundary: the valid rows'
#: numbers, their records as :data:`Columns`, and the rows refused as (row, field,
#: reason). Pickling models costs several times more, and a frozenset per row made
#: unpickling 4x slower; a tuple per row and field, as a Record, cost the importing
#: process 2 of its ~13 objects a row to load and one more to build.
Checked = tuple[list[int], Columns, list[tuple[int, str, str]]]
#: the columns of a batch without valid rows
_NO_COLUMNS: Columns = ((),) * len(Record._fields)
#: where each field's column is in :data:`Columns`
AT = {name: i for i, name in enumerate(Record._fields)}


@dataclass
class Batch:
    """One transaction's worth of rows (``import_batch_size``), validated."""

    first_row: int = 0
    last_row: int = 0
    rows: int = 0
    #: the valid rows' numbers, in file order
    valid_rows: list[int] = field(default_factory=list)
    #: their records by field: ``columns[AT[name]][i]`` is field ``name`` of row
    #: ``valid_rows[i]``. The importer reads what most rows need from the columns and
    #: builds a row's :class:`Record` only where it resolves one (:meth:`record`).
    columns: Columns = _NO_COLUMNS
    rejected: list[RejectedRow] = field(default_factory=list)
    #: row -> its sheet row, when reading a workbook
    sheet_rows: dict[int, int | None] = field(default_factory=dict)
    #: the reader's rows_read and bytes_read once this batch was read (for progress)
    rows_read: int = 0
    bytes_read: int = 0
    #: the read error that ended the file after this batch's rows
    error: ImportReadError | None = None

    @property
    def valid(self) -> list[tuple[int, Record]]:
        """The valid rows with their records, in file order (built on each call)."""
        return list(zip(self.valid_rows, map(_record, zip(*self.columns, strict=True)),
                        strict=True))

    @property
    def records(self) -> list[tuple[int, CustomerIn]]:
        """The valid rows as the models their validation made (built on each call)."""
        return [(row, as_model(rec)) for row, rec in self.valid]

    def record(self, i: int) -> Record:
        """The record of ``valid_rows[i]``."""
        return _record([column[i] for column in self.columns])

    def take(self, checked: Checked) -> None:
        """Hold the rows ``checked`` (:func:`checked_rows`) validated."""
        self.valid_rows, self.columns, refused = checked
        self.rejected.extend(RejectedRow(row=row, field=name, reason=reason)
                             for row, name, reason in refused)


def _record(values: Iterable[Any]) -> Record:
    # tuple.__new__ rather than Record(*values): no Python-level __new__
    return _new_record(Record, values)


_new_record = cast("Callable[[type[Record], Iterable[Any]], Record]", tuple.__new__)


def as_model(record: Record) -> CustomerIn:
    """The ``CustomerIn`` a record was made from."""
    mask = record.fields_set
    return trusted(CustomerIn, dict(zip(_FIELDS, record, strict=False)),
                   {name for name, bit in _BITS.items() if mask & bit})


def validate_row(
    row: int, data: Mapping[str, Any], region: str = "CN"
) -> CustomerIn | RejectedRow:
    """A valid record, or the row's first failing field (in CustomerIn's field order).
    ``region`` is the default region for mobiles without a country prefix."""
    try:
        return _validator()(data, context={"region": region})
    except ValidationError as exc:
        field_name, reason = first_error(exc)
        return RejectedRow(row=row, field=field_name, reason=reason)


def _validator() -> Callable[..., CustomerIn]:
    """``CustomerIn.model_validate`` without its Python frame (``validate_python`` of
    the model's own validator, which that method calls with the same arguments): the
    frame and its keyword arguments cost ~0.5 us a row. The validator is built on
    first use (the models defer it)."""
    if not CustomerIn.__pydantic_complete__:
        CustomerIn.model_rebuild()
    return cast("Callable[..., CustomerIn]", CustomerIn.__pydantic_validator__.validate_python)


def checked_rows(
    todo: list[tuple[int, dict[str, Any]]], region: str, keys: Keys | None
) -> Checked:
    """Validate a batch's rows (``todo``, in file order), with the ID numbers' keys
    when ``keys`` are given (:func:`derived`)."""
    rows: list[int] = []
    values: list[tuple[Any, ...]] = []
    refused: list[tuple[int, str, str]] = []
    # A file's rows set the same fields, so the mask is computed again only when they
    # differ from the previous row's.
    names: set[str] = set()
    mask = 0
    # validate_row's steps, unrolled: a rejected row goes out as (row, field, reason)
    # without a RejectedRow made and read back
    validate, context = _validator(), {"region": region}
    # Validating leaves cycles (a rejected row's error and its traceback): the worker's
    # collector takes them once this batch is sent and dropped (_produce).
    with collector_paused():
        for row, data in todo:
            try:
                outcome = validate(data, context=context)
            except ValidationError as exc:
                refused.append((row, *first_error(exc)))
                continue
            if outcome.__pydantic_fields_set__ != names:  # model_fields_set, unwrapped
                names = outcome.__pydantic_fields_set__
                mask = sum(map(_BITS.__getitem__, names))
            rows.append(row)
            values.append((*outcome.__dict__.values(), mask, *derived(outcome, keys),
                           created_state(outcome)))
        # turned into columns here, where rows are validated (the worker, for big files)
        columns = tuple(zip(*values, strict=True)) if values else _NO_COLUMNS
    return rows, columns, refused


def derived(
    record: RecordFields, keys: Keys | None
) -> tuple[list[Key], tuple[Identity, ...]] | tuple[None, None]:
    """A record's keys and the identities a customer it creates holds, an ID number
    hashed and encrypted with ``keys`` (None and None for one without them). Where
    the rows are validated (:class:`Record`) and, for rows validated before the keys
    were loaded, in the importer: one way to hash and encrypt either way."""
    number = record.id_card
    if number is None:
        rec_keys = record_keys(record, _no_card)
        return rec_keys, tuple([(kind, value, value) for kind, value in rec_keys
                                if kind != EXTERNAL])
    if keys is None:
        return None, None
    rec_keys = record_keys(record, partial(match_value, keys))
    sealed = encrypt(keys, number)
    return rec_keys, tuple((kind, value, sealed if kind == ID_CARD else value)
                           for kind, value in rec_keys if kind != EXTERNAL)


def _no_card(number: str) -> str:
    raise AssertionError("a record without an ID number has no ID-card key")


def collector_paused() -> AbstractContextManager[None]:
    # A batch's rows are ~30,000 new tuples, dicts and models: enough allocations to
    # set off a dozen collections, each walking the importer's whole heap (measured:
    # 8 of the 9 us a row unpacking cost). They hold no reference cycles, so the
    # collector has nothing to find in them; it is paused while they are built.
    return paused()

