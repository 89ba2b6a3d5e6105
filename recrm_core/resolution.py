"""Identity resolution rules, as pure functions over what the database already holds.

Both the single-record service (``crm.customers.add``) and the set-based import
use these, so a record resolves the same way whichever door it comes through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Protocol

MOBILE = "mobile"
ID_CARD = "id_card"
WECHAT = "wechat"
EXTERNAL = "external"
#: how a conflict message names each kind of key
KEY_LABELS = {MOBILE: "mobile", ID_CARD: "ID card", WECHAT: "WeChat unionid",
              EXTERNAL: "external id"}
#: the ``field`` of a record whose keys conflict (see :func:`conflict_field`)
CONFLICT_FIELD = "mobile,id_card"
#: the CSV/API default when an external id comes without its source system
DEFAULT_SOURCE_SYSTEM = "default"

#: profile fields a merge fills when empty (existing non-empty values are kept)
FILLABLE_FIELDS = ("name", "gender", "birth_date", "persona", "budget", "email")

#: what a customer row holds that records fill: the profile, then where it came from
STATE_FIELDS = (*FILLABLE_FIELDS, "source_system", "external_id")

Key = tuple[str, str]


class Record(Protocol):
    """What these rules read of a record: a validated ``CustomerIn``, or an import
    row's ``importrows.Record`` (the same fields by position)."""

    @property
    def name(self) -> str | None: ...
    @property
    def mobiles(self) -> Sequence[str]: ...
    @property
    def id_card(self) -> str | None: ...
    @property
    def wechat_unionids(self) -> Sequence[str]: ...
    @property
    def email(self) -> str | None: ...
    @property
    def gender(self) -> str | None: ...
    @property
    def birth_date(self) -> Any: ...
    @property
    def persona(self) -> str | None: ...
    @property
    def budget(self) -> int | None: ...
    @property
    def external_id(self) -> str | None: ...
    @property
    def source_system(self) -> str | None: ...


_fillable = attrgetter(*FILLABLE_FIELDS)


def created_state(record: Record) -> tuple[Any, ...]:
    """The :data:`STATE_FIELDS` values of the customer a record creates."""
    external_id = record.external_id
    system = (record.source_system or DEFAULT_SOURCE_SYSTEM) if external_id else None
    return (*_fillable(record), system, external_id)


def record_keys(record: Record, id_card_key: Callable[[str], str]) -> list[Key]:
    """Every key a record can match on, mobiles first. ``id_card_key`` turns the ID
    number into what identities store for it (its keyed hash: ``idcards.match_value``),
    so ID numbers are matched without being stored or decrypted."""
    keys: list[Key] = [(MOBILE, m) for m in record.mobiles]
    if record.id_card:
        keys.append((ID_CARD, id_card_key(record.id_card)))
    if record.wechat_unionids:  # most records hold none: no generator made for them
        keys.extend([(WECHAT, u) for u in record.wechat_unionids])
    if record.external_id:
        keys.append((EXTERNAL, external_key(record.source_system, record.external_id)))
    return keys


def external_key(source_system: str | None, external_id: str) -> str:
    return f"{source_system or DEFAULT_SOURCE_SYSTEM}\x1f{external_id}"


@dataclass(frozen=True, slots=True)
class Match:
    """The outcome of matching one record: a customer id, nothing (new), or a conflict."""

    customer_id: int | None = None
    conflict: str | None = None


def match_record(
    record: Record,
    owner_of: Callable[[Key], int | None],
    id_card_of: Callable[[int], str | None],
    keys: list[Key],
) -> Match:
    """Apply the matching rules to the record's ``keys`` (its ``record_keys``);
    ``id_card_of`` gives a customer's stored ID-card key (hash), compared with the
    record's.

    - keys pointing to two different customers: conflict;
    - an ID card different from the ID card of the customer the other keys matched:
      conflict;
    - exactly one customer: merge into it; none: create.
    Equal email never matches.
    """
    owners: list[int] = []
    matched_by: list[str] = []  # labels of the kinds of keys that found a customer
    for key in keys:
        owner = owner_of(key)
        if owner is None:
            continue
        if owner not in owners:
            owners.append(owner)
        if KEY_LABELS[key[0]] not in matched_by:
            matched_by.append(KEY_LABELS[key[0]])
    if len(owners) > 1:
        listed = " and ".join(str(o) for o in owners)
        kinds = "/".join(matched_by) if len(matched_by) > 1 else f"{matched_by[0]}s"
        return Match(conflict=f"{kinds} belong to different customers ({listed})")
    if not owners:
        return Match()
    customer_id = owners[0]
    card = next((value for kind, value in keys if kind == ID_CARD), None)
    if card is not None:
        held = id_card_of(customer_id)
        if held is not None and held != card:
            return Match(
                conflict=f"ID card differs from the ID card of customer {customer_id}"
                f" matched by {'/'.join(matched_by)}"
            )
    return Match(customer_id=customer_id)


def conflict_field(record: Record) -> str:
    """The ``field`` a conflicting record is rejected under: its identity fields,
    ``wechat_unionid`` among them when it holds one."""
    return CONFLICT_FIELD + ",wechat_unionid" if record.wechat_unionids else CONFLICT_FIELD


def fill_changes(current: dict[str, Any], record: Record) -> dict[str, tuple[Any, Any]]:
    """Field -> (old, new) for every empty profile field the record can fill."""
    changes: dict[str, tuple[Any, Any]] = {}
    for name in FILLABLE_FIELDS:
        new = getattr(record, name)
        if new is not None and current.get(name) is None:
            changes[name] = (None, new)
    if record.external_id and current.get("external_id") is None:
        changes["source_system"] = (None, record.source_system or DEFAULT_SOURCE_SYSTEM)
        changes["external_id"] = (None, record.external_id)
    return changes

