"""``recrm customers import FILE [--sheet NAME] [--errors OUT] [--encoding E] [--json]``"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ..errors import RecrmError
from . import CliContext, get_crm
from .customers import actor_of, customers, json_option
from .output import SHOWN_REJECTIONS, emit_json, info, show_rejections, table

if TYPE_CHECKING:  # the importer is loaded when an import runs, not for every command
    from ..importing import ImportProgress, ProgressCallback
    from ..models import RejectedRow


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar on stderr, advancing by bytes read; nothing when off."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("importing"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        MofNCompleteColumn(),
        TextColumn("bytes"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task("import", total=None)

        def update(p: ImportProgress) -> None:
            bar.update(task, completed=p.bytes_read, total=p.total_bytes)

        yield update


@contextmanager
def _validating_early(ctx: click.Context, file: str, sheet: str | None,
                      encoding: str | None) -> Iterator[None]:
    """The import's validation worker forked before the CRM is built, with the batch
    size and region of the settings the CRM is then built with (the command's, read
    once: ``CliContext.settings``; ``importrows.validating_early``, the import checks
    them against its own before using it). Not for a test's CRM (``crm_factory``),
    whose settings are its own, nor for a workbook."""
    obj = ctx.find_object(CliContext)
    if sheet is not None or obj is None or obj.crm_factory is not None:
        yield
        return
    from ..importrows import validating_early

    try:
        settings = obj.settings()
    except (RecrmError, OSError):  # building the CRM reports it
        yield
        return
    with validating_early(file, encoding, settings.import_batch_size,
                          settings.default_region):
        yield


@customers.command("import")
# No click checks on FILE: the import refuses what is not a regular file, in one line.
@click.argument("file", type=click.Path())
@click.option("--sheet", metavar="NAME",
              help="The workbook's sheet to read (default: the first visible one).")
@click.option("--errors", "errors_path", metavar="OUT", type=click.Path(dir_okay=False),
              help="Write rejected rows (row,field,reason[,sheet_row]; UTF-8 with BOM) to OUT.")
@click.option("--encoding", metavar="E",
              help="CSV encoding (default: BOM => UTF-8, else UTF-8 or GB18030 by content).")
@click.option("--actor", metavar="STAFF", help="Staff id performing the import.")
@json_option
@click.pass_context
def import_cmd(ctx: click.Context, file: str, sheet: str | None, errors_path: str | None,
               encoding: str | None, actor: str | None, as_json: bool) -> None:
    """Import customers from a CSV file or an Excel .xlsx workbook (English or
    Chinese headers; which it is, is read from the file, not its name).

    Rows are applied in file order, one transaction per batch; invalid rows are
    rejected whole and reported (--errors), the others are imported. Exit 0 when the
    import ran to the end, whatever it rejected.
    """
    # The lowest-numbered few only (a file may reject a million); a batch reports a
    # row refused on writing after the rows refused on reading, so not the first few.
    shown: list[RejectedRow] = []

    def keep(rejected: RejectedRow) -> None:
        shown.append(rejected)
        if len(shown) > 2 * SHOWN_REJECTIONS:
            shown.sort(key=lambda r: r.row)
            del shown[SHOWN_REJECTIONS:]

    with _validating_early(ctx, file, sheet, encoding):
        crm = get_crm(ctx)
        with _progress_bar(sys.stderr.isatty()) as progress:
            result = crm.importer.import_file(
                file,
                encoding=encoding,
                sheet=sheet,
                errors_path=errors_path,
                on_reject=None if as_json else keep,
                progress=progress,
                actor=actor_of(actor),
            )
    if as_json:
        emit_json(result)
        return
    table(
        None,
        ["rows", "created", "merged", "rejected", "suspected duplicates"],
        [(result.rows, result.created, result.merged, result.rejected,
          result.suspected_duplicates)],
    )
    # as the plugins' imports list theirs (in file order: batches commit in order)
    show_rejections(sorted(shown, key=lambda r: r.row), result.rejected, errors_path)
    if result.rejected and errors_path:
        info(f"rejected rows written to {errors_path}")
    elif 0 < result.rejected <= SHOWN_REJECTIONS:  # more: show_rejections said so
        info("use --errors FILE to write them to a file to fix and import again")
