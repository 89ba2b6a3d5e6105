"""Output for the CLI: one-line errors, compact JSON, rich tables on stdout.

Every value printed may come from a CSV file or another hand: it reaches the terminal
only through these helpers, which show control characters as visible escapes
(:func:`printable`) and never let rich read markup in a value (:func:`cell`).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click
from pydantic import BaseModel

from ..terminal import HOSTILE_RANGES, printable

if TYPE_CHECKING:  # rich is imported by the commands that print tables, not at start-up
    from rich.console import Console
    from rich.text import Text

    from ..models import RejectedRow

#: the longest error line printed; longer messages keep their head and tail
ERROR_LINE_LIMIT = 500
#: rejected rows an import lists on stderr; the errors file holds them all
SHOWN_REJECTIONS = 20
_ERROR_TAIL = 150


def cell(value: object) -> Text:
    """A value for a rich table or panel: printable, and never read as markup (a name
    ``[/bold]`` would make rich fail, ``[link=...]`` would become a live link)."""
    from rich.text import Text

    return Text("" if value is None else printable(value, lines=True))


def one_line(message: object, limit: int = ERROR_LINE_LIMIT) -> str:
    """``message`` printable on one line of at most ``limit`` characters; a longer one
    keeps its head and its tail (where messages say what to do next)."""
    line = printable(" ".join(str(message).split()))
    if len(line) <= limit:
        return line
    marker = " … [{} characters left out] … "
    head = limit - _ERROR_TAIL - len(marker.format(len(line)))
    return line[:head] + marker.format(len(line) - head - _ERROR_TAIL) + line[-_ERROR_TAIL:]


def echo_error(message: str) -> None:
    """The one line an error prints on stderr: capped, and safe for a terminal."""
    click.echo(f"error: {one_line(message)}", err=True)


_shown_warnings: set[str] = set()
_python_showwarning = warnings.showwarning


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
    """``warnings.showwarning`` for the console script: a plugin's warning is one line
    ``warning: ...`` on stderr, like the errors, and once per command although its
    plugins are loaded twice (for their commands, then for the CRM); other warnings
    are Python's, for developers."""
    from ..plugins import PluginWarning

    if not issubclass(category, PluginWarning):
        _python_showwarning(message, category, filename, lineno, file, line)
        return
    text = one_line(message)
    if text not in _shown_warnings:
        _shown_warnings.add(text)
        click.echo(f"warning: {text}", err=True)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def _utf16_units(code: int) -> tuple[int, ...]:
    """``code`` as JSON's ``\\u`` escapes count it: beyond U+FFFF a surrogate pair."""
    if code <= 0xFFFF:
        return (code,)
    code -= 0x10000
    return (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))


#: JSON escapes for what json.dumps(ensure_ascii=False) leaves raw but a terminal would
#: act on (C0 controls it escapes itself); outside strings JSON holds only ASCII, so
#: the document stays exact JSON with the same values.
_JSON_ESCAPES = {
    code: "".join(f"\\u{unit:04x}" for unit in _utf16_units(code))
    for first, last in HOSTILE_RANGES for code in range(first, last + 1)
}


def emit_json(value: Any) -> None:
    """Exactly one compact JSON document on one line of stdout."""
    text = json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"), default=str)
    click.echo(text.translate(_JSON_ESCAPES))


#: columns for tables when stdout is not a terminal
PIPE_WIDTH = 160


def console() -> Console:
    # Piped or captured output has no terminal width; rich would assume 80 columns
    # and cut wide tables with ellipses, so give it room instead.
    from rich.console import Console

    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(file=sys.stdout, soft_wrap=True, width=width)


def local_time(value: dt.datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A rich table on stdout; title, headers and values are shown as written."""
    from rich.table import Table

    t = Table(title=None if title is None else cell(title))
    for col in columns:
        t.add_column(cell(col))
    for row in rows:
        t.add_row(*(cell(v) for v in row))
    console().print(t)


def info(message: str) -> None:
    """A human message: stderr, so --json stdout stays clean."""
    click.echo(printable(message, lines=True), err=True)


def show_rejections(rejections: Sequence[RejectedRow], rejected: int,
                    errors_path: str | None) -> None:
    """An import's rejected rows on stderr, ``row N: field: reason``: the first
    :data:`SHOWN_REJECTIONS`, then how many more and where to find them. Rejections
    never change the exit code: an import that ran to the end succeeded."""
    for bad in rejections[:SHOWN_REJECTIONS]:
        info(f"row {bad.row}: {bad.field or '-'}: {bad.reason}")
    if rejected > SHOWN_REJECTIONS:
        info(f"… and {rejected - SHOWN_REJECTIONS} more" + (
            f" (all in {errors_path})" if errors_path else " (use --errors FILE)"))


def on_terminal() -> bool:
    """Whether a person can answer a question on stdin (not a pipe, cron or a test)."""
    return sys.stdin is not None and sys.stdin.isatty()


def confirm_or_refuse(what: str, *, yes: bool) -> None:
    """Go on with a change that cannot be undone only when ``--yes`` was given or a
    person on the terminal says yes; ``what`` says what it does. Without a terminal
    (a script, cron) and without ``--yes`` nothing is done: refused, asking for it."""
    from ..errors import Refused

    if yes:
        return
    if not on_terminal():
        raise Refused(f"{what}: nothing was changed; no terminal to confirm on, give --yes")
    info(what)
    if not click.confirm("go on?", default=False, err=True):
        raise Refused("declined: nothing was changed")


def echo(message: str) -> None:
    """A line of text on stdout (what ``click.echo`` would print, made printable)."""
    click.echo(printable(message, lines=True))
