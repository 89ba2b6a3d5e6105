"""The CSV reader: a regular file decoded line by line, within bounded lines and quoted
fields, as a stream of ``(row, {field: text})``."""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections.abc import Iterator
from typing import IO, Any, Self

from ..models import RejectedRow
from ..regularfile import open_regular
from .encoding import _ESCAPED, SNIFF_BYTES, EncodingGuess, check_encoding, sniff_encoding
from .failures import ImportFileError, ImportReadError, UndecodableSample
from .header import Header, find_header
from .vocabulary import CUSTOMER_COLUMNS, Vocabulary

#: the longest line read; longer ones stop the import at their row
MAX_LINE_BYTES = 1024 * 1024
#: how far a quoted field may run over line breaks before it counts as never closed
MAX_QUOTED_LINES = 100
MAX_QUOTED_BYTES = 64 * 1024
#: the csv module's limit on a field's characters while a row is read: no field within
#: the limits above reaches it (its own default, 128K, would stop the import at a long
#: cell with no way to resume; the value rules reject its row instead)
FIELD_CHARS = MAX_LINE_BYTES + MAX_QUOTED_BYTES
#: the largest file with lines ended by CR alone that is read (in memory, see
#: CsvSource._lf_lines)
MAX_CR_FILE_BYTES = 64 * 1024 * 1024
#: the reason of a row rejected for invalid bytes in a mostly-UTF-8 file
INVALID_UTF8 = "not valid UTF-8"
#: the reason of a row holding a NUL byte, which no text of an ASCII-safe encoding
#: holds (UTF-16, whose characters do, is refused by sniff_encoding): a damaged file
NUL_BYTE = "holds a NUL byte (line {line} of the file), which no text has; remove it"


class _Unreadable(Exception):
    """Raised while reading lines; :meth:`CsvSource._records`, which knows the row,
    turns it into ImportReadError. ``reason`` reads after "row N: "."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class FileSource:
    """What the CSV and the workbook readers share: the regular file they hold open
    (``file``, when already opened by :func:`open_regular_file`; ``with`` closes it)
    and the vocabulary naming the columns."""

    def __init__(
        self, path: str | os.PathLike[str], vocabulary: Vocabulary, file: IO[bytes] | None
    ) -> None:
        self.path = os.fspath(path)
        self.vocabulary = vocabulary
        self._fh = open_regular_file(self.path) if file is None else file

    def close(self) -> None:
        self._fh.close()

    def file_stat(self) -> os.stat_result:
        """The open file's status (which file it is, its size and modification time)."""
        return os.fstat(self._fh.fileno())

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CsvSource(FileSource):
    """A CSV file, read as a stream of ``(row, {field: text})``.

    Opening refuses anything but a regular file, reads and maps the header (raising
    the exit-2 errors before anything is written); iterating decodes line by line and
    raises :class:`ImportReadError` at the first row that cannot be read. A row
    holding invalid bytes in a mostly-UTF-8 file comes as ``(row, RejectedRow)``.
    ``vocabulary`` names the columns (the customer import's by default); ``file`` is
    the path already opened by :func:`open_regular_file`, which the source then owns.
    """

    kind = "csv"
    #: a CSV file has no sheet; see :class:`recrm_core.xlsxsource.XlsxSource`
    sheet: str | None = None
    sheet_row: int | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        encoding: str | None = None,
        *,
        vocabulary: Vocabulary = CUSTOMER_COLUMNS,
        file: IO[bytes] | None = None,
    ) -> None:
        super().__init__(path, vocabulary, file)
        try:
            try:
                self.total_bytes = os.fstat(self._fh.fileno()).st_size
                head = self._fh.read(SNIFF_BYTES)
            except OSError as exc:
                raise ImportFileError(f"cannot read {self.path!r}: {exc.strerror}") from None
            if encoding is not None:
                guess = EncodingGuess(check_encoding(encoding))
            else:
                guess = sniff_encoding(head, complete=len(head) < SNIFF_BYTES)
            #: what lines are read from: the file, or its lines ended with LF
            self._lines: IO[bytes] = self._fh
            if b"\r" in head and b"\n" not in head:
                self._lines = self._lf_lines()
            self.bytes_read = 0
            self.rows_read = 0
            #: the file's encoding; None while every line so far was plain ASCII
            self.encoding: str | None = None
            self._codec = "ascii"
            self._rejects_invalid = False
            #: the row from which rows are held back: an undecodable sample starts there
            self._undecided_row: int | None = None
            #: set while reading a row with invalid bytes (or held back): not yielded
            self._hold = False
            #: the file's line holding a NUL byte within the row held for it
            self._nul_line: int | None = None
            self._header_done = False
            #: lines the reader had taken when it finished the last record
            self._record_end = 0
            bom = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
            if guess.encoding != "utf-8-sig":
                bom = 0  # an explicit --encoding utf-8 keeps it: the header drops it
            self._lines.seek(bom)
            self.bytes_read = bom
            self._decided(guess)
            self._reader = csv.reader(self._decoded_lines(), delimiter=_delimiter(head))
            self.header = self._read_header()
        except BaseException:
            self._fh.close()
            raise

    def _lf_lines(self) -> IO[bytes]:
        """The file's bytes with each CR read as LF, in memory: lines are split at LF,
        and Excel for Mac's "CSV (Macintosh)" ends them with CR alone. CR is one byte
        that no character of an ASCII-safe encoding holds (see check_encoding), so the
        sizes and offsets stay the file's. Such files are sheets typed on a Mac: one
        larger than MAX_CR_FILE_BYTES is refused rather than held in memory."""
        if self.total_bytes > MAX_CR_FILE_BYTES:
            raise ImportFileError(
                f"{self.path!r} ends its lines with a carriage return alone (Excel for"
                f" Mac's 'CSV (Macintosh)') and is larger than"
                f" {MAX_CR_FILE_BYTES // (1024 * 1024)} MB; save it as 'CSV UTF-8' and"
                " import that")
        self._fh.seek(0)
        try:
            data = self._fh.read()
        except OSError as exc:
            raise ImportFileError(f"cannot read {self.path!r}: {exc.strerror}") from None
        return io.BytesIO(data.replace(b"\r", b"\n"))

    # -- decoding ---------------------------------------------------------------------
    def _decided(self, guess: EncodingGuess) -> None:
        if guess.encoding is None:
            return
        self.encoding = guess.encoding
        # The BOM was skipped: decoding each line as utf-8-sig would drop a U+FEFF
        # at the start of any line.
        self._codec = "utf-8" if guess.encoding == "utf-8-sig" else guess.encoding
        self._rejects_invalid = guess.rejects_invalid
        if guess.undecodable:
            self._undecided_row = self.rows_read + 1
            self._hold = True

    def _decoded_lines(self) -> Iterator[str]:
        # b"\n" never occurs inside a character of an ASCII-safe encoding (see
        # check_encoding), so the file is split into lines first and each line decoded
        # on its own; a character cut at the end of the file fails its own line.
        readline = self._lines.readline
        limit = MAX_LINE_BYTES + 1
        codec = self._codec
        taken = 0  # lines given to the reader
        record_bytes = 0  # bytes of the record being read, once it runs over lines
        while raw := readline(limit):
            size = len(raw)
            if size > MAX_LINE_BYTES:
                raise _Unreadable(f"has a line longer than {MAX_LINE_BYTES // 1024} KB")
            self.bytes_read += size
            if b"\0" in raw and self._nul_line is None:
                self._nul_line = taken + 1
                self._hold = True
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError as exc:
                text = self._undecodable_line(raw, exc)
                codec = self._codec
            if taken > self._record_end:
                # The reader asks for another line before finishing its record: only an
                # open quoted field does that.
                record_bytes += size
                if taken - self._record_end >= MAX_QUOTED_LINES:
                    raise _Unreadable(
                        f"opens a quoted field that runs over more than {MAX_QUOTED_LINES}"
                        " lines; close the quote"
                    )
                if record_bytes > MAX_QUOTED_BYTES:
                    raise _Unreadable(
                        f"opens a quoted field longer than {MAX_QUOTED_BYTES // 1024} KB"
                        " over several lines; close the quote"
                    )
            else:
                record_bytes = size
            taken += 1
            yield text
        if taken > self._record_end:
            raise _Unreadable("opens a quoted field that is never closed; close the quote")

    def _undecodable_line(self, raw: bytes, exc: UnicodeDecodeError) -> str:
        """The text of a line its codec refused, or _Unreadable."""
        if self.encoding is None:
            # The first line that is not plain ASCII: it and the bytes after it are
            # the sample. They are peeked, then read as lines: no row is read twice.
            back = self._lines.tell()
            wanted = max(SNIFF_BYTES - len(raw), 0)
            more = self._lines.read(wanted)
            self._lines.seek(back)
            try:
                guess = sniff_encoding(raw + more, complete=len(more) < wanted, start=False)
            except ImportFileError as refused:
                # The rows before were plain ASCII, and may have been imported: the
                # stop names this row, as an undecodable one's does.
                raise _Unreadable(str(refused)) from None
            self._decided(guess)
            try:
                return raw.decode(self._codec)
            except UnicodeDecodeError as again:
                exc = again
        if self._rejects_invalid:
            self._hold = True
            return raw.decode(self._codec, "surrogateescape")
        codec = self.encoding if self._undecided_row is None else "UTF-8 or GB18030"
        raise _Unreadable(
            f"cannot be decoded as {codec} (byte 0x{raw[exc.start]:02x});"
            " fix the file or pass --encoding"
        )

    def _records(self) -> Iterator[list[str]]:
        """Non-blank CSV records; ImportReadError numbered like data rows."""
        reader = self._reader
        field_size_limit = csv.field_size_limit
        while True:
            try:
                # The limit is the process's: raised only while this reader reads.
                limit = field_size_limit(FIELD_CHARS)
                try:
                    cells = next(reader)
                finally:
                    field_size_limit(limit)
            except StopIteration:
                return
            except _Unreadable as exc:
                raise self._read_error(exc.reason) from None
            except csv.Error as exc:
                raise self._read_error(f"is not valid CSV ({exc})") from None
            self._record_end = reader.line_num
            # Excel writes ",,,," for rows it considers used; such rows are blank too.
            # (A first cell holding more than spaces settles it without the join.)
            if not cells or not (cells[0].strip() or "".join(cells).strip()):
                continue
            yield cells

    def _read_error(self, reason: str) -> ImportReadError:
        if not self._header_done:
            return ImportReadError(0, reason)
        row = self.rows_read + 1
        if self._undecided_row is not None:
            return UndecodableSample(row, reason, stopped_at=self._undecided_row)
        return ImportReadError(row, reason)

    def _read_header(self) -> Header:
        def readable() -> Iterator[list[str]]:
            for cells in self._records():
                if self._hold and self._undecided_row is None:
                    if self._nul_line is not None:
                        raise ImportReadError(0, NUL_BYTE.format(line=self._nul_line))
                    raise ImportReadError(0, f"is {INVALID_UTF8}")
                yield cells

        try:
            header = find_header(readable(), self.vocabulary)
        except ImportReadError as exc:
            # Nothing was imported and nothing could be: the file is unusable (exit 2).
            raise ImportFileError(f"{self.path!r}: the header {exc.reason}") from None
        self._header_done = True
        return header

    # -- rows -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[tuple[int, dict[str, Any] | RejectedRow]]:
        values, beyond, width = self.header.values, self.header.beyond, self.header.width
        for cells in self._records():
            self.rows_read += 1
            if self._hold:
                if self._undecided_row is not None:
                    # The sample cannot be decoded: read on to the row that fails.
                    continue
                self._hold = False
                yield self.rows_read, self._invalid_row(cells)
                self._nul_line = None
                continue
            yield self.rows_read, (beyond(self.rows_read, cells) if len(cells) > width
                                   else None) or values(cells)

    def _invalid_row(self, cells: list[str]) -> RejectedRow:
        """A row holding a NUL byte or invalid bytes, rejected under the field of the
        first such cell."""
        if self._nul_line is not None:
            damaged, reason = "\0", NUL_BYTE.format(line=self._nul_line)
        else:
            damaged, reason = "", INVALID_UTF8
        field = next(
            (self.header.field_at(i) for i, cell in enumerate(cells)
             if (damaged in cell if damaged else _ESCAPED.search(cell))),
            "",
        )
        return RejectedRow(row=self.rows_read, field=field, reason=reason)


def _delimiter(head: bytes) -> str:
    """``,`` unless the first line holding a delimiter (a title row may hold none) has
    no comma but a tab or a semicolon."""
    # splitlines: at CR alone too (Excel for Mac's "CSV (Macintosh)")
    first = next((line for line in head.splitlines() if any(d in line for d in b",\t;")),
                 b"")
    if b"," not in first:
        for candidate in ("\t", ";"):
            if candidate.encode() in first:
                return candidate
    return ","


def open_regular_file(path: str) -> IO[bytes]:
    """Open ``path`` for reading, or ImportFileError (exit 2) unless it is (or links to)
    a regular file."""
    return open_regular(path, ImportFileError)
