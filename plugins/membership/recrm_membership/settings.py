"""``[membership]`` in ``recrm.toml``: enrolment, member numbers, tiers, points."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recrm_core import CRM

#: the plugin's name: its settings section, table prefix and segment-field prefix
NAME = "membership"
#: the most points one ledger entry may move: the ledger column is a 32-bit integer
#: on PostgreSQL, and no real award or redemption comes near it
MAX_POINTS = 100_000_000


class Tier(BaseModel):
    """One tier. A member reaches it with ``min_points`` lifetime points *or*
    ``min_contracts`` contracts signed (either threshold is enough)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=32)
    min_points: int | None = Field(default=None, ge=0)
    min_contracts: int | None = Field(default=None, ge=0)

    def reached(self, lifetime_points: int, contracts: int) -> bool:
        return (self.min_points is not None and lifetime_points >= self.min_points) or (
            self.min_contracts is not None and contracts >= self.min_contracts
        )


def _default_tiers() -> list[Tier]:
    return [
        Tier(name="普通"),
        Tier(name="银卡", min_points=5000, min_contracts=2),
        Tier(name="金卡", min_points=20000, min_contracts=3),
    ]


class MembershipSettings(BaseModel):
    """The ``[membership]`` section.

    ``tiers`` are listed from the entry tier up: a member holds the highest listed
    tier whose threshold they reach; the first tier is where everyone starts and has
    no threshold.
    """

    model_config = ConfigDict(extra="forbid")

    auto_enrol: bool = Field(
        default=True, description="enrol a customer when they become an owner of any project"
    )
    number_prefix: str = Field(default="WK", max_length=8, pattern=r"^[A-Za-z0-9-]*$")
    number_digits: int = Field(default=8, ge=4, le=16)
    tiers: list[Tier] = Field(default_factory=_default_tiers, min_length=1)
    #: points earned per interaction kind (an interaction of another kind earns nothing)
    earn: dict[str, int] = Field(
        default_factory=lambda: {"contract": 1000, "event": 50}
    )
    referral_reward: int = Field(default=500, ge=0, le=MAX_POINTS)
    #: earned points expire this many months after they were earned; 0: never
    expiry_months: int = Field(default=24, ge=0, le=240)

    @field_validator("earn")
    @classmethod
    def _earn(cls, v: dict[str, int]) -> dict[str, int]:
        cleaned: dict[str, int] = {}
        for kind, points in v.items():
            key = kind.strip().lower()
            if not key or len(key) > 32:
                raise ValueError(f"interaction kind {kind!r} must have 1 to 32 characters")
            if points < 0:
                raise ValueError(f"points for {kind!r} cannot be negative")
            if points > MAX_POINTS:
                raise ValueError(f"points for {kind!r} cannot exceed {MAX_POINTS}")
            cleaned[key] = points
        return cleaned

    @model_validator(mode="after")
    def _tiers(self) -> MembershipSettings:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique: {names}")
        first, *higher = self.tiers
        if first.min_points is not None or first.min_contracts is not None:
            raise ValueError(f"the first tier ({first.name}) is the entry tier: no threshold")
        for tier in higher:
            if tier.min_points is None and tier.min_contracts is None:
                raise ValueError(f"tier {tier.name} needs min_points or min_contracts")
        return self

    def tier_for(self, lifetime_points: int, contracts: int) -> str:
        chosen = self.tiers[0].name
        for tier in self.tiers[1:]:
            if tier.reached(lifetime_points, contracts):
                chosen = tier.name
        return chosen

    def member_number(self, serial: int) -> str:
        return f"{self.number_prefix}{serial:0{self.number_digits}d}"


def settings(crm: CRM) -> MembershipSettings:
    """The CRM's ``[membership]`` settings."""
    found: MembershipSettings = crm.settings_for(NAME)
    return found
