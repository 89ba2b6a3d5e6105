"""The company's registers and the audit log: projects, departments, staff,
what an erasure did, and the audit entries."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from .. import identity, values
from ..roles import Role, parse_role
from .base import Code, Email, PlaceText, _Model, _Out, _wrap_identity, scalar


class Project(_Out):
    """A project (楼盘) of the registry."""

    id: int = Field(description="project id")
    code: str = Field(description="project code, e.g. XL2 (trimmed, NFKC-normalised)")
    name: str = Field(description="project name, e.g. 星珑二期")
    city: str | None = Field(default=None, description="the city it is in")
    service_department: str | None = Field(
        default=None, description="the department serving its owners")


class ProjectIn(_Model):
    """A project to register: its code (a reference, changed only by a rename), the
    name people know it by, and optionally its city and the department serving it."""

    code: str = Field(description="project code, e.g. XL2 (trimmed, NFKC-normalised, "
                      "format characters removed)")
    name: str = Field(description="project name, e.g. 星珑二期")
    city: PlaceText = Field(default=None, description="the city it is in")
    service_department: Code = Field(
        default=None, description="the department serving its owners")

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, v: Any) -> str:
        # Imported here: projects.py imports this module.
        from ..errors import InvalidInput
        from ..projects import project_code

        try:
            return project_code(scalar(v))
        except InvalidInput as exc:
            raise ValueError(exc.reason) from None

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, v: Any) -> str:
        text = values.optional_text(scalar(v), 200)
        if text is None:
            raise ValueError("project name is empty")
        return text


class DepartmentIn(_Model):
    """A department to add to the directory."""

    code: Annotated[str, BeforeValidator(
        lambda v: values.required_code(scalar(v), "department code", 64))] = Field(
        description="department code, e.g. XL-SALES (what staff and cases refer to)")
    name: Annotated[str, BeforeValidator(
        lambda v: values.required_text(scalar(v), "department name", 200))] = Field(
        description="its name, e.g. 星珑湾销售部")
    email: Email = Field(default=None, description="a shared mailbox, for notifications")
    projects: list[str] = Field(
        default_factory=list,
        description="codes of the projects it is responsible for (a manager's scope)")


class Department(_Out):
    """A department of the directory."""

    code: str = Field(description="department code")
    name: str = Field(description="its name")
    email: str | None = Field(default=None, description="shared mailbox")
    projects: list[str] = Field(default_factory=list,
                                description="codes of the projects it is responsible for")


class StaffIn(_Model):
    """A member of staff to add to the directory."""

    id: Annotated[str, BeforeValidator(
        lambda v: values.required_code(scalar(v), "staff id", 64))] = \
        Field(description="staff id: what owners, case assignees and actors refer to")
    name: Annotated[str, BeforeValidator(lambda v: values.required_text(scalar(v), "staff name",
                                                                        100))] = Field(
        description="full name")
    role: Annotated[Role, BeforeValidator(parse_role)] = Field(
        description="admin, manager, sales, service, partner or analyst")
    department: Code = Field(default=None, description="department code, if any")
    manager: Code = Field(default=None, description="staff id of their manager, if any")
    email: Email = Field(default=None, description="work email, for notifications")
    mobile: Annotated[str | None, BeforeValidator(
        _wrap_identity(identity.normalise_mobile))] = Field(
        default=None, description="work mobile, for notifications (E.164)")


class Staff(_Out):
    """A member of staff as the directory holds them."""

    id: str = Field(description="staff id")
    name: str = Field(description="full name")
    role: Role = Field(description="their role")
    department: str | None = Field(default=None, description="department code")
    manager: str | None = Field(default=None, description="their manager's staff id")
    email: str | None = Field(default=None, description="work email")
    mobile: str | None = Field(default=None, description="work mobile (E.164)")
    active: bool = Field(default=True, description="False once they left")
    left_at: dt.datetime | None = Field(default=None, description="when they left (UTC)")


class ErasureStep(_Out):
    """What an erasure did to one table (``recrm_customer_erase`` returns these)."""

    table: str = Field(description="the table, e.g. interactions or membership_ledger")
    deleted: int = Field(default=0, description="rows deleted")
    anonymised: int = Field(default=0, description="rows kept with the person's values removed")
    retained: int = Field(default=0,
                          description="rows kept as they were, for the reason in `basis`")
    basis: str | None = Field(
        default=None,
        description="why rows were kept (a law or contract), e.g. 'signed contract: unit and "
        "amount kept for the accounts, without the person's identifiers'")


class AuditEntry(_Out):
    """One line of the append-only audit log."""

    id: int = Field(description="entry id (ascending in time)")
    at: dt.datetime = Field(description="when (UTC)")
    actor_staff: str | None = Field(default=None,
                                    description="staff id; None for the SDK's own calls")
    actor_role: str = Field(description="their role, or `sdk`")
    action: str = Field(description="disclose, export, erase, merge, reassign, consent, "
                        "import, bulk_send, prune, or a plugin's registered action")
    customer_id: int | None = Field(default=None, description="the customer concerned, if one")
    channel: str = Field(description="cli, api or sdk")
    reason: str | None = Field(default=None, description="the reason given, if any")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="what was done, without personal data in clear (identity values as "
        "keyed hashes `h1:...`)")
