"""Configuration: ``recrm.toml``, ``RECRM_DATABASE_URL`` and keyword arguments."""

from __future__ import annotations

import datetime as dt
import difflib
import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

CONFIG_FILE = "recrm.toml"
DATABASE_ENV = "RECRM_DATABASE_URL"
DEFAULT_DATABASE_URL = "sqlite:///recrm.db"


#: the longest SLA or level window: a year of hours (a larger one is a typing mistake,
#: and would overflow the date arithmetic)
_MAX_HOURS = 24 * 366
#: the priorities a category may override
_PRIORITY_KEYS = {"low", "normal", "high", "urgent"}


class SlaLevel(BaseModel):
    """One escalation level (``[[sla.levels]]``): a case at it belongs to ``department``
    and moves up when overdue and at the level longer than ``window_hours``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="e.g. project service desk")
    department: str = Field(
        min_length=1, max_length=64,
        description="a department code, or `project` for the case's project's "
        "service_department (project registry)")
    window_hours: float = Field(gt=0, le=_MAX_HOURS,
                                description="hours (of the case's SLA clock) at this "
                                "level before an overdue case moves up")


def _default_levels() -> list[SlaLevel]:
    return [
        SlaLevel(name="project service desk", department="project", window_hours=24),
        SlaLevel(name="city customer-relations centre", department="CRC", window_hours=48),
        SlaLevel(name="head office", department="HQ", window_hours=72),
    ]


class SlaPolicy(BaseModel):
    """Hours to resolve a case, by priority, with per-category overrides; the clock they
    count on; the escalation levels.

    ``[sla]`` in recrm.toml: ``urgent = 4`` etc. for the defaults, ``clock = "working"``
    and ``working_hours = ["09:00", "18:00"]``; ``[sla.categories.complaint] urgent = 2``
    and ``clock = "calendar"`` for a category; ``[[sla.levels]]`` tables with ``name``,
    ``department`` and ``window_hours``.
    """

    model_config = ConfigDict(extra="forbid")

    low: float = Field(default=168, gt=0, le=_MAX_HOURS,
                       description="hours for a low-priority case")
    normal: float = Field(default=72, gt=0, le=_MAX_HOURS,
                          description="hours for a normal-priority case")
    high: float = Field(default=24, gt=0, le=_MAX_HOURS,
                        description="hours for a high-priority case")
    urgent: float = Field(default=4, gt=0, le=_MAX_HOURS,
                          description="hours for an urgent case")
    clock: Literal["calendar", "working"] = Field(
        default="calendar",
        description="calendar hours, or working hours on China's working days (public "
        "holidays off, make-up days on, from chinese-calendar)")
    working_hours: tuple[str, str] = Field(
        default=("09:00", "18:00"),
        description="the working day in the business time zone, for the working clock")
    categories: dict[str, dict[str, float | str]] = Field(
        default_factory=dict,
        description="per category, hours overriding the priorities', and `clock`")
    levels: list[SlaLevel] = Field(
        default_factory=_default_levels, min_length=1,
        description="escalation levels, lowest first (default: project service desk, "
        "city customer-relations centre CRC, head office HQ)")

    @field_validator("categories")
    @classmethod
    def _priorities(cls, v: dict[str, dict[str, float | str]]) -> dict[str, dict[str, float | str]]:
        for category, table in v.items():
            unknown = set(table) - _PRIORITY_KEYS - {"clock"}
            if unknown:
                raise ValueError(f"sla.categories.{category}: unknown key {sorted(unknown)}")
            if table.get("clock", "calendar") not in ("calendar", "working"):
                raise ValueError(f"sla.categories.{category}: clock is calendar or working")
            hours = [h for k, h in table.items() if k in _PRIORITY_KEYS]
            if any(isinstance(h, str) or not 0 < h <= _MAX_HOURS for h in hours):
                raise ValueError(f"sla.categories.{category}: hours must be positive numbers "
                                 f"up to {_MAX_HOURS}")
        return v

    @field_validator("working_hours")
    @classmethod
    def _working_day(cls, v: tuple[str, str]) -> tuple[str, str]:
        from .workingtime import parse_hhmm

        start, end = parse_hhmm(v[0]), parse_hhmm(v[1])
        if start >= end:
            raise ValueError("working_hours: the day ends after it starts")
        return v

    def hours(self, category: str, priority: str) -> float:
        override = self.categories.get(category, {})
        if priority in override:
            return float(override[priority])
        return float(getattr(self, priority))

    def clock_of(self, category: str) -> Literal["calendar", "working"]:
        clock = self.categories.get(category, {}).get("clock", self.clock)
        return "working" if clock == "working" else "calendar"

    def after(self, start: dt.datetime, hours: float, category: str,
              zone: ZoneInfo) -> dt.datetime:
        """``start`` plus ``hours`` on the category's clock."""
        from .workingtime import add_hours, parse_hhmm

        return add_hours(start, hours, clock=self.clock_of(category), zone=zone,
                         day_start=parse_hhmm(self.working_hours[0]),
                         day_end=parse_hhmm(self.working_hours[1]))

    def due(self, start: dt.datetime, category: str, priority: str,
            zone: ZoneInfo) -> dt.datetime:
        """The resolution due time of a case whose clock started at ``start``."""
        return self.after(start, self.hours(category, priority), category, zone)


class RoutingRule(BaseModel):
    """``[[routing]]``: a case of ``category`` (at ``project``, when given) opened without
    an assignee goes to ``department``, and to one of its active staff in turn
    (``assign = "round_robin"``) or to the department's desk (``assign = "desk"``)."""

    model_config = ConfigDict(extra="forbid")

    category: str = Field(min_length=1, max_length=32, description="the case category")
    project: str | None = Field(default=None, max_length=64,
                                description="only cases of this project (a project code)")
    department: str = Field(min_length=1, max_length=64, description="the department code")
    assign: Literal["round_robin", "desk"] = Field(
        default="round_robin", description="round_robin: its active staff in turn; desk: "
        "no assignee, the department's desk picks it up")


class PrivacySettings(BaseModel):
    """``[privacy]`` in recrm.toml: retention of prospects' data."""

    model_config = ConfigDict(extra="forbid")

    retention_months: int | None = Field(
        default=None, ge=1, le=1200,
        description="erase prospects with no interaction for this many months "
        "(`recrm privacy sweep`); off when not set")


class ApiSettings(BaseModel):
    """``[api]`` in recrm.toml: limits of the HTTP API (``recrm serve``, docs/api.md)."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=1_073_741_824,
        description="the largest request body accepted (413 beyond it)")
    rate_limit_per_minute: int = Field(
        default=600, ge=1, le=1_000_000,
        description="requests a key may make per minute, counted per server process "
        "(429 with Retry-After beyond it)")
    max_upload_bytes: int = Field(
        default=104_857_600, ge=1024, le=17_179_869_184,
        description="the largest file `POST /v1/imports` accepts (413 beyond it); other "
        "requests keep max_body_bytes")
    job_retention_days: int = Field(
        default=7, ge=1, le=3650,
        description="days an import job's errors CSV is kept after the job ended")
    job_directory: str | None = Field(
        default=None,
        description="where import jobs keep uploads and errors CSVs; default: recrm-jobs "
        "beside recrm.toml, else beside the SQLite database, else beside the key file")
    public_rate_limit_per_minute: int = Field(
        default=60, ge=1, le=1_000_000,
        description="requests one client address may make per minute to the public pages "
        "(/s/..., /u/...), counted per server process (429 with Retry-After beyond it)")


class WebhookSettings(BaseModel):
    """``[webhooks]`` in recrm.toml: delivery of webhook events (``recrm webhook``,
    docs/api.md#webhooks)."""

    model_config = ConfigDict(extra="forbid")

    retention_days: int = Field(
        default=7, ge=1, le=3650,
        description="days an event's payload is kept after its last delivery finished "
        "(delivered or given up)")
    max_attempts: int = Field(
        default=10, ge=1, le=100,
        description="attempts per delivery before it is marked failed")
    retry_base_seconds: float = Field(
        default=30, ge=0, le=86_400,
        description="wait before the second attempt; doubled after each failure")
    retry_max_seconds: float = Field(
        default=3600, ge=0, le=7 * 86_400,
        description="the longest wait between two attempts")
    timeout_seconds: float = Field(
        default=10, gt=0, le=300,
        description="how long one request may take (connect and answer)")


class FollowupSettings(BaseModel):
    """``[followup]`` in recrm.toml: the rules that create follow-up tasks
    (``recrm tasks sweep``; the visit rule also fires when the visit is logged)."""

    model_config = ConfigDict(extra="forbid")

    after_visit_hours: float = Field(
        default=24, gt=0, le=24 * 365,
        description="after a customer's first visit to a project, a call is due within "
        "this many hours (owned by the project's owning consultant, else whoever "
        "received the visit)")
    prospect_days: int = Field(
        default=7, ge=1, le=3650,
        description="a prospect with no interaction at a project for this many days gets "
        "a call task for its owning consultant")


class PoolSettings(BaseModel):
    """``[pool]`` in recrm.toml: the public pool (公海, ``recrm pool``)."""

    model_config = ConfigDict(extra="forbid")

    idle_days: int = Field(
        default=15, ge=1, le=3650,
        description="a customer's link to a project whose owner logged no interaction "
        "there for this many days is released to the project's pool (`recrm pool sweep`); "
        "a subscription or contract stops the clock for good")
    reclaim_days: int = Field(
        default=7, ge=0, le=3650,
        description="days after a release during which the owner it was taken from may "
        "not claim it back")
    max_owned: int = Field(
        default=500, ge=1, le=10_000_000,
        description="the most customers a consultant may own at one project; a claim "
        "beyond it is refused")


class ReportSettings(BaseModel):
    """``[reports]`` in recrm.toml: how reports are drawn (``recrm report``,
    docs/reports.md)."""

    model_config = ConfigDict(extra="forbid")

    font: str | None = Field(
        default=None, max_length=4096,
        description="the font PNG charts are drawn with: a font file or an installed "
        "family with Chinese characters; default: the first CJK font found (Debian: "
        "fonts-wqy-microhei)")


class KpiSettings(BaseModel):
    """``[kpi]`` in recrm.toml: the contact targets of the staff report and the
    balanced scorecard's targets (``recrm report staff``, ``recrm report scorecard``).

    A rate is a fraction (``0.9`` is 90%). The contact targets are per year and per
    quarter and are prorated to the period a report covers (by days: a month's share
    of a year's 10 customers is 10 × 31 / 365)."""

    model_config = ConfigDict(extra="forbid")

    manager_customers_per_year: int = Field(
        default=10, ge=0, le=100_000,
        description="distinct customers each manager (role manager in the staff "
        "directory) is in touch with in a year")
    staff_contact_hours_per_quarter: float = Field(
        default=8, ge=0, le=24 * 92,
        description="hours each other member of staff spends in contact with customers "
        "in a quarter (interactions' minutes)")
    nps: float = Field(default=30, ge=-100, le=100,
                       description="scorecard: the lowest acceptable NPS (-100 to 100)")
    csat: float = Field(default=0.85, ge=0, le=1,
                        description="scorecard: the lowest acceptable CSAT (share of "
                        "satisfied answers)")
    l3: float = Field(default=0.3, ge=0, le=1,
                      description="scorecard: the lowest acceptable L3 loyalty index "
                      "(share of loyal customers)")
    complaints_per_100_owners: float = Field(
        default=5, ge=0, le=100_000,
        description="scorecard: the most complaints opened in the period per 100 owners")
    on_time_rate: float = Field(default=0.9, ge=0, le=1,
                                description="scorecard: the lowest acceptable share of "
                                "cases resolved within their SLA")
    response_hours: float = Field(default=4, gt=0, le=24 * 366,
                                  description="scorecard: the longest acceptable median "
                                  "hours from a case's opening to its assignee's first "
                                  "action")
    sales_conversion: float = Field(default=0.1, ge=0, le=1,
                                    description="scorecard: the lowest acceptable share of "
                                    "visitors who sign a contract")


class CoreSettings(BaseModel):
    """The core's own settings (top level of ``recrm.toml``)."""

    model_config = ConfigDict(extra="allow")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL, description="SQLAlchemy URL of the database"
    )
    plugins: list[str] = Field(
        default_factory=list, description="installed plugins to enable, by name"
    )
    timezone: str = Field(
        default="Asia/Shanghai", description="business time zone (IANA name); see `zone`"
    )
    default_region: str = Field(
        default="CN", description="region of mobiles written without +country code"
    )
    import_batch_size: int = Field(
        default=2000, ge=1, le=100_000, description="rows per import transaction"
    )
    auto_create_projects: bool = Field(
        default=True,
        description="whether naming an unknown project (an import row, customers add, a "
        "stage change, an interaction, a case) creates it; when false only `projects add` does",
    )
    sla: SlaPolicy = Field(
        default_factory=SlaPolicy, description="hours to resolve a case, and escalation levels"
    )
    routing: list[RoutingRule] = Field(
        default_factory=list,
        description="rules routing a new case without an assignee (first match: category "
        "and project, then category alone)")
    require_known_staff: bool = Field(
        default=False,
        description="whether a staff id the directory lacks is refused wherever one is given "
        "(owners, assignees, actors); when false unknown ids work and `staff list --unknown` "
        "shows them",
    )
    key_file: str | None = Field(
        default=None,
        description="the key file (hashing, encryption and signing keys); default: "
        "recrm.key beside recrm.toml, else beside the SQLite database; RECRM_KEY_FILE overrides",
    )
    privacy: PrivacySettings = Field(
        default_factory=PrivacySettings, description="retention of prospects' data")
    api: ApiSettings = Field(
        default_factory=ApiSettings, description="limits of the HTTP API")
    webhooks: WebhookSettings = Field(
        default_factory=WebhookSettings, description="delivery of webhook events")
    followup: FollowupSettings = Field(
        default_factory=FollowupSettings, description="the rules that create follow-up tasks")
    pool: PoolSettings = Field(
        default_factory=PoolSettings, description="the public pool (公海)")
    reports: ReportSettings = Field(
        default_factory=ReportSettings, description="how reports are drawn")
    kpi: KpiSettings = Field(
        default_factory=KpiSettings,
        description="contact targets (staff report) and the scorecard's targets")
    public_base_url: str = Field(
        default="http://127.0.0.1:8000",
        description="where people reach the server's public pages (survey and unsubscribe "
        "links are built on it): an http or https URL without a trailing slash",
    )
    audit_retention_years: int = Field(
        default=3, ge=3, le=100,
        description="years the audit log is kept at least (PIPL: three or more); "
        "`audit prune` refuses anything younger",
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018 - a port that is no number raises here
        except ValueError:
            raise ValueError(f"{v!r} is not a URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{v!r} is not an http:// or https:// URL")
        if v.endswith("/"):
            raise ValueError(f"{v!r} ends with '/'; give it without the trailing slash")
        if parts.query or parts.fragment or not v.isprintable() or " " in v:
            raise ValueError(f"{v!r}: a base URL has no query, fragment, space or "
                             "control character")
        return v

    @property
    def zone(self) -> ZoneInfo:
        """The business time zone as a ``ZoneInfo``. Times in models are UTC; show them
        with ``at.astimezone(crm.config.zone)`` (``recrm_core.cli.local_time`` does), and
        decide "which day" or "which month" in this zone."""
        return ZoneInfo(self.timezone)

    def plugin_section(self, name: str) -> dict[str, Any]:
        extra = self.model_extra or {}
        section = extra.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"[{name}] in the configuration must be a table")
        return section


def read_config_file(path: Path) -> dict[str, Any]:
    from .tomlfile import read_toml

    if not path.exists():
        raise ConfigError(f"configuration file {str(path)!r} not found")
    try:
        return read_toml(path, ConfigError)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def found_config_file(config_path: str | os.PathLike[str] | None,
                      search_cwd: bool) -> Path | None:
    """The configuration file :func:`load_settings` reads, as an absolute path."""
    if config_path is not None:
        return Path(config_path).absolute()
    if search_cwd and Path(CONFIG_FILE).is_file():
        return Path(CONFIG_FILE).absolute()
    return None


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    search_cwd: bool = True,
) -> CoreSettings:
    """Merge, lowest first: defaults, the config file, ``RECRM_DATABASE_URL``, overrides."""
    data: dict[str, Any] = {}
    if config_path is not None:
        data.update(read_config_file(Path(config_path)))
    elif search_cwd and Path(CONFIG_FILE).is_file():
        data.update(read_config_file(Path(CONFIG_FILE)))
    if os.environ.get(DATABASE_ENV):
        data["database_url"] = os.environ[DATABASE_ENV]
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        settings = CoreSettings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"configuration: {where}: {err['msg']}") from None
    for key, value in (settings.model_extra or {}).items():
        # A table is a plugin's section, which its plugin validates; anything else is a
        # mistyped core setting, which must not quietly keep its default (a misspelt
        # auto_create_projects = false would go on creating projects).
        if not isinstance(value, dict):
            close = difflib.get_close_matches(key, list(CoreSettings.model_fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"configuration: unknown setting {key!r}{hint}")
    return settings
