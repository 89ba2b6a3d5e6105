"""The fields segment definitions filter on: operators per field type, the core's
fields, and the checks a plugin's field passes."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, select

from ..consent import CHANNELS, PURPOSES, consent_granted_clause
from ..errors import ConfigError
from ..resolution import ID_CARD, MOBILE, WECHAT
from ..tables import CustomerProjectRow, CustomerRow, IdentityRow, ProjectRow

OPS: tuple[str, ...] = (
    "eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "between", "contains", "is_null",
)


def _without(*excluded: str) -> tuple[str, ...]:
    return tuple(op for op in OPS if op not in excluded)


_ENUM_OPS = ("eq", "ne", "in", "not_in", "is_null")
#: the operators each field type accepts (a field may narrow them with ``ops``)
TYPE_OPS: dict[str, tuple[str, ...]] = {
    "str": OPS,
    "int": _without("contains"),
    "money": _without("contains"),
    "date": _without("contains"),
    "datetime": _without("contains"),
    "stage": _without("contains"),
    "bool": ("eq", "ne", "is_null"),
    "gender": _ENUM_OPS,
    "persona": _ENUM_OPS,
    "email": (*_ENUM_OPS, "contains"),
    "mobile": (*_ENUM_OPS, "contains"),
    "id_card": _ENUM_OPS,
    "wechat_unionid": _ENUM_OPS,
}
FIELD_TYPES: tuple[str, ...] = tuple(TYPE_OPS)
_PLUGIN_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


@dataclass(frozen=True)
class SegmentField:
    """A field segment definitions may filter on.

    :param name: ``<plugin>.<field>`` for plugin fields.
    :param expression: receives the customers' id column and returns a SQLAlchemy
        expression, usually a correlated scalar subquery such as
        ``select(Score.points).where(Score.customer_id == cid).scalar_subquery()``
        (a plain ``Select`` is turned into one). With ``many=True`` it returns a
        one-column ``Select`` of the customer's values instead.
    :param type: one of :data:`FIELD_TYPES`; decides how values are checked and
        which operators apply.
    :param description: one line for documentation and ``--help``.
    :param many: the field has several values per customer (tags, mobiles): a
        condition matches when any value satisfies it; ``ne``, ``not_in`` and
        ``is_null: true`` match when none does.
    :param ops: narrow the operators the type allows (``None``: all of them).
    """

    name: str
    expression: Callable[[ColumnElement[int]], ColumnElement[Any] | Select[Any]]
    type: str = "str"
    description: str = ""
    many: bool = False
    ops: tuple[str, ...] | None = None

    @property
    def allowed_ops(self) -> tuple[str, ...]:
        return self.ops if self.ops is not None else TYPE_OPS.get(self.type, ())


@dataclass(frozen=True)
class _LinkField(SegmentField):
    """A column of one customer-project relationship (``customer_projects``
    joined to ``projects``); the compiler tests such conditions inside one EXISTS
    per group, so conditions sitting together describe the same relationship."""


# -- the core's fields ---------------------------------------------------------------------


def _column(column: ColumnElement[Any]) -> Callable[[ColumnElement[int]], ColumnElement[Any]]:
    # Core columns live on the customers row itself, so the id is not needed.
    return lambda _cid: column


def _identities(kind: str) -> Callable[[ColumnElement[int]], Select[Any]]:
    def values(cid: ColumnElement[int]) -> Select[Any]:
        return select(IdentityRow.value).where(
            IdentityRow.customer_id == cid, IdentityRow.kind == kind
        )

    return values


def _consent(channel: str, purpose: str) -> Callable[[ColumnElement[int]], ColumnElement[Any]]:
    return lambda cid: consent_granted_clause(cid, channel, purpose)


def _consent_fields(purposes: Sequence[str]) -> list[SegmentField]:
    """``consent.<channel>.<purpose>`` for every channel and each of ``purposes``."""
    return [SegmentField(f"consent.{channel}.{purpose}", _consent(channel, purpose), "bool",
                         f"the newest {channel} consent for {purpose} grants it",
                         ops=("eq", "ne"))
            for channel in CHANNELS for purpose in purposes]


CORE_FIELDS: tuple[SegmentField, ...] = (
    SegmentField("id", _column(CustomerRow.id.expression), "int", "customer id"),
    SegmentField("name", _column(CustomerRow.name.expression), "str", "name"),
    SegmentField("gender", _column(CustomerRow.gender.expression), "gender",
                 "male/female (男/女 accepted)"),
    SegmentField("birth_date", _column(CustomerRow.birth_date.expression), "date",
                 "date of birth"),
    SegmentField("persona", _column(CustomerRow.persona.expression), "persona",
                 "first_time, upgrader, investor, luxury, retiree (刚需/改善/投资/高端/养老)"),
    SegmentField("budget", _column(CustomerRow.budget.expression), "money",
                 "budget in CNY (200万 accepted)"),
    SegmentField("email", _column(CustomerRow.email.expression), "email",
                 "email address (lower-case)"),
    SegmentField("stage", _column(CustomerRow.stage.expression), "stage",
                 "furthest stage over all projects; ordered prospect < ... < owner"),
    SegmentField("source_system", _column(CustomerRow.source_system.expression), "str",
                 "system of the external reference"),
    SegmentField("external_id", _column(CustomerRow.external_id.expression), "str",
                 "id in the external system"),
    SegmentField("created_at", _column(CustomerRow.created_at.expression), "datetime",
                 "when the customer was created"),
    SegmentField("updated_at", _column(CustomerRow.updated_at.expression), "datetime",
                 "when the profile last changed"),
    SegmentField("mobile", _identities(MOBILE), "mobile",
                 "any of the customer's mobiles (normalised to E.164)", many=True),
    SegmentField("id_card", _identities(ID_CARD), "id_card", "ID-card number", many=True),
    SegmentField("wechat_unionid", _identities(WECHAT), "wechat_unionid",
                 "any of the customer's WeChat unionids (is_null false: known on WeChat)",
                 many=True),
    _LinkField("project", _column(ProjectRow.code.expression), "str", "project code"),
    _LinkField("project_name", _column(ProjectRow.name.expression), "str", "project name"),
    _LinkField("project_stage", _column(CustomerProjectRow.stage.expression), "stage",
               "stage at the project; ordered prospect < ... < owner"),
    _LinkField("owner_staff", _column(CustomerProjectRow.owner_staff.expression), "str",
               "consultant owning the customer at the project"),
    _LinkField("source", _column(CustomerProjectRow.source.expression), "str",
               "where the lead for the project came from"),
    _LinkField("first_seen_at", _column(CustomerProjectRow.first_seen_at.expression),
               "datetime", "first contact with the project"),
    _LinkField("project_stage_changed_at",
               _column(CustomerProjectRow.stage_changed_at.expression), "datetime",
               "when the stage at the project last changed"),
    *_consent_fields(PURPOSES),
)


# -- the plugins' fields ---------------------------------------------------------------------


def _check_plugin_field(
    plugin: str, item: object, owners: Mapping[str, str | None]
) -> SegmentField:
    """What ``plugin`` registered, checked; ``owners`` maps the fields known so far to
    the plugin that registered each (``None``: the core)."""
    if not isinstance(item, SegmentField):
        raise ConfigError(
            f"plugin {plugin!r}: recrm_segment_fields: register() takes a SegmentField, "
            f"got {type(item).__name__}"
        )
    name = item.name
    if not isinstance(name, str) or not _PLUGIN_FIELD_NAME.fullmatch(name):
        raise ConfigError(
            f"segment field {name!r}: a plugin field is named '<plugin>.<field>' "
            "(letters, digits, underscores)"
        )
    if name.split(".", 1)[0] == "consent":
        raise ConfigError(f"segment field {name!r}: the 'consent.' prefix is the core's")
    if name in owners:
        first = owners[name]
        by = "the core" if first is None else f"plugin {first!r}"
        raise ConfigError(
            f"segment field {name!r} is registered twice: by {by} and by plugin {plugin!r}"
        )
    if not name.startswith(f"{plugin}."):
        raise ConfigError(
            f"segment field {name!r} of plugin {plugin!r}: its name must start with "
            f"'{plugin}.', the plugin's name"
        )
    if item.type not in TYPE_OPS:
        raise ConfigError(
            f"segment field {name!r}: unknown type {item.type!r} (known: {', '.join(TYPE_OPS)})"
        )
    if item.ops is not None:
        bad = [op for op in item.ops if op not in TYPE_OPS[item.type]]
        if bad or not item.ops:
            raise ConfigError(
                f"segment field {name!r}: ops {bad or '()'} do not apply to type {item.type} "
                f"(allowed: {', '.join(TYPE_OPS[item.type])})"
            )
    if not callable(item.expression):
        raise ConfigError(f"segment field {name!r}: expression is not callable")
    if isinstance(item, _LinkField):
        raise ConfigError(f"segment field {name!r}: project-relationship fields are the core's")
    return item
