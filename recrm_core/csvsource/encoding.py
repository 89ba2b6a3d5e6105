"""Which encoding a CSV file is in, decided from its BOM or a sample of its bytes."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from .failures import ImportFileError

#: how much of the file decides between UTF-8 and GB18030
SNIFF_BYTES = 64 * 1024
#: a sample with this share of valid multi-byte sequences is UTF-8 with a few bad rows
UTF8_VALID_SHARE = 0.95
#: how much of the file's start tells UTF-16 without a BOM, and the share of its NUL
#: bytes that must fall on one side (odd places: little-endian, even: big-endian)
UTF16_SNIFF_BYTES = 4096
UTF16_NUL_SHARE = 0.9
#: the fewest NUL bytes that tell UTF-16 (a sixteenth of the sample must be NUL too):
#: a UTF-16 CSV has one per ASCII character, and any header holds more than this in
#: commas, line breaks and letters; a tiny file's one stray NUL is not a pattern
UTF16_MIN_NULS = 8
#: the share of a GB18030 sample's characters that must be common ones (GB2312's
#: level-1 hanzi and its punctuation; level-2 hanzi count neither way) once it holds
#: GB18030_MIN_JUDGED characters judged. Big5 read as GB18030 gives ~30% (many of its
#: characters land in GBK's rare extensions, kana, Cyrillic and the private-use area),
#: Shift-JIS ~0%; Chinese names, addresses and company names ~95% or more (bench/README)
GB18030_COMMON_SHARE = 0.7
GB18030_MIN_JUDGED = 4


@dataclass(frozen=True)
class EncodingGuess:
    """What a sample says about the file's encoding."""

    #: None: the sample is plain ASCII and the file goes on, so a later row decides
    encoding: str | None
    #: mostly UTF-8: each row holding an invalid sequence is rejected, not the file
    rejects_invalid: bool = False
    #: neither UTF-8 nor GB18030 reads the sample; ``encoding`` is the one that read
    #: further, so that the stop names the row of the first undecodable bytes
    undecodable: bool = False


_ESCAPED = re.compile("[\udc80-\udcff]+")  # undecodable bytes, as surrogateescape writes them
_MULTIBYTE = re.compile("[^\x00-\x7f\udc80-\udcff]")


def sniff_encoding(sample: bytes, complete: bool, start: bool = True) -> EncodingGuess:
    """Decide the encoding from ``sample``: the start of the file or, when that is plain
    ASCII, the bytes from the first line holding anything else (not ``start``: a BOM
    there is bytes of a row, not a BOM).

    A BOM means UTF-8; a UTF-16 BOM, or NUL bytes at every other place (UTF-16 saved
    without a BOM), is refused with advice. Otherwise UTF-8 when the sample decodes as
    UTF-8, or when at least :data:`UTF8_VALID_SHARE` of its non-ASCII sequences (each
    valid multi-byte character, each run of invalid bytes) are valid UTF-8: a few
    damaged rows do not make a UTF-8 file GB18030, which decodes almost any bytes and so
    proves nothing by itself. Then GB18030 when it decodes the sample and reads as
    Chinese (else a Big5 or Shift-JIS file is refused with advice); else the sample is
    undecodable. Unless ``complete`` (the sample ends the file), its last character
    may be cut, which is tolerated.
    """
    if start and sample.startswith(codecs.BOM_UTF8):
        return EncodingGuess("utf-8-sig")
    if ((start and sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)))
            or _utf16_nuls(sample)):
        # Excel's "Unicode Text"; its lines cannot be split on b"\n" like the others.
        raise ImportFileError(
            "the file is UTF-16 (Excel 'Unicode Text'); save it as 'CSV UTF-8' and import that"
        )
    if sample.isascii():
        return EncodingGuess("utf-8" if complete else None)
    utf8_stop = _decodes_to(sample, "utf-8", complete)
    if utf8_stop is None:
        return EncodingGuess("utf-8")
    text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(sample, complete)
    invalid = len(_ESCAPED.findall(text))
    valid = len(_MULTIBYTE.findall(text))
    if valid >= UTF8_VALID_SHARE * (valid + invalid):
        return EncodingGuess("utf-8", rejects_invalid=True)
    gb_stop = _decodes_to(sample, "gb18030", complete)
    if gb_stop is None:
        if not _plausible_gb18030(sample, complete):
            raise ImportFileError(
                "the file's text reads as GB18030 only as unlikely characters (is it Big5,"
                " Shift-JIS, or traditional Chinese saved as GBK?); save it as 'CSV UTF-8'"
                " and import that, or pass --encoding (big5, shift_jis; gbk if it is right)")
        return EncodingGuess("gb18030")
    return EncodingGuess("gb18030" if gb_stop > utf8_stop else "utf-8", undecodable=True)


def _utf16_nuls(sample: bytes) -> bool:
    """Whether ``sample`` is UTF-16 without a BOM: NUL bytes (the high byte of each
    comma, digit and line break) at every other place. UTF-8 and GB18030 text holds no
    NUL; a damaged file's stray ones fall on either side, and are too few to be
    one per character (its rows are then rejected naming the NUL)."""
    head = sample[:UTF16_SNIFF_BYTES]
    nuls = head.count(0)
    if nuls < max(UTF16_MIN_NULS, len(head) // 16):
        return False
    return max(head[0::2].count(0), head[1::2].count(0)) >= UTF16_NUL_SHARE * nuls


def _plausible_gb18030(sample: bytes, complete: bool) -> bool:
    """Whether ``sample`` (which decodes as GB18030) reads as Chinese: GB18030 decodes
    almost any bytes, so a Big5 or Shift-JIS file decodes too, into rare characters. It
    is plausible unless enough of its characters are judged and too few of them are
    common (:data:`GB18030_COMMON_SHARE`)."""
    text = codecs.getincrementaldecoder("gb18030")("strict").decode(sample, complete)
    common = judged = 0
    for char in _MULTIBYTE.findall(text):
        try:
            lead = char.encode("gb2312")[0]
        except UnicodeEncodeError:
            judged += 1  # beyond GB2312: traditional, rare or GB18030's four-byte ones
            continue
        if lead >= 0xD8:
            continue  # a level-2 hanzi: rare, yet in many a name
        judged += 1
        # 0xB0-0xD7: level-1 hanzi; 0xA1: punctuation; 0xA3: full-width ASCII
        if lead >= 0xB0 or lead in (0xA1, 0xA3):
            common += 1
    return judged < GB18030_MIN_JUDGED or common >= GB18030_COMMON_SHARE * judged


def _decodes_to(sample: bytes, encoding: str, complete: bool) -> int | None:
    """None when ``sample`` decodes, else the offset of its first undecodable byte."""
    try:
        codecs.getincrementaldecoder(encoding)("strict").decode(sample, complete)
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def check_encoding(name: str) -> str:
    """The canonical codec name for ``--encoding``, or ImportFileError (exit 2)."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ImportFileError(f"unknown encoding {name!r}") from None
    try:
        ascii_safe = "\n,\"".encode(info.name) == b"\n,\""
    except UnicodeError:
        ascii_safe = False
    if not ascii_safe:
        # Lines are split on b"\n" before decoding, so the encoding must keep ASCII as is.
        raise ImportFileError(
            f"encoding {name!r} is not supported for CSV (use UTF-8, GB18030 or GBK)"
        )
    return info.name
