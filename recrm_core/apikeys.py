"""``crm.apikeys``: keys of the HTTP API, each standing for one member of staff.

A key is ``rk_`` + eight characters (the prefix, stored and listed) + ``_`` + a
random secret of 256 bits, of which only a SHA-256 hash is stored: the secret is
random, so a fast hash is enough, and a stolen database opens no door. A key works
while it is not revoked and its staff member has not left the directory.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .access import require_role
from .actions import ApiKey, ApiKeyCreated
from .db import utcnow
from .directory import NoSuchStaff
from .errors import InvalidInput, NotFound, Refused
from .models import Actor
from .roles import parse_role
from .tables import ApiKeyRow, StaffRow
from .values import optional_text, required_code

if TYPE_CHECKING:
    from .crm import CRM

_PREFIX_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_PREFIX_LENGTH = 11  # "rk_" and eight characters
#: who may create, list and revoke keys
KEY_KEEPERS = ("admin",)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _model(row: ApiKeyRow) -> ApiKey:
    return ApiKey(id=row.id, prefix=row.prefix, staff_id=row.staff_id, role=row.role,
                  name=row.name, created_at=row.created_at, revoked_at=row.revoked_at)


class ApiKeyService:
    """Create, list, revoke and check API keys."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def create(self, staff_id: str, role: str | None = None, name: str | None = None,
               actor: Actor | None = None) -> ApiKeyCreated:
        """A new key for ``staff_id`` (in the directory and not gone) acting in ``role``,
        by default the staff member's own. The returned ``key`` is never shown again."""
        require_role(actor, KEY_KEEPERS, "create API keys")
        try:
            sid = required_code(staff_id, "staff id", 64)
            label = optional_text(name, 100)
        except ValueError as exc:
            raise InvalidInput("staff", str(exc)) from None
        try:
            wanted = parse_role(role) if role is not None else None
        except ValueError as exc:
            raise InvalidInput("role", str(exc)) from None
        for _ in range(5):
            prefix = "rk_" + "".join(secrets.choice(_PREFIX_CHARS) for _ in range(8))
            secret = secrets.token_urlsafe(32)
            with self.crm.unit_of_work(actor) as uow:
                staff = uow.session.get(StaffRow, sid, with_for_update=True)
                if staff is None:
                    raise NoSuchStaff(sid)
                if staff.left_at is not None:
                    raise Refused(f"staff {sid!r} has left; they get no API key")
                row = ApiKeyRow(prefix=prefix, secret_hash=_hash(secret), staff_id=sid,
                                role=wanted or staff.role, name=label, created_at=utcnow())
                uow.session.add(row)
                try:
                    uow.session.flush()
                except IntegrityError:  # the prefix exists (1 in 10^12): draw again
                    uow.session.rollback()
                    continue
                self.crm.audit.record(uow, "apikey", details={
                    "event": "create", "key": prefix, "staff": sid, "role": row.role})
                return ApiKeyCreated(**_model(row).model_dump(), key=f"{prefix}_{secret}")
        raise Refused("could not draw an unused key prefix; try again")

    def list(self, actor: Actor | None = None, *, include_revoked: bool = True
             ) -> list[ApiKey]:
        require_role(actor, KEY_KEEPERS, "list API keys")
        with self.crm.unit_of_work(actor, readonly=True) as uow:
            query = select(ApiKeyRow).order_by(ApiKeyRow.id)
            if not include_revoked:
                query = query.where(ApiKeyRow.revoked_at.is_(None))
            return [_model(row) for row in uow.session.scalars(query)]

    def revoke(self, key: str, actor: Actor | None = None) -> ApiKey:
        """Revoke a key given by its id, its prefix or the whole key; revoking twice
        is refused."""
        require_role(actor, KEY_KEEPERS, "revoke API keys")
        text = key.strip()
        with self.crm.unit_of_work(actor) as uow:
            if text.isdigit():
                query = select(ApiKeyRow).where(ApiKeyRow.id == int(text))
            else:
                query = select(ApiKeyRow).where(ApiKeyRow.prefix == text[:_PREFIX_LENGTH])
            row = uow.session.scalars(query.with_for_update()).first()
            if row is None:
                raise NotFound(f"no such API key {text[:_PREFIX_LENGTH]!r}")
            if row.revoked_at is not None:
                raise Refused(f"API key {row.prefix} was revoked already")
            row.revoked_at = utcnow()
            uow.session.flush()
            self.crm.audit.record(uow, "apikey", details={
                "event": "revoke", "key": row.prefix, "staff": row.staff_id})
            return _model(row)

    def authenticate(self, token: str) -> tuple[int, Actor] | None:
        """``(key id, actor)`` for a valid key, None for anything else: unknown,
        malformed, revoked, or its staff member left (the caller answers 401 alike)."""
        if len(token) < _PREFIX_LENGTH + 2 or token[_PREFIX_LENGTH] != "_" \
                or not token.startswith("rk_"):
            return None
        prefix, secret = token[:_PREFIX_LENGTH], token[_PREFIX_LENGTH + 1:]
        with self.crm.engine.connect() as conn:
            found: Any = conn.execute(
                select(ApiKeyRow.id, ApiKeyRow.secret_hash, ApiKeyRow.staff_id,
                       ApiKeyRow.role)
                .join(StaffRow, StaffRow.id == ApiKeyRow.staff_id)
                .where(ApiKeyRow.prefix == prefix, ApiKeyRow.revoked_at.is_(None),
                       StaffRow.left_at.is_(None))
            ).first()
        if found is None or not hmac.compare_digest(found.secret_hash, _hash(secret)):
            return None
        return found.id, Actor(staff_id=found.staff_id, role=found.role, channel="api")
