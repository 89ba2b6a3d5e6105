"""Message content: templates rendered in Jinja2's sandbox (HTML autoescaped), the way
out every message must carry, and the length of an SMS."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from recrm_core import InvalidInput, Refused

#: the name a message uses when the customer's is unknown
POLITE_NAME = "尊敬的业主"
#: what stands for the unsubscribe link when a template is checked
_SAMPLE_LINK = "https://example.invalid/u/SAMPLE"

_HTML = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
_TEXT = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)

# GSM 03.38 basic set and its extension table (each extension character takes two)
_GSM = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
           "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXT = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    """How long an SMS is and how many segments it takes."""

    characters: int
    segments: int
    encoding: str  # gsm7 or ucs2


def sms_length(text: str) -> SmsLength:
    """GSM-7 text: 160 a segment, 153 when concatenated; any other character makes it
    UCS-2: 70 and 67 (a character outside the BMP counts two)."""
    if all(c in _GSM or c in _GSM_EXT for c in text):
        units = sum(2 if c in _GSM_EXT else 1 for c in text)
        single, multi, encoding = 160, 153, "gsm7"
    else:
        units = sum(2 if ord(c) > 0xFFFF else 1 for c in text)
        single, multi, encoding = 70, 67, "ucs2"
    segments = 1 if units <= single else -(-units // multi)
    return SmsLength(len(text), segments, encoding)


def render(template: str, fields: Mapping[str, Any], *, html: bool = False) -> str:
    """``template`` with ``fields`` filled in, in the sandbox; an unknown field or a
    syntax error is :class:`InvalidInput` naming the line."""
    try:
        return _compiled(template, html).render(**fields)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise InvalidInput("template", f"{exc.message or exc}{where}") from None


@functools.lru_cache(maxsize=64)
def _compiled(template: str, html: bool) -> Template:
    """Compiled once per template text: a send renders the same few templates for
    every recipient."""
    return (_HTML if html else _TEXT).from_string(template)


def sms_text(body: str, signature: str) -> str:
    """An SMS as it leaves: the sender signature, then the body."""
    return f"{signature}{body.strip()}"


def check_way_out(channel: str, subject: str | None, html: str | None, text: str | None,
                  fields: Mapping[str, Any], refusal: str) -> None:
    """Refuse content that does not carry its way out, before anything is sent: an
    email's bodies must show ``{{ unsubscribe_url }}``, an SMS must end with the
    refusal text (``回T退订``)."""
    sample = {**fields, "unsubscribe_url": _SAMPLE_LINK}
    if channel == "email":
        if not subject:
            raise Refused("an email needs a subject (--subject)")
        if not html and not text:
            raise Refused("an email needs a body (--html or --text)")
        for body, is_html in ((html, True), (text, False)):
            if body and _SAMPLE_LINK not in render(body, sample, html=is_html):
                kind = "HTML" if is_html else "text"
                raise Refused(f"the {kind} body has no unsubscribe link: put "
                              "{{ unsubscribe_url }} in it")
    else:
        if not text:
            raise Refused("an SMS needs its text (--text)")
        if not render(text, sample).rstrip().endswith(refusal):
            raise Refused(f"the SMS text must end with the refusal text {refusal!r}")
