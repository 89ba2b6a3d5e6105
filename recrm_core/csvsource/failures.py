"""What stops a table's import: the whole file refused (exit 2), or a row that cannot be
read (exit 1), numbered like rejected rows."""

from __future__ import annotations

from ..errors import RecrmError


class ImportFileError(RecrmError):
    """The file cannot be imported at all (unreadable, no header, bad encoding name,
    a column given twice): a usage error, nothing was written."""

    exit_code = 2


class UnknownColumns(ImportFileError):
    """The header names columns the import does not know; nothing was written."""

    #: how many unknown names the message lists, and how much of each
    SHOWN = 10
    NAME_LIMIT = 40

    def __init__(self, unknown: list[str], known: list[str]) -> None:
        # A header of 100,000 columns must not become a message of 100,000 names.
        shown = ", ".join(
            name if len(name) <= self.NAME_LIMIT else name[: self.NAME_LIMIT - 1] + "…"
            for name in unknown[: self.SHOWN]
        )
        more = len(unknown) - self.SHOWN
        if more > 0:
            shown += f" and {more} more ({len(unknown)} in all)"
        super().__init__(f"unknown column(s): {shown}; known columns: {', '.join(known)}")
        self.unknown = unknown
        self.known = known


class ImportReadError(RecrmError):
    """A data row cannot be read (undecodable bytes, malformed CSV); the import stops
    there (exit 1). ``row`` is the data row, numbered like rejected rows; the rows
    before ``stopped_at`` (``row`` unless said otherwise) can be imported."""

    def __init__(self, row: int, reason: str, stopped_at: int | None = None) -> None:
        where = "the header" if row == 0 else f"row {row}"
        super().__init__(f"{where}: {reason}")
        self.row = row
        self.reason = reason
        self.stopped_at = row if stopped_at is None else stopped_at


class UndecodableSample(ImportReadError):
    """Neither UTF-8 nor GB18030 reads the sample that decides the encoding. The rows
    from ``stopped_at`` (the sample's first row) on may be mis-read, so none of them
    is imported; when that is the first batch, nothing is (exit 2)."""
