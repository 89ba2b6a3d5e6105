"""Reading customer CSV files: encoding detection, streaming decoding, header mapping.

What Excel writes depends on the machine: UTF-8 with a BOM ("CSV UTF-8"), or
GB18030/GBK on Chinese Windows. The reader decides from the BOM or a sample (see
:func:`sniff_encoding`), then decodes line by line, so an undecodable line further
down stops the import at that row instead of at start-up or, worse, being silently
replaced. While the file is plain ASCII the choice does not matter (ASCII reads the
same in both), so a file whose first 64 KB are ASCII is decided at its first row
holding other bytes, without reading any row twice.

Whatever the file holds, memory stays bounded: only regular files are read, a line is
cut off at :data:`MAX_LINE_BYTES` while it is read, and a quoted field may run over
several lines (a multi-line address) only up to :data:`MAX_QUOTED_LINES` lines and
:data:`MAX_QUOTED_BYTES`, so that one unbalanced quote cannot swallow the file.

Row numbers are 1-based data rows: the header is not counted and neither are blank
lines (lines whose cells are all empty, such as ``,,,`` from Excel) nor the title rows
before the header (see :func:`find_header`). Rejected-row numbers, the summary's
``rows`` and decoding errors all use this numbering.

Which columns a table may have is a :class:`Vocabulary`; :data:`CUSTOMER_COLUMNS` is
the customer import's, and a plugin reading its own lists passes its own. Workbooks
are read by :mod:`recrm_core.xlsxsource` under the same header and row rules;
:func:`recrm_core.tabular.open_table` picks the reader from the file's bytes.

The package is split by concept: :mod:`.encoding` decides the encoding,
:mod:`.vocabulary` says which columns a table may have and how a header cell is read,
:mod:`.header` finds the header under its title rows and maps it, :mod:`.reader` reads
the rows, and :mod:`.failures` holds what stops an import. Every name is re-exported
here, so ``from recrm_core.csvsource import ...`` is unchanged.
"""

from __future__ import annotations

from .encoding import (
    SNIFF_BYTES,
    UTF8_VALID_SHARE,
    UTF16_NUL_SHARE,
    UTF16_SNIFF_BYTES,
    EncodingGuess,
    check_encoding,
    sniff_encoding,
)
from .failures import (
    ImportFileError,
    ImportReadError,
    UndecodableSample,
    UnknownColumns,
)
from .header import (
    MAX_TITLE_ROWS,
    Header,
    find_header,
    map_header,
)
from .reader import (
    FIELD_CHARS,
    INVALID_UTF8,
    MAX_LINE_BYTES,
    MAX_QUOTED_BYTES,
    MAX_QUOTED_LINES,
    CsvSource,
    FileSource,
    open_regular_file,
)
from .vocabulary import (
    CUSTOMER_COLUMNS,
    HEADER_ALIASES,
    KNOWN_HEADERS,
    SCALED_UNITS,
    UNIT_SPELLINGS,
    Vocabulary,
    normalise_header,
)

__all__ = [
    "CUSTOMER_COLUMNS",
    "FIELD_CHARS",
    "HEADER_ALIASES",
    "INVALID_UTF8",
    "KNOWN_HEADERS",
    "MAX_LINE_BYTES",
    "MAX_QUOTED_BYTES",
    "MAX_QUOTED_LINES",
    "MAX_TITLE_ROWS",
    "SCALED_UNITS",
    "SNIFF_BYTES",
    "UNIT_SPELLINGS",
    "UTF8_VALID_SHARE",
    "UTF16_NUL_SHARE",
    "UTF16_SNIFF_BYTES",
    "CsvSource",
    "EncodingGuess",
    "FileSource",
    "Header",
    "ImportFileError",
    "ImportReadError",
    "UndecodableSample",
    "UnknownColumns",
    "Vocabulary",
    "check_encoding",
    "find_header",
    "map_header",
    "normalise_header",
    "open_regular_file",
    "sniff_encoding",
]
