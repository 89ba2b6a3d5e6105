"""Output for the CLI: one-line errors, compact JSON, rich tables on stdout."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import click
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table


def echo_error(message: str) -> None:
    line = " ".join(str(message).split())  # one line, always
    click.echo(f"error: {line}", err=True)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def emit_json(value: Any) -> None:
    """Exactly one compact JSON document on one line of stdout."""
    text = json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"), default=str)
    click.echo(text)


#: columns for tables when stdout is not a terminal
PIPE_WIDTH = 160


def console() -> Console:
    # Piped or captured output has no terminal width; rich would assume 80 columns
    # and cut wide tables with ellipses, so give it room instead.
    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return Console(file=sys.stdout, soft_wrap=True, width=width)


def local_time(value: dt.datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title)
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    console().print(t)


def info(message: str) -> None:
    """A human message: stderr, so --json stdout stays clean."""
    click.echo(message, err=True)
