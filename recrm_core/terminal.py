"""Text made safe for a terminal: what a value may hold that a terminal would act on.

Values come from CSV files, forms and other hands; whatever prints them (the CLI's
output helpers, the console message transport) shows such characters as visible
escapes instead of sending them to the terminal.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

# Characters a terminal shows as nothing, so that two values that differ look the same
# ("王\u200b小明" and "王小明", a mobile with a word joiner): the zero-width space,
# joiners and non-joiner, the word joiner and invisible operators, the byte-order
# mark, the soft hyphen, the fillers and separators that draw no ink, the deprecated
# format controls, the interlinear annotation marks, and the tag characters; and the
# line and paragraph separators, which rich breaks a table's line at. Variation
# selectors stay: they choose the glyph of the visible character before them (an
# emoji's colour form, a Mongolian or a CJK variant of a name's character).
INVISIBLE_RANGES = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5),
                    (0x180E, 0x180E), (0x200B, 0x200D), (0x2028, 0x2029), (0x2060, 0x2064),
                    (0x206A, 0x206F), (0x3164, 0x3164), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0),
                    (0xFFF9, 0xFFFB), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
                    (0xE0000, 0xE007F))
# What a terminal would act on rather than show: C0 controls, DEL and C1 controls
# (ESC starts CSI/OSC sequences: clear screen, set title, hyperlinks; U+009B is a
# one-character CSI on some terminals), the bidirectional embeddings, overrides and
# isolates and the marks that steer them (text that displays in another order than
# it reads: with the ALM, LRM and RLM marks, Unicode's whole Bidi_Control set), and
# lone surrogates (undecodable bytes kept by the shell; they cannot even be encoded);
# and what shows as nothing (:data:`INVISIBLE_RANGES`).
HOSTILE_RANGES = ((0x00, 0x1F), (0x7F, 0x9F), (0x202A, 0x202E), (0x2066, 0x2069),
                  (0xD800, 0xDFFF), (0x061C, 0x061C), (0x200E, 0x200F), *INVISIBLE_RANGES)
_LINE_FEED = 0x0A


def _char_class(ranges: Sequence[tuple[int, int]]) -> re.Pattern[str]:
    return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]")


@functools.cache
def _hostile(lines: bool) -> re.Pattern[str]:
    """Compiled when first printed: ~1 ms each, which every command paid at start-up
    (the CLI imports this module) whether it printed a value or not."""
    if not lines:
        return _char_class(HOSTILE_RANGES)
    return _char_class([(0x00, _LINE_FEED - 1), (_LINE_FEED + 1, 0x1F), *HOSTILE_RANGES[1:]])


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # a tag character: eight digits, as Python writes it
        return f"\\U{code:08x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, lines: bool = False) -> str:
    """``text`` with every control character shown as an escape (ESC as ``\\x1b``);
    ``lines`` keeps line feeds, for messages and cells laid out on several lines."""
    return _hostile(lines).sub(_escape_char, str(text))
