"""Message content: templates rendered in Jinja2's sandbox (HTML autoescaped), the way
out every message must carry, and the length of an SMS."""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from recrm_core import InvalidInput, Refused

#: the name a message uses when the customer's is unknown
POLITE_NAME = "尊敬的业主"
#: what stands for the unsubscribe link when a template is checked
_SAMPLE_LINK = "https://example.invalid/u/SAMPLE"

# -- the bounds of one rendering (README, "Content") --------------------------------------
#: the longest rendered text (characters): a template making more is refused
MAX_OUTPUT = 1_000_000
#: the most items ``range()`` gives
MAX_RANGE = 10_000
#: the most steps (loop iterations, calls, attribute and item lookups) of one rendering
MAX_STEPS = 1_000_000
#: the most seconds one rendering may take
MAX_SECONDS = 5.0
# a width or precision this long (7 digits) in a format string is one nobody means:
# printf style (``%999999999d``) and str.format style (``{:>999999999}``)
_HUGE_PRINTF = re.compile(r"%[-+ #0]*(?:\d{7,}|\d*\.\d{7,})")
_HUGE_FORMAT = re.compile(r"\{[^{}]*:[^{}]*\d{7,}[^{}]*\}")
# the largest integer a template may make by * or ** (bits)
_MAX_BITS = 4096


class TemplateTooBig(SecurityError):
    """A template that would render too much or work too long (a refusal, not a bug)."""


class _Budget:
    """What one rendering may still spend; counted by the environment's hooks."""

    __slots__ = ("deadline", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def spend(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateTooBig(f"too much work (over {MAX_STEPS:,} steps): loops too "
                                 "long or nested too deep")
        if not self.steps & 0x3FF and time.monotonic() > self.deadline:
            raise TemplateTooBig(f"too long to render (over {MAX_SECONDS:g} s)")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "newsletter_template_budget", default=None)


def _spend() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend()


def _too_long(size: int) -> None:
    if size > MAX_OUTPUT:
        raise TemplateTooBig(f"its text passes {MAX_OUTPUT:,} characters")


def _range(*args: int) -> range:
    """``range()`` in a template: at most :data:`MAX_RANGE` items."""
    try:
        found = range(*args)
        size = len(found)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TemplateTooBig(f"range(): {type(exc).__name__}") from None
    if size > MAX_RANGE:
        raise TemplateTooBig(f"range() of {size:,} items: at most {MAX_RANGE:,}")
    return found


def _counted(items: Iterable[Any]) -> Iterator[Any]:
    """Every ``{% for %}`` loops over this: each iteration is a step."""
    for item in items:
        _spend()
        yield item


class _Namespace(Namespace):
    """``namespace()`` whose values cannot grow past the output limit (doubling a
    string in a loop)."""

    def __setitem__(self, name: str, value: Any) -> None:
        if isinstance(value, (str, list, tuple, dict, set)):
            _too_long(len(value))
        super().__setitem__(name, value)


class _BoundedCode(CodeGenerator):
    """Compiles every ``{% for %}`` to loop over :func:`_counted`."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "_newsletter_counted", [], [], None, None,
                                     lineno=loop.lineno)
        super().visit_Template(node, frame)


def _capped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A filter refusing a huge number argument (``center(10**9)``) or format width."""

    @functools.wraps(fn)
    def capped(*args: Any, **kwargs: Any) -> Any:
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_OUTPUT:
                raise TemplateTooBig("a number too big for a filter")
            if isinstance(arg, str) and _HUGE_PRINTF.search(arg):
                raise TemplateTooBig("a format width or precision is too big")
        return fn(*args, **kwargs)

    return capped


class _Bounded(ImmutableSandboxedEnvironment):
    """The sandbox (no changing lists, dicts or sets either), with every rendering
    bounded: :data:`MAX_RANGE`, :data:`MAX_STEPS`, :data:`MAX_SECONDS`, and sizes made
    by ``*``, ``+``, ``**`` and ``%`` checked before they are made."""

    code_generator_class = _BoundedCode
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _range
        self.globals["namespace"] = _Namespace
        self.filters = {name: _capped(fn) for name, fn in self.filters.items()}
        self.filters["_newsletter_counted"] = _counted

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _spend()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    _too_long(len(seq) * max(times, 0))
            if isinstance(left, int) and isinstance(right, int) \
                    and left.bit_length() + right.bit_length() > _MAX_BITS:
                raise TemplateTooBig("a product too big to compute")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and right > 0 \
                    and max(abs(left), 2).bit_length() * right > _MAX_BITS:
                raise TemplateTooBig("a power too big to compute")
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
                _too_long(len(left) + len(right))
        elif operator == "%" and isinstance(left, str) and _HUGE_PRINTF.search(left):
            raise TemplateTooBig("a format width or precision is too big")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any,
             *args: Any, **kwargs: Any) -> Any:
        _spend()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        _spend()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _spend()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        owner = getattr(value, "__self__", None)
        if isinstance(owner, str) and _HUGE_FORMAT.search(owner):
            raise TemplateTooBig("a format width or precision is too big")
        return super().wrap_str_format(value)


_HTML = _Bounded(autoescape=True, undefined=StrictUndefined)
_TEXT = _Bounded(autoescape=False, undefined=StrictUndefined)

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
    """``template`` with ``fields`` filled in, in the bounded sandbox: streamed, and
    stopped once the text passes :data:`MAX_OUTPUT` or the work :data:`MAX_STEPS` or
    :data:`MAX_SECONDS`. Any problem of the template (an unknown field, a syntax error,
    a division by zero, too much output or work) is :class:`InvalidInput` naming it
    (and the line)."""
    token = _BUDGET.set(_Budget())
    chunks: list[str] = []
    size = 0
    stream: Iterator[str] | None = None
    try:
        stream = _compiled(template, html).generate(**fields)
        for chunk in stream:
            size += len(chunk)
            _too_long(size)
            chunks.append(chunk)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line else ""
        raise InvalidInput("template", f"{exc.message or exc}{where}") from None
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError,
            MemoryError) as exc:
        # the template's own mistake ({{ 1/0 }}, a call with wrong arguments)
        raise InvalidInput("template", f"{type(exc).__name__}: {exc}") from None
    finally:
        if stream is not None and hasattr(stream, "close"):
            stream.close()
        _BUDGET.reset(token)
    return "".join(chunks)


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
