"""How a batch crosses from the import's reading worker (:mod:`recrm_core.importrows`)
to the importing process: pickled in a form cheap to send and to load back."""

from __future__ import annotations

import datetime as dt
import io
import pickle
from collections.abc import Callable
from typing import Any, cast

from .csvsource import ImportReadError
from .errors import RecrmError
from .importrecords import Batch, Checked, collector_paused
from .models import RejectedRow

#: a batch as the reading worker sends it: its counters (first_row, last_row, rows,
#: rows_read, bytes_read), the rows the reader rejected as (row, field, reason), the
#: read error that ended it as (class, row, reason, stopped_at), its rows validated
Sent = tuple[tuple[int, int, int, int, int], list[tuple[int, str, str]],
             tuple[type[ImportReadError], int, str, int] | None, Checked]


#: how a batch's pickler reduces a date: by its own C method, as ``pickle.dumps``
#: does after looking it up through ``__reduce_ex__`` (the same bytes): that look-up
#: was ~40 % of pickling a row, whose birth date is in it twice
_REDUCERS: dict[type, Callable[[Any], Any]] = {dt.date: dt.date.__reduce__}


def pickled(obj: object) -> bytes:
    """``pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)``, the same bytes, sooner."""
    return Packer()(obj)


class Packer:
    """:func:`pickled` for one batch after another, by one pickler: its memo (an
    entry for each of a batch's ~30,000 objects) keeps the size it grew to, where a
    new pickler's grew by doubling, cleared at each step, and was freed again (~1.5 %
    of the worker's instructions). Cleared after each batch: it holds no batch alive."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._pickler = pickle.Pickler(self._buffer, pickle.HIGHEST_PROTOCOL)
        self._pickler.dispatch_table = _REDUCERS

    def __call__(self, obj: object) -> bytes:
        try:
            self._pickler.dump(obj)
            return self._buffer.getvalue()
        finally:
            self._pickler.clear_memo()
            self._buffer.seek(0)
            self._buffer.truncate()


def pickled_error(exc: Exception) -> bytes:
    """``exc`` pickled to be raised by :func:`received`, or a RecrmError naming it
    where it would not load back."""
    try:
        blob = pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
        pickle.loads(blob)  # an exception whose __init__ differs may not load back
        return blob
    except Exception:  # one that does not cross: its message
        return pickle.dumps(RecrmError(f"reading the file failed: {exc!r}"))


def received(blob: bytes) -> Batch:
    """The batch a reading worker sent (:data:`Sent`); raises the error it sent
    instead of one."""
    with collector_paused():
        sent = pickle.loads(blob)
        if isinstance(sent, BaseException):  # reading failed otherwise: raised as here
            raise sent
        (first_row, last_row, count, rows_read, bytes_read), rejected, error, checked = \
            cast(Sent, sent)
        batch = Batch(first_row, last_row, count, rows_read=rows_read, bytes_read=bytes_read)
        batch.rejected = [RejectedRow(row=row, field=name, reason=reason)
                          for row, name, reason in rejected]
        if error is not None:
            kind, row, reason, stopped_at = error
            batch.error = kind(row, reason, stopped_at=stopped_at)
        batch.take(checked)
    return batch


def unpack(batch: Batch, blob: bytes) -> None:
    """Give ``batch`` the rows a fork server's worker validated (:data:`Checked`)."""
    with collector_paused():
        batch.take(pickle.loads(blob))


