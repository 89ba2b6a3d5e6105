"""Normalisation of the keys that identify a person: mobile, ID card, email.

Every function here takes raw text as people type it (full-width digits, stray
spaces, ``+86`` prefixes, a lower-case ``x``) and returns the canonical value the
database matches on, or raises :class:`IdentityError` naming the field and why.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

# phonenumbers and email_validator are imported on first use, where a value needs
# them: a command that validates no mobile or email (and start-up) pays for neither.

Gender = Literal["male", "female"]

ID_CARD_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CARD_CHECK_MAP = "10X98765432"
#: The province-level codes of GB/T 2260 of the mainland.
MAINLAND_PROVINCES = frozenset(
    f"{code}"
    for first, last in ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65))
    for code in range(first, last + 1)
)
#: What opens a resident ID-card number: a mainland province, 71 Taiwan, 81 Hong Kong
#: and 82 Macao (their residents' residence permits) and 83 (Taiwan residents' permit).
ID_CARD_PROVINCES = MAINLAND_PROVINCES | {"71", "81", "82", "83"}
#: The first digit of the foreigners' permanent-residence card (2023), which shares the
#: format and check character; the issuing mainland province follows it.
PERMANENT_RESIDENCE_PREFIX = "9"

# Characters people put between digits; anything else (letters, '#', '*', 转, ext)
# means an extension or garbage and is refused rather than silently dropped. The
# invisible format characters (zero-width space, the LRO/PDF marks phones and Windows
# wrap copied numbers in, a stray BOM) survive NFKC and go with every other code's
# (clean_code).
_MOBILE_SEPARATORS = re.compile(r"[\s\-.()]")
_MOBILE_ALLOWED = re.compile(r"\+?[0-9]+")
#: a number a spreadsheet saved as a float and a CSV export then wrote out
#: ("13812345678.0"): the digits before the point; the dot would otherwise be read as
#: a separator and the zero as a twelfth digit
_FLOAT_TEXT = re.compile(r"(\+?[0-9]+)\.0+")
_PLAIN_CN_MOBILE = re.compile(r"(?:\+86|0086|86)?(1[0-9]{10})")
#: a long number as a spreadsheet shows it ("1.10101E+17", "8.6138E+12"), which a CSV
#: export writes out as shown: the digits past the first few are usually gone, so the
#: value is refused saying so (a workbook's number cell is refused by xlsxsource,
#: before this); groups: mantissa, its decimals, exponent (a double's is under 309)
_SCIENTIFIC = re.compile(r"([0-9]+)(?:\.([0-9]+))?[eE][+]?([0-9]{1,3})")
SCIENTIFIC_NOTATION = ("is in scientific notation, as Excel shows a long number, which"
                       " drops digits; format the column as text")
#: the reason when the mantissa still holds every digit (``1.3912345680E10`` is
#: 13912345680): nothing was dropped, but the column is still not text
SCIENTIFIC_NOTATION_WHOLE = ("is in scientific notation, as Excel shows a long number;"
                             " format the column as text")


def _scientific_reason(notation: re.Match[str]) -> str:
    """The reason for a key written as ``notation`` (a match of ``_SCIENTIFIC``), which
    never repeats the value (its digits are a person's): it dropped digits unless its
    mantissa carries one past the point for each power of ten."""
    decimals, exponent = notation.group(2) or "", int(notation.group(3))
    whole = len(decimals) >= exponent and not decimals[exponent:].strip("0")
    return SCIENTIFIC_NOTATION_WHOLE if whole else SCIENTIFIC_NOTATION


class IdentityError(ValueError):
    """A value that cannot be an identity key; ``field`` names the input field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def clean(value: object) -> str:
    """Trim and NFKC-normalise a raw value (full-width digits become ASCII)."""
    # Called for every cell of an import (~10 times a row): plain text first.
    if type(value) is str and value.isascii():
        return value.strip()
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return text.strip()
    # NFKC turns the ideographic space (U+3000) into a plain one, so strip after it.
    return unicodedata.normalize("NFKC", text).strip()


def strip_format(text: str) -> str:
    """``text`` without Unicode format characters (category Cf): zero-width spaces and
    joiners, bidirectional overrides and isolates, soft hyphens, a stray BOM. They are
    invisible, so two codes that print alike would otherwise be two keys."""
    if text.isascii():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def clean_code(value: object) -> str:
    """:func:`clean` for codes and identifiers (project codes, staff ids, sources,
    categories, external ids): also without format characters, so ``XL\u200b1`` is
    ``XL1``. Names and free text keep theirs (a ZWJ belongs in an emoji)."""
    return code_of(clean(value))


def code_of(text: str) -> str:
    """:func:`clean_code` of a value :func:`clean` already gave (not cleaned twice)."""
    return text if text.isascii() else strip_format(text).strip()


def without_text_prefix(text: str) -> str:
    """``text`` without one leading apostrophe: Excel's text prefix, which exports of
    many systems keep on long digit strings so that Excel shows ``'13812345678`` as
    text instead of ``1.38E+10``. Only for keys made of digits (mobiles, ID
    numbers), where an apostrophe can mean nothing else."""
    return text[1:].lstrip() if text.startswith("'") else text


@lru_cache(maxsize=8)
def _mobile_pattern(region: str) -> re.Pattern[str] | None:
    import phonenumbers

    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or metadata.mobile is None or not metadata.mobile.national_number_pattern:
        return None
    return re.compile(metadata.mobile.national_number_pattern)


def normalise_mobile(raw: object, region: str = "CN") -> str:
    """Return the mobile number in E.164 (``+8613812345678``) or raise IdentityError.

    Spaces, dashes, dots, parentheses and ``+86``/``0086``/``86`` prefixes are
    accepted; letters and extensions are refused; the number must be a valid
    *mobile* number of its country (foreign mobiles are fine).
    """
    if region == "CN" and type(raw) is str and len(raw) == 11 and raw[0] == "1" \
            and raw.isdigit() and raw.isascii() \
            and (pattern := _mobile_pattern("CN")) is not None:
        # An import's every row: eleven plain digits opening with 1. The steps below
        # would find nothing to clean, strip or drop, and take the number itself as
        # the national number of the fast path: decided by the pattern alone.
        return _plain_cn_mobile(raw, raw, pattern)
    text = without_text_prefix(clean_code(raw))
    if not text:
        raise IdentityError("mobile", "mobile is empty")
    saved_as_float = _FLOAT_TEXT.fullmatch(text) if "." in text else None
    if saved_as_float is not None:
        try:
            return normalise_mobile(saved_as_float.group(1), region)
        except IdentityError:
            pass  # not a mobile so read: the dot may still be a separator ("138.1234.5670")
    compact = _MOBILE_SEPARATORS.sub("", text)
    if not _MOBILE_ALLOWED.fullmatch(compact):
        if (notation := _SCIENTIFIC.fullmatch(text)) is not None:
            raise IdentityError("mobile", f"mobile {_scientific_reason(notation)}")
        if "**" in compact:  # 前三后四 as partners see it (a lone * is no mask): no digits repeated
            raise IdentityError("mobile", "mobile is masked (****): give the whole number")
        raise IdentityError("mobile", f"mobile {text!r} contains letters or an extension")
    # Fast path: a plain mainland number, checked against phonenumbers' own CN
    # mobile pattern so the answer is the library's, at a fraction of the cost.
    if region == "CN" or compact.startswith(("+86", "0086")):
        plain = _PLAIN_CN_MOBILE.fullmatch(compact)
        pattern = _mobile_pattern("CN")
        if plain is not None and pattern is not None and (
            region == "CN" or not compact.startswith("86")
        ):
            return _plain_cn_mobile(text, plain.group(1), pattern)
    return _library_mobile(text, compact, region)


def _plain_cn_mobile(text: str, national: str, pattern: re.Pattern[str]) -> str:
    """A plain mainland number (``national``: eleven digits, read from ``text``)
    checked against phonenumbers' own CN mobile ``pattern``: the library's answer for
    it, at a fraction of the cost (tests compare the two over generated numbers)."""
    if pattern.fullmatch(national):
        return "+86" + national
    raise IdentityError("mobile", f"{text!r} is not a valid mobile number")


def _library_mobile(text: str, compact: str, region: str) -> str:
    """``normalise_mobile`` by phonenumbers itself, for what the fast path leaves."""
    import phonenumbers

    try:
        number = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException:
        raise IdentityError("mobile", f"{text!r} is not a phone number") from None
    if number.extension:
        raise IdentityError("mobile", f"mobile {text!r} has an extension")
    if not phonenumbers.is_valid_number(number):
        raise IdentityError("mobile", f"{text!r} is not a valid phone number")
    kind = phonenumbers.number_type(number)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise IdentityError("mobile", f"{text!r} is not a mobile number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True, slots=True)
class IdCard:
    """A validated resident ID-card number and what it encodes."""

    number: str
    birth_date: dt.date
    gender: Gender


def id_card_check_character(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, ID_CARD_WEIGHTS, strict=True))
    return ID_CARD_CHECK_MAP[total % 11]


def parse_id_card(raw: object, today: dt.date | None = None) -> IdCard:
    """Validate an 18-character ID-card number (GB 11643-1999) or raise IdentityError."""
    text = without_text_prefix(clean(raw)).upper()
    if not text:
        raise IdentityError("id_card", "ID card is empty")
    if len(text) != 18:
        if (notation := _SCIENTIFIC.fullmatch(text)) is not None:
            raise IdentityError("id_card", f"ID card {_scientific_reason(notation)}")
        raise IdentityError("id_card", f"ID card must have 18 characters, got {len(text)}")
    body, check = text[:17], text[17]
    if not body.isdigit() or not body.isascii() or check not in "0123456789X":
        raise IdentityError("id_card", "ID card must be 17 digits and a check digit or X")
    if id_card_check_character(body) != check:
        raise IdentityError("id_card", "ID card check character does not match")
    if body[0] == PERMANENT_RESIDENCE_PREFIX:
        if body[1:3] not in MAINLAND_PROVINCES:
            raise IdentityError(
                "id_card", f"permanent-residence card: issuing province {body[1:3]} is not a"
                " mainland province of GB/T 2260",
            )
    elif body[:2] not in ID_CARD_PROVINCES:
        raise IdentityError(
            "id_card", f"ID card region code {body[:2]} is not a province of GB/T 2260"
        )
    try:
        card = id_card_facts(text)
    except ValueError:
        raise IdentityError("id_card", "ID card birth date is not a real date") from None
    # GB 11643 bounds the date only by being real: its own example was born in 1880.
    if card.birth_date > (today or current_date()):
        raise IdentityError("id_card", "ID card birth date is in the future")
    return card


def id_card_facts(number: str) -> IdCard:
    """What a normalised ID-card number encodes, read without checking it again: for a
    number :func:`parse_id_card` already accepted (a validated record's ``id_card``).
    ValueError when its birth date is not a real date."""
    born = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    gender: Gender = "male" if int(number[16]) % 2 else "female"
    return IdCard(number=number, birth_date=born, gender=gender)


_today: tuple[int, dt.date] = (-1, dt.date.min)


def current_date() -> dt.date:
    """``date.today()``, asked of the clock once a second at most: validating an import
    row bounds two dates by it (birth date, ID card), and the local date can only
    change on a second's boundary."""
    global _today
    second = int(time.time())
    if _today[0] != second:
        _today = (second, dt.date.today())
    return _today[1]


def id_card_birthplace(number: str) -> str | None:
    """Where the region code of a valid ID-card number points (``广东省 潮阳县``), as
    python-stdnum's copy of GB/T 2260 names it; None where that copy does not know it.

    A county renamed over the years is named as it was in the birth year (the code
    was assigned then), else by its earliest name.
    """
    # Imported here: loading stdnum's place table costs ~70 ms, which every CLI call
    # would pay at start-up while only the 360 view needs it.
    from stdnum import numdb

    info: dict[str, str] = {}
    for _part, props in numdb.get("cn/loc").info(number[:6]):
        info.update(props)
    province = info.get("province")
    if not province:
        return None
    if number[2:6] == "0000":
        return province
    year = int(number[6:10])
    county: str | None = None
    for variant in info.get("county", "").split(","):
        name, start = variant, ""
        if variant.startswith("["):
            years, name = variant[1:].split("]", 1)
            start = years.split("-", 1)[0]
        if county is None or not start or int(start) <= year:
            county = name
    return f"{province} {county}" if county else province


def normalise_id_card(raw: object) -> str:
    """The canonical ID-card number (upper-case ``X``), validated."""
    return parse_id_card(raw).number


# Plain ASCII addresses (the vast majority) that email_validator certainly accepts
# unchanged; validating them costs ~18 µs each, a large share of a bulk import.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)


@lru_cache(maxsize=1)
def _special_use_domains() -> tuple[frozenset[str], tuple[str, ...]]:
    """email_validator's special-use domains, and their subdomains' endings (one
    ``endswith`` for all of them, not one test per domain on every address)."""
    import email_validator

    names = email_validator.SPECIAL_USE_DOMAIN_NAMES
    return frozenset(names), tuple("." + name for name in names)


def _plain_email(text: str) -> str | None:
    """The normalised address when it is plainly valid, else None (use the library)."""
    lowered = text.lower()
    if len(lowered) > 254 or not _PLAIN_EMAIL.fullmatch(lowered):
        return None
    local, domain = lowered.rsplit("@", 1)
    if len(local) > 64 or len(domain) > 253 or "--" in domain:
        return None
    specials, subdomains = _special_use_domains()
    if domain in specials or domain.endswith(subdomains):
        return None
    return lowered


def normalise_email(raw: object) -> str:
    """Lower-case a syntactically valid email address or raise IdentityError."""
    text = clean(raw)
    if not text:
        raise IdentityError("email", "email is empty")
    plain = _plain_email(text)
    if plain is not None:
        return plain
    from email_validator import EmailNotValidError, validate_email

    try:
        info = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise IdentityError("email", f"{text!r} is not a valid email: {exc}") from None
    return info.normalized.lower()


def national_digits(e164: str) -> str:
    """``+8613812345678`` -> ``13812345678``: a mainland mobile as people write it; any
    other number's digits with the country code."""
    return e164[3:] if e164.startswith("+86") else e164.lstrip("+")


def mask_mobile(e164: str) -> str:
    """``+8613812345678`` -> ``138****5678`` (national digits, middle four hidden)."""
    digits = national_digits(e164)
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "****" + digits[-4:]


def mask_id_card(number: str) -> str:
    """``11010119900307123X`` -> ``110101********123X``: the region (which the view
    shows as the birthplace anyway) and the last four; the birth date is hidden."""
    if len(number) < 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_email(email: str) -> str:
    """``zhang.wei@example.com`` -> ``z***@example.com``: the first character of the
    local part and the domain (the domain tells a company mailbox from a private one)."""
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return (local[:1] or "") + "***@" + domain


def mask_name(name: str) -> str:
    """``王伟`` -> ``王*``, ``欧阳娜娜`` -> ``欧***``: the first character and one ``*``
    for each other character (a one-character name stays as it is)."""
    chars = list(name)
    return chars[0] + "*" * (len(chars) - 1) if chars else ""


def mask_wechat_unionid(unionid: str) -> str:
    """The first four characters and ``****``: enough to tell two platforms apart."""
    return unionid[:4] + "****"


# WeChat documents a unionid as an opaque string; the ones it issues are about 28
# base64url characters (its docs' example: "o6_bmasdasdsad6_2sgVt7hMZOPfL"). The
# bounds leave room for other lengths without letting a mobile number (11 digits) or a
# name through as one.
_WECHAT_UNIONID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_WECHAT_UNIONID_CHAR = re.compile(r"[A-Za-z0-9_-]")


def normalise_wechat_unionid(raw: object) -> str:
    """The unionid as WeChat issued it (case kept: it matches exactly) or IdentityError.

    Cleaned like every code (:func:`clean_code`: trimmed, NFKC, format characters
    dropped); it must then be 16 to 64 ASCII letters, digits, ``-`` or ``_``.
    The reasons never repeat the value: a unionid is personal data.
    """
    text = clean_code(raw)
    if not text:
        raise IdentityError("wechat_unionid", "WeChat unionid is empty")
    if _WECHAT_UNIONID.fullmatch(text):
        return text
    bad = next((ch for ch in text if not _WECHAT_UNIONID_CHAR.fullmatch(ch)), None)
    if bad is not None:
        shown = repr(bad) if bad.isprintable() and not bad.isspace() else f"U+{ord(bad):04X}"
        raise IdentityError(
            "wechat_unionid",
            f"WeChat unionid contains {shown}; it holds only letters, digits, '-' and '_'",
        )
    raise IdentityError(
        "wechat_unionid",
        f"WeChat unionid must have 16 to 64 characters, got {len(text)}",
    )
