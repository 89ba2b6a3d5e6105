"""``[sales]`` in ``recrm.toml``: how long a hold lasts, how long a subscription has to
be signed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from recrm_core import CRM

#: the plugin's name: its settings section, table prefix and audit-action prefix
NAME = "sales"


class SalesSettings(BaseModel):
    """The ``[sales]`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hold_minutes: int = Field(
        default=30, ge=1, le=7 * 24 * 60,
        description="a hold (for one customer by one consultant) lapses after this many "
        "minutes unless it becomes a subscription")
    sign_within_days: int = Field(
        default=7, ge=1, le=365,
        description="a subscription (认购) should be signed (签约) within this many days; "
        "past it the deal shows as overdue (nothing is cancelled by itself)")


def settings(crm: CRM) -> SalesSettings:
    """The CRM's ``[sales]`` settings."""
    found: SalesSettings = crm.settings_for(NAME)
    return found
