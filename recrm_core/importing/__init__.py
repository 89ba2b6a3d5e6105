"""Customer import: streamed in batches, resolved set-based, one transaction per batch.

Each batch (``import_batch_size`` rows, default 2000) is validated row by row with
:class:`~recrm_core.models.CustomerIn`, then resolved with the same rules as
``crm.customers.add`` (:mod:`recrm_core.resolution`) but set-based: the owners of
every key of the batch are fetched with a few indexed queries, the rows are applied
strictly in file order in memory (a row sees what earlier rows created or filled,
in this batch or an earlier one), and the result is written with bulk inserts and
updates (on PostgreSQL the lookups and inserts go through :mod:`recrm_core.bulkcopy`:
index probes bound to one array parameter, and COPY). ``recrm_customers_imported``
fires once per batch inside its transaction; the per-row created/updated hooks do not
fire during an import.

Re-running an import is idempotent: every row of a committed batch now matches the
customer it created or filled, so nothing is created twice.

One module per job: :mod:`.service` (the public API and the batch loop),
:mod:`.batch` (resolving and writing one batch), :mod:`.reads` and :mod:`.writes`
(its batched reads and bulk writes), :mod:`.progress` (what a run holds and reports),
:mod:`.pauses` (Ctrl-C and the collector between batches), :mod:`.hookrecords`
(the hook's lazily built records). Every name other modules import from
``recrm_core.importing`` is re-exported here.
"""

from __future__ import annotations

from ..csvsource import ImportFileError as ImportFileError
from ..csvsource import ImportReadError as ImportReadError
from ..csvsource import UnknownColumns as UnknownColumns
from ..importrows import validate_row as validate_row
from ..resolution import CONFLICT_FIELD as CONFLICT_FIELD
from .hookrecords import _LazyRecords as _LazyRecords
from .progress import ImportInterrupted as ImportInterrupted
from .progress import ImportProgress as ImportProgress
from .progress import ImportStopped as ImportStopped
from .progress import ProgressCallback as ProgressCallback
from .progress import RejectSink as RejectSink
from .service import ImportService as ImportService

__all__ = [
    "CONFLICT_FIELD",
    "ImportFileError",
    "ImportInterrupted",
    "ImportProgress",
    "ImportReadError",
    "ImportService",
    "ImportStopped",
    "UnknownColumns",
    "validate_row",
]
