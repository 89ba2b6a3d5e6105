"""Customers: the record that arrives, the customer returned, the 360 view and
what an import reports."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from .. import identity
from ..values import Persona, Stage
from .base import (
    BirthDate,
    Budget,
    Code,
    Email,
    ExternalId,
    Gender,
    GenderIn,
    IdCardNumber,
    Mobiles,
    PersonaIn,
    Text,
    WechatUnionids,
    _Model,
    _Out,
)
from .cases import Case
from .messages import Consent
from .timeline import StageChange, Task, TimelineEntry


def _record_error(field: str, reason: str) -> PydanticCustomError:
    return PydanticCustomError("record", reason, {"field": field})


#: the single-value spellings a record accepts beside its list fields
_SINGULAR = {"mobile": "mobiles", "wechat_unionid": "wechat_unionids"}


class CustomerIn(_Model):
    """A customer record as it arrives (API, CLI or an import row).

    Field order is the order in which errors are reported: the first failing field
    is the one an import names. ``mobile`` is accepted as a single-value alias of
    ``mobiles``, ``wechat_unionid`` of ``wechat_unionids``. A record needs one key:
    a mobile, an ID card or a WeChat unionid (a mini-program lead may carry nothing
    else).
    """

    name: Text = Field(default=None, description="full name, trimmed (at most 100 characters)")
    mobiles: Mobiles = Field(
        default_factory=list,
        description="mobile numbers, normalised to E.164 (`mobile` takes a single one)",
    )
    id_card: IdCardNumber = Field(
        default=None, description="18-character ID-card number, checked against GB 11643"
    )
    wechat_unionids: WechatUnionids = Field(
        default_factory=list,
        description="WeChat unionids, one per WeChat platform of the company: 16-64 letters, "
        "digits, '-' or '_', matched exactly (`wechat_unionid` takes a single one)",
    )
    email: Email = Field(
        default=None, description="email address, lower-cased; never merges two customers by itself"
    )
    gender: GenderIn = Field(
        default=None, description="male or female (男/女, M/F accepted); agrees with the ID card"
    )
    birth_date: BirthDate = Field(
        default=None,
        description="date of birth (2024-01-02, 2024/1/2, 2024年1月2日); agrees with the ID card",
    )
    source: Code = Field(
        default=None, description="where the lead came from (ad, call, agency ...), for `project`"
    )
    project: Code = Field(
        default=None,
        description="code of the project the record arrived for; links the customer to it",
    )
    persona: PersonaIn = Field(
        default=None,
        description="first_time, upgrader, investor, luxury or retiree (刚需/改善/投资/高端/养老)",
    )
    budget: Budget = Field(default=None, description="budget in CNY (`1,200,000`, `200万` too)")
    owner_staff: Code = Field(
        default=None, description="consultant who owns the customer at `project`"
    )
    external_id: ExternalId = Field(default=None, description="id of the record in `source_system`")
    source_system: Code = Field(
        default=None, description="the external system the record came from"
    )

    @model_validator(mode="before")
    @classmethod
    def _single_values(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        copied = False
        for single, plural in _SINGULAR.items():
            if single not in data:
                continue
            if not copied:
                data, copied = dict(data), True
            value = data.pop(single)
            extra = data.get(plural)
            if type(value) is str and extra is None:  # an import's cell: what the below gives
                data[plural] = [value] if value else []
                continue
            given = [value] if not isinstance(value, list | tuple) else list(value)
            more = [extra] if not isinstance(extra, list | tuple) else list(extra)
            data[plural] = [v for v in given + more if v not in (None, "")]
        return data

    @model_validator(mode="after")
    def _keys_and_id_card(self) -> CustomerIn:
        if not self.mobiles and self.id_card is None and not self.wechat_unionids:
            raise _record_error("mobile,id_card", "no mobile, ID card or WeChat unionid")
        if self.id_card is not None:
            # the field's validator parsed it already: read what it encodes
            card = identity.id_card_facts(self.id_card)
            # gender before birth_date: errors are reported in field order
            if self.gender is not None and self.gender != card.gender:
                raise _record_error(
                    "gender", f"gender {self.gender} contradicts the ID card ({card.gender})"
                )
            if self.birth_date is not None and self.birth_date != card.birth_date:
                raise _record_error(
                    "birth_date",
                    f"birth_date {self.birth_date} contradicts the ID card ({card.birth_date})",
                )
            self.gender = card.gender
            self.birth_date = card.birth_date
        return self


class CustomerUpdate(_Model):
    """Fields to change on an existing customer; fields left unset are not touched."""

    name: Text = Field(default=None, description="new full name")
    email: Email = Field(default=None, description="new email address")
    gender: GenderIn = Field(default=None, description="new gender (must agree with the ID card)")
    birth_date: BirthDate = Field(
        default=None, description="new date of birth (must agree with the ID card)"
    )
    persona: PersonaIn = Field(default=None, description="new persona")
    budget: Budget = Field(default=None, description="new budget in CNY")
    add_mobiles: Mobiles = Field(
        default_factory=list, description="mobiles to add to the customer's (existing ones stay)"
    )
    add_wechat_unionids: WechatUnionids = Field(
        default_factory=list,
        description="WeChat unionids to add to the customer's (one another customer holds "
        "is a conflict)",
    )


class ProjectLink(_Out):
    """A customer's relationship with one project."""

    project: str = Field(description="project code")
    project_name: str = Field(description="project name")
    stage: Stage = Field(description="the customer's stage at this project")
    owner_staff: str | None = Field(
        default=None, description="consultant who owns the customer at this project, if any"
    )
    source: str | None = Field(
        default=None, description="where the lead for this project came from"
    )
    first_seen_at: dt.datetime = Field(description="first contact with this project (UTC)")


class Customer(_Out):
    """A customer as the API returns it."""

    id: int = Field(description="customer id (the survivor's id after a merge)")
    name: str | None = Field(default=None, description="full name")
    gender: Gender | None = Field(default=None, description="male or female")
    birth_date: dt.date | None = Field(default=None, description="date of birth")
    persona: Persona | None = Field(
        default=None, description="segment: first_time, upgrader, investor, luxury or retiree"
    )
    budget: int | None = Field(default=None, description="budget in CNY")
    email: str | None = Field(default=None, description="email address (lower-case)")
    mobiles: list[str] = Field(
        default_factory=list, description="mobile numbers in E.164"
    )
    id_card: str | None = Field(
        default=None, description="ID-card number"
    )
    wechat_unionids: list[str] = Field(
        default_factory=list,
        description="WeChat unionids, one per WeChat platform of the company that knows "
        "the person (exactly as WeChat issued them)",
    )
    stage: Stage = Field(
        default="prospect", description="furthest stage over all of the customer's projects"
    )
    projects: list[ProjectLink] = Field(
        default_factory=list, description="the customer's relationship with each project"
    )
    source_system: str | None = Field(default=None, description="external system of `external_id`")
    external_id: str | None = Field(default=None, description="id in the external system")
    merged_into: int | None = Field(
        default=None, description="the survivor's id when this record was merged away, else `None`"
    )
    created_at: dt.datetime = Field(description="when the customer was created (UTC)")
    updated_at: dt.datetime = Field(description="when the profile last changed (UTC)")
    masked: bool = Field(
        default=False,
        description="whether identifying fields are masked (or left out) for the caller's "
        "role; `customers disclose` asks for them in full where the role allows",
    )


class AddResult(_Out):
    """What ``crm.customers.add`` (``POST /v1/customers``) did with one record."""

    customer: Customer = Field(description="the customer the record created or merged into")
    created: bool = Field(description="a new customer was created")
    changed: bool = Field(description="an existing customer gained data from the record")
    suspected_duplicate_of: list[int] = Field(
        default_factory=list,
        description="other customers with the same email (never merged automatically)")


class CustomerStageChange(_Out):
    """One stage change with the customer after it; a sequence of these is passed to
    ``recrm_stages_changed``."""

    customer: Customer = Field(description="the customer right after this change")
    change: StageChange = Field(description="what the change carried")


class IdentityEntry(_Out):
    """One identifying key of a customer, as shown (not as matched)."""

    kind: Literal["mobile", "id_card", "wechat"] = Field(
        description="mobile, id_card or wechat (a WeChat unionid)")
    value: str = Field(description="the key as entered (not the normalised match key)")
    since: dt.datetime = Field(description="when the key was added to the customer (UTC)")


class CustomerView(_Out):
    """The 360 view of one customer."""

    customer: Customer = Field(description="the customer")
    identities: list[IdentityEntry] = Field(
        default_factory=list,
        description="the customer's mobiles, ID cards and WeChat unionids"
    )
    birthplace: str | None = Field(
        default=None,
        description="where the ID card's region code points (GB/T 2260 via python-stdnum)",
    )
    timeline: list[TimelineEntry] = Field(
        description="interactions and plugins' entries, newest first"
    )
    cases: list[Case] = Field(description="the customer's service cases")
    consents: list[Consent] = Field(
        description="the deciding consent record per channel and purpose"
    )
    tasks: list[Task] = Field(
        default_factory=list, description="the customer's open follow-up tasks, earliest "
        "due first"
    )


class ImportedCustomer(_Out):
    """One customer an import batch created or matched, as ``recrm_customers_imported``
    receives it: light, so a plugin that needs only ids pays for nothing more."""

    customer_id: int = Field(description="the customer's id (the survivor's, for a merged one)")
    created: bool = Field(description="True when this batch created the customer")
    changed: list[str] = Field(
        default_factory=list,
        description="what the batch set or filled: profile field names, 'mobiles', "
        "'id_card', 'wechat_unionids', 'projects' (a new link or a filled owner/source); "
        "empty when a matched customer was left as it was",
    )
    rows: list[int] = Field(default_factory=list,
                            description="the file rows that resolved to this customer")


class ImportResult(_Out):
    """What a CSV import did, in counts."""

    rows: int = Field(default=0, description="rows read (blank lines not counted)")
    created: int = Field(default=0, description="customers created")
    merged: int = Field(default=0, description="rows merged into an existing customer")
    rejected: int = Field(default=0, description="rows rejected (see the errors file)")
    suspected_duplicates: int = Field(
        default=0, description="rows whose email matches another customer's"
    )


class RejectedRow(_Out):
    """A row an import did not take, and why. ``row`` counts data rows from 1 after the
    header (blank and title rows not counted); for a workbook ``sheet_row`` is the row
    number Excel shows."""

    row: int = Field(description="row number, from 1 after the header")
    field: str = Field(description="the field at fault")
    reason: str = Field(description="why it was rejected")
    sheet_row: int | None = Field(
        default=None, description="for a workbook, the row number Excel shows")


class DuplicatePair(_Out):
    """Customers sharing one email: suspected duplicates, never merged automatically."""

    email: str = Field(description="the shared email address")
    customer_ids: list[int] = Field(description="customers holding it")
