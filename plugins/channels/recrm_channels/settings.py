"""``[channels]`` in ``recrm.toml``: the defaults of each project's first rule set."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recrm_core import CRM

#: the plugin's name: its settings section, table prefix and segment-field prefix
NAME = "channels"


class Rules(BaseModel):
    """One project's registration rules (报备规则). A rule set file holds these keys;
    a key it leaves out takes the ``[channels]`` default. Strict: a TOML file says
    ``true`` or ``72``, so ``"yes"`` or ``true`` for a number of hours is a mistake."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    registration_valid_hours: int = Field(
        default=72, ge=1, le=24 * 365,
        description="a registration is confirmed by a visit within this many hours")
    visit_protection_days: int = Field(
        default=30, ge=1, le=3650,
        description="after the confirming visit, a subscription or contract within this "
        "many days converts the registration")
    known_customer_days: int = Field(
        default=90, ge=0, le=3650,
        description="a visit, a stage or another agency's registration at the project "
        "within this many days makes the customer known: not registrable")
    visit_is_king: bool = Field(
        default=False,
        description="no registration protection: the first visit accompanied by an agent "
        "decides")
    max_active_per_agent: int = Field(
        default=200, ge=1, le=100_000,
        description="pending and confirmed registrations one agent may hold")
    reregister_cooldown_days: int = Field(
        default=30, ge=0, le=3650,
        description="after its registration ended, an agency may register the same "
        "customer at the project again only after this many days")


class ChannelsSettings(Rules):
    """The ``[channels]`` section: the rule defaults, and who is rewarded for a customer
    who is both an owner's referral and an agency's registration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    referral_vs_agency: Literal["agency", "referral", "both"] = Field(
        default="agency",
        description="a customer both referred by an owner (老带新) and registered by an "
        "agency: `agency` withholds the referral reward, `referral` skips the agency's "
        "deal commission, `both` pays both")


def settings(crm: CRM) -> ChannelsSettings:
    """The CRM's ``[channels]`` settings."""
    found: ChannelsSettings = crm.settings_for(NAME)
    return found


def default_rules(crm: CRM) -> Rules:
    return Rules.model_validate(settings(crm).model_dump(include=set(Rules.model_fields)))
