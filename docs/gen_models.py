"""Regenerate ``docs/models.md`` from the models hooks receive and the API returns.

The pydantic models' ``Field(description=...)`` (and the ``#:`` comments or
``:param:`` lines of the few dataclasses) are the reference; this page is only their
rendering, so it can never drift from the code (``tests/test_docs.py`` fails when it
does)::

    python docs/gen_models.py           # rewrite docs/models.md
    python docs/gen_models.py --check   # exit 1 if docs/models.md is out of date
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

import recrm_core
from recrm_core import actions, incidents, models, pool, privacy, roles, tasks, values
from recrm_core.config import (
    ApiSettings,
    CoreSettings,
    FollowupSettings,
    KpiSettings,
    PoolSettings,
    PrivacySettings,
    ReportSettings,
    RoutingRule,
    SlaLevel,
    SlaPolicy,
    WebhookSettings,
)
from recrm_core.reports import model as reports
from recrm_core.segments import CORE_FIELDS, OPS, TYPE_OPS

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, run as a script or not
from gen_hooks import write_or_check

MODELS_MD = Path(__file__).with_name("models.md")

#: (heading, intro, the classes under it), in page order
GROUPS: list[tuple[str, str, list[type[Any]]]] = [
    ("What hooks receive", "Arguments of the hooks in the [hook reference](hooks.md).", [
        recrm_core.UnitOfWork, models.Customer, models.ProjectLink, models.StageChange,
        models.CustomerStageChange, models.OwnerChange, models.ImportedCustomer,
        models.Interaction, models.Case, models.CaseHistoryEntry, models.Message, models.Task,
    ]),
    ("What hooks return or register", "Build these in your hook implementations.", [
        models.TimelineEntry, recrm_core.SegmentField, models.DeliveryResult,
        recrm_core.DemoSection, models.ErasureStep, reports.ReportSpec, reports.ReportOption,
        reports.Report, reports.Column, reports.Chart, reports.Series,
    ]),
    ("What the API returns", "Besides the models above, service calls return these.", [
        models.CustomerView, models.IdentityEntry, models.Consent, models.Project,
        recrm_core.AddResult, models.ImportResult, models.RejectedRow, models.DuplicatePair,
        models.Staff, models.Department, models.AuditEntry, privacy.ErasureReport,
        actions.ReassignResult,
        actions.SegmentCount, actions.CustomerPage, actions.ApiKey, actions.ApiKeyCreated,
        incidents.Incident,
        tasks.TaskSweep, tasks.TaskReportRow, pool.PoolEntry, pool.PoolEvent,
        pool.PoolRelease, pool.PoolSweep, pool.PoolReportRow, pool.ReleaseResult,
        reports.ReportInfo,
    ]),
    ("What the API takes", "Service calls validate their input with these (dicts work too); "
     "a bad value is an `InvalidInput` naming the field.", [
        models.Actor, models.CustomerIn, models.CustomerUpdate, models.InteractionIn,
        models.CustomerInteractionIn, models.StageMove, models.CaseIn, models.ProjectIn,
        models.StaffIn, models.DepartmentIn,
        actions.MergeIn, actions.StageIn, actions.ReassignIn, actions.DiscloseIn,
        actions.EraseIn, actions.CaseActionIn, actions.ConsentIn, actions.SegmentQuery,
        incidents.IncidentIn,
        tasks.TaskIn, tasks.TaskDoneIn, tasks.TaskCancelIn, pool.ClaimIn, pool.ReleaseIn,
        reports.ReportRequest,
    ]),
    ("Configuration: `crm.config`", "The core's settings from `recrm.toml`, validated; "
     "plugins read their own section with `crm.settings_for(section)`.", [
        CoreSettings, SlaPolicy, SlaLevel, RoutingRule, PrivacySettings, ApiSettings,
        WebhookSettings, FollowupSettings, PoolSettings, ReportSettings, KpiSettings,
    ]),
]

#: named value types: the literal, its heading, and what the values mean
VALUE_TYPES: list[tuple[str, Any, str]] = [
    ("Stage", values.Stage,
     "A customer's stage at a project, in funnel order: the lead (`prospect`), came to the "
     "sales office (`visitor`), paid the deposit, 认购 (`subscriber`), signed the contract, "
     "签约 (`buyer`), got the unit handed over, 交房 (`owner`). Stages move forward only "
     "(`force=True` aside); `Customer.stage` is the furthest over all projects. "
     "`recrm_core.STAGES` holds them in order."),
    ("Persona", values.Persona,
     "The segments the business uses: 刚需 first-time buyer, 改善 upgrader, 投资 investor, "
     "高端 luxury, 养老 retiree (the Chinese names are accepted on input). "
     "`recrm_core.PERSONAS` holds them."),
    ("Gender", models.Gender, "男 and 女, M and F are accepted on input."),
    ("Role", roles.Role,
     "What an actor may see ([docs/access.md](access.md)): `admin` everything; `manager` "
     "their department's projects (shown masked until they disclose); `sales` the customers "
     "they own; `service` the customers of their cases; `partner` a masked name and mobile "
     "only; `analyst` counts and masked lists. `consultant` and `staff` mean `sales`."),
    ("Channel", models.Channel, "How a message or consent reaches the customer."),
    ("Purpose", models.CorePurpose,
     "What a consent is for: the core's purposes, and any an enabled plugin registers "
     "through [`recrm_consent_purposes`](hooks.md#recrm_consent_purposes) (the newsletter "
     "plugin adds `newsletter`); `crm.consent.purposes()` lists them."),
    ("Priority", models.Priority, "A case's priority; decides its SLA (`[sla]` in recrm.toml)."),
    ("CaseStatus", models.CaseStatus,
     "open → in_progress → resolved → closed, or reopened from resolved or closed."),
    ("IntakeChannel", models.IntakeChannel,
     "How a case came in: the hotline, WeChat, the sales-office mailbox, the owners' forum, "
     "the chairman's column (董事长专栏), the property desk, a walk-in, a survey (a "
     "detractor's case), or other."),
    ("TaskStatus", models.TaskStatus,
     "A follow-up task is open until done (by the interaction that did it, when known) "
     "or cancelled (with a reason)."),
]
_ALIASES = {str(tp): name for name, tp, _ in VALUE_TYPES}
_CLASS_NAMES = {cls: cls.__name__ for _, _, classes in GROUPS for cls in classes}
COMBINATORS = [
    ("all", "`{\"all\": [...]}`: every member matches (an empty `all` matches everyone)"),
    ("any", "`{\"any\": [...]}`: at least one member matches (an empty `any` matches no one)"),
    ("not", "`{\"not\": X}`: `X` does not match"),
]


class MissingDescription(Exception):
    """A documented class or field says nothing about itself."""


def documented_classes() -> list[type[Any]]:
    return [cls for _, _, classes in GROUPS for cls in classes]


def anchor(name: str) -> str:
    return name.lower()


def type_name(tp: Any) -> str:
    """A type as a reader writes it, with documented models and value types linked."""
    if tp is type(None):
        return "None"
    if tp is Any:
        return "Any"
    if tp is Ellipsis:  # tuple[X, ...]
        return "..."
    if isinstance(tp, list):  # a Callable's arguments
        return "[" + ", ".join(type_name(a) for a in tp) + "]"
    if str(tp) in _ALIASES:
        name = _ALIASES[str(tp)]
        return f"[{name}](#{anchor(name)})"
    origin = get_origin(tp)
    if origin is Literal:
        return " \\| ".join(f'"{a}"' for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        args = sorted(get_args(tp), key=lambda a: a is type(None))
        return " \\| ".join(type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_name(a) for a in get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if isinstance(tp, str):  # a dataclass annotation, as written
        by_name = {cls.__name__: cls for cls in _CLASS_NAMES}
        parts = [re.sub(r"^dt\.", "", part.strip()) for part in tp.split("|")]
        return " \\| ".join(type_name(by_name[p]) if p in by_name else p for p in parts)
    if tp in _CLASS_NAMES:
        return f"[{tp.__name__}](#{anchor(tp.__name__)})"
    return getattr(tp, "__name__", str(tp))


def default_text(default: Any, factory: Any) -> str:
    if factory is not None:
        default = factory()
    if isinstance(default, BaseModel):
        return "defaults"
    return f"`{default!r}`"


def markdown(text: str) -> str:
    """reST inline markup to Markdown: ``code`` and :role:`~target` become code."""
    text = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`.]+)`", r"`\1`", text)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def own_doc(cls: type[Any]) -> str:
    doc = cls.__dict__.get("__doc__")
    if not doc:
        raise MissingDescription(f"{cls.__name__} has no docstring")
    # Only the prose: ``:param:`` lines become the fields' descriptions.
    prose = inspect.cleandoc(doc).split("\n:param", 1)[0]
    return markdown(prose).strip()


def dataclass_descriptions(cls: type[Any]) -> dict[str, str]:
    """``#:`` comments above a field, and ``:param name:`` lines of the docstring."""
    found: dict[str, str] = {}
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    for match in re.finditer(r"^:param (\w+):(.*(?:\n    .*)*)", doc, re.MULTILINE):
        found[match[1]] = " ".join(match[2].split())
    source = textwrap.dedent(inspect.getsource(cls)).splitlines()
    for i, line in enumerate(source):
        field = re.match(r"\s+(\w+):", line)
        comments: list[str] = []
        j = i - 1
        while field and j >= 0 and source[j].strip().startswith("#:"):
            comments.insert(0, source[j].strip()[2:].strip())
            j -= 1
        if field and comments:
            found[field[1]] = " ".join(comments)
    return {k: markdown(v) for k, v in found.items()}


def field_rows(cls: type[Any]) -> list[tuple[str, str, str, str]]:
    """(name, type, default, description) of every field."""
    rows: list[tuple[str, str, str, str]] = []
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        for name, info in cls.model_fields.items():
            if not info.description:
                raise MissingDescription(f"{cls.__name__}.{name} has no description")
            required = info.default is PydanticUndefined and info.default_factory is None
            default = "required" if required else default_text(info.default, info.default_factory)
            rows.append((name, type_name(info.annotation), default, info.description))
        return rows
    described = dataclass_descriptions(cls)
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    for f in dataclasses.fields(cls):
        if f.name not in described:
            raise MissingDescription(f"{cls.__name__}.{f.name} has no description")
        if f.default is not dataclasses.MISSING:
            default = default_text(f.default, None)
        elif f.default_factory is not dataclasses.MISSING:
            default = default_text(None, f.default_factory)
        else:
            default = "required"
        rows.append((f.name, type_name(hints[f.name]), default, described[f.name]))
    return rows


def properties(cls: type[Any]) -> list[tuple[str, str]]:
    """Documented properties (``crm.config.zone``), as (name, first paragraph)."""
    found = []
    for name, value in vars(cls).items():
        if isinstance(value, property) and value.__doc__:
            text = markdown(" ".join(inspect.cleandoc(value.__doc__).split()))
            found.append((name, text))
    return found


def render_class(cls: type[Any]) -> list[str]:
    lines = ["", f"### {cls.__name__}", "", own_doc(cls), "",
             "| field | type | default | description |", "|---|---|---|---|"]
    for name, type_, default, description in field_rows(cls):
        cell = description.replace("|", "\\|")
        lines.append(f"| `{name}` | {type_} | {default} | {cell} |")
    for name, text in properties(cls):
        lines += ["", f"`.{name}` (property): {text}"]
    return lines


def render_segments() -> list[str]:
    lines = [
        "", "## Segment definitions", "",
        "A segment definition is JSON: a condition `{\"field\": F, \"op\": OP, \"value\": V}`,",
        "or a group of definitions. `crm.segments.count(definition)` and",
        "`recrm customers count --segment` compile it into one SQL query; plugins add",
        "fields with [`recrm_segment_fields`](hooks.md#recrm_segment_fields)"
        " (see [SegmentField](#segmentfield)).",
        "", "### Combinators", "",
    ]
    lines += [f"- `{name}`: {text}" for name, text in COMBINATORS]
    lines += ["", "### Operators", "", f"All of them: {', '.join(f'`{op}`' for op in OPS)}.",
              "`in`/`not_in` take a non-empty list, `between` a `[low, high]` pair (inclusive),",
              "`is_null` `true` or `false`, `contains` a piece of text.", "",
              "| field type | operators |", "|---|---|"]
    lines += [f"| `{t}` | {', '.join(f'`{op}`' for op in ops)} |" for t, ops in TYPE_OPS.items()]
    lines += ["", "### The core's fields", "", "| field | type | description |", "|---|---|---|"]
    lines += [f"| `{f.name}` | `{f.type}` | {f.description} |" for f in CORE_FIELDS]
    return lines


def render() -> str:
    """The whole of docs/models.md."""
    lines = [
        "# Model reference",
        "",
        "<!-- Generated by docs/gen_models.py from recrm_core/models.py and friends: edit",
        "     the descriptions there, then run `python docs/gen_models.py`. -->",
        "",
        "Every model a hook receives or the API returns, field by field. Models are",
        "pydantic v2 (`model_dump()`, `model_dump_json()`); times are timezone-aware UTC",
        "(show them in [`crm.config.zone`](#coresettings)); import them from `recrm_core`.",
        "See [the plugin guide](plugins.md) and [the hook reference](hooks.md).",
        "",
        "## Contents",
        "",
    ]
    for heading, _, classes in GROUPS:
        links = ", ".join(f"[{c.__name__}](#{anchor(c.__name__)})" for c in classes)
        lines.append(f"- **{heading}**: {links}")
    names = ", ".join(f"[{n}](#{anchor(n)})" for n, _, _ in VALUE_TYPES)
    lines.append(f"- **Value types**: {names}")
    lines.append("- **[Segment definitions](#segment-definitions)**: combinators, operators, "
                 "the core's fields")
    for heading, intro, classes in GROUPS:
        lines += ["", f"## {heading}", "", intro]
        for cls in classes:
            lines += render_class(cls)
    lines += ["", "## Value types"]
    for name, tp, text in VALUE_TYPES:
        choices = ", ".join(f"`{a}`" for a in get_args(tp))
        lines += ["", f"### {name}", "", f"{choices}.", "", text]
    lines += render_segments()
    return "\n".join(lines).rstrip() + "\n"


def hook_model_names() -> set[str]:
    """Names of the classes the hook specifications' annotations mention."""
    from recrm_core.hooks import specs

    found: set[str] = set()
    for obj in vars(specs).values():
        for annotation in getattr(obj, "__annotations__", {}).values():
            for node in ast.walk(ast.parse(str(annotation), mode="eval")):
                if isinstance(node, ast.Name) and node.id[:1].isupper():
                    found.add(node.id)
    return found


def main(argv: list[str] | None = None) -> int:
    return write_or_check(MODELS_MD, render(), __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
