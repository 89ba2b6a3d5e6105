"""Text made safe for a terminal: what a value may hold that a terminal would act on.

Values come from CSV files, forms and other hands; whatever prints them (the CLI's
output helpers, the console message transport) shows such characters as visible
escapes instead of sending them to the terminal.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

# What a terminal would act on rather than show: C0 controls, DEL and C1 controls
# (ESC starts CSI/OSC sequences: clear screen, set title, hyperlinks; U+009B is a
# one-character CSI on some terminals), the bidirectional embeddings, overrides and
# isolates and the marks that steer them (text that displays in another order than
# it reads: with the ALM, LRM and RLM marks, Unicode's whole Bidi_Control set), and
# lone surrogates (undecodable bytes kept by the shell; they cannot even be encoded).
HOSTILE_RANGES = ((0x00, 0x1F), (0x7F, 0x9F), (0x202A, 0x202E), (0x2066, 0x2069),
                  (0xD800, 0xDFFF), (0x061C, 0x061C), (0x200E, 0x200F))
_LINE_FEED = 0x0A


def _char_class(ranges: Sequence[tuple[int, int]]) -> re.Pattern[str]:
    return re.compile("[" + "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges) + "]")


@functools.cache
def _hostile(lines: bool) -> re.Pattern[str]:
    """Compiled when first printed: ~1 ms each, which every command paid at start-up
    (the CLI imports this module) whether it printed a value or not."""
    if not lines:
        return _char_class(HOSTILE_RANGES)
    return _char_class([(0x00, _LINE_FEED - 1), (_LINE_FEED + 1, 0x1F), *HOSTILE_RANGES[1:]])


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, lines: bool = False) -> str:
    """``text`` with every control character shown as an escape (ESC as ``\\x1b``);
    ``lines`` keeps line feeds, for messages and cells laid out on several lines."""
    return _hostile(lines).sub(_escape_char, str(text))
