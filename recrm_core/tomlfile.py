"""Reading a TOML file a person named: the configuration, channel rules, a payment
plan, a survey definition.

One rule for all of them: only a regular file (a FIFO would block, /dev/zero never
ends), at most :data:`MAX_TOML_BYTES`, UTF-8 (a BOM allowed), and every way it can
fail is one line naming the file. ``tomllib`` recurses once per level of nesting, so
``a = [[[[…]]]]`` a few thousand deep is a RecursionError, not a TOMLDecodeError.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .regularfile import open_regular

#: a TOML file a person wrote is a few KB; beyond this it is not one
MAX_TOML_BYTES = 1024 * 1024


def read_toml(path: str | Path, refuse: Callable[[str], Exception]) -> dict[str, Any]:
    """The table of the TOML file at ``path``, or ``refuse(message)`` raised; the
    message reads ``cannot read 'PATH': why`` as :func:`open_regular`'s do."""
    name = str(path)
    with open_regular(name, refuse) as fh:
        raw = fh.read(MAX_TOML_BYTES + 1)
    if len(raw) > MAX_TOML_BYTES:
        raise refuse(f"cannot read {name!r}: longer than {MAX_TOML_BYTES // 1024} KB, not a "
                     "TOML file a person wrote")
    try:
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise refuse(f"cannot read {name!r}: not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise refuse(f"cannot read {name!r}: not valid TOML: {exc}") from None
    except RecursionError:
        raise refuse(f"cannot read {name!r}: not valid TOML: nested too deeply") from None
