"""The roles an actor may have. What each role may see is decided in ``access.py``;
this module only names them, so the models can validate a role without importing
the rules."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["admin", "manager", "sales", "service", "partner", "analyst"]
ROLES: tuple[str, ...] = get_args(Role)
#: role names of earlier releases, and what they mean now
LEGACY_ROLES = {"consultant": "sales", "staff": "sales"}
#: how a call reached the core: the reference CLI, the HTTP API, or the integrator's code
Channel = Literal["cli", "api", "sdk"]


def parse_role(raw: object) -> str:
    """The role ``raw`` names (legacy names mapped), or ValueError listing the roles."""
    text = str(raw).strip().lower() if raw is not None else ""
    text = LEGACY_ROLES.get(text, text)
    if text not in ROLES:
        raise ValueError(f"unknown role {str(raw)[:40]!r}; roles: {', '.join(ROLES)}")
    return text
