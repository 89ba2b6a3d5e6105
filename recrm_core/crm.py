"""``CRM``: configuration, plugins, the engine and the services, in one object."""

from __future__ import annotations

import difflib
import functools
import os
import weakref
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pluggy
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine
from sqlalchemy.pool import Pool

from .config import CoreSettings, found_config_file, load_settings
from .db import UnitOfWork, make_engine, unit_of_work
from .errors import ConfigError
from .plugins import BUILTIN_PLUGINS, Hooks, PluginInfo, load_plugins, new_plugin_manager

if TYPE_CHECKING:
    from .access import AccessService
    from .apikeys import ApiKeyService
    from .audit import AuditService
    from .cases import CaseService
    from .consent import ConsentService
    from .customers import CustomerService
    from .directory import DirectoryService
    from .importing import ImportService
    from .importjobs import ImportJobService
    from .incidents import IncidentService
    from .interactions import InteractionService
    from .keys import Keys
    from .models import Actor, DeliveryResult, Message
    from .pool import PoolService
    from .privacy import PrivacyService
    from .projects import ProjectService
    from .reports.registry import ReportService
    from .segments import SegmentService
    from .tasks import TaskService
    from .webhooks.service import WebhookService


# Which CRM owns an engine's pool: functions handed only a connection find its keys
# here (``idcards.keys_of``). By pool, which the engine's ``execution_options``
# copies (the read engine) share; weak both ways, so a dropped CRM is not kept.
_OWNERS: weakref.WeakKeyDictionary[Pool, weakref.ref[CRM]] = weakref.WeakKeyDictionary()


def crm_of(engine: Engine) -> CRM | None:
    """The CRM that built ``engine`` (or the engine it was derived from), if alive."""
    owner = _OWNERS.get(engine.pool)
    return owner() if owner is not None else None


class CRM:
    """A customer-relationship system: one database, one set of plugins.

    Build it from ``recrm.toml`` (``CRM.from_config()``) or in code::

        crm = CRM(database_url="sqlite:///crm.db", plugins=["membership", MyPlugin()],
                  settings={"membership": {"auto_enrol": True}})
        crm.create_schema()
        crm.customers.add({"name": "王伟", "mobile": "138 1234 5678"})

    Each CRM has its own plugin manager, so several can coexist in one process.
    Settings already read with :func:`~recrm_core.config.load_settings` are given as
    ``config`` (the CLI reads them once per command); ``config_path`` still says which
    file they came from (the key file's default place is beside it).
    """

    def __init__(
        self,
        database_url: str | None = None,
        plugins: Sequence[str | object] | None = None,
        settings: dict[str, Any] | None = None,
        *,
        config_path: str | os.PathLike[str] | None = None,
        search_cwd: bool = False,
        create_schema: bool = False,
        console_stream: IO[str] | None = None,
        config: CoreSettings | None = None,
    ) -> None:
        overrides = dict(settings or {})
        if database_url is not None:
            overrides["database_url"] = database_url
        if config is None:
            config = load_settings(config_path, overrides, search_cwd=search_cwd)
        elif overrides:
            # One source of settings: overrides applied to settings already merged
            # would skip their validation.
            raise TypeError("CRM(): give config, or database_url and settings, not both")
        #: the settings: ``config`` when given (what ``load_settings(config_path, ...)``
        #: returned, as the CLI reads them once per command), else read here
        self.config: CoreSettings = config
        #: the configuration file read, if any (the key file's default place is beside it)
        self.config_file: Path | None = found_config_file(config_path, search_cwd)
        self.console_stream = console_stream
        self.pm: pluggy.PluginManager = new_plugin_manager()
        names: Sequence[str | object] = self.config.plugins if plugins is None else plugins
        self.plugin_infos: list[PluginInfo] = load_plugins(self.pm, names)
        self.hooks = Hooks(self.pm)
        self._plugin_settings = self._validate_plugin_settings()
        self._refuse_unknown_sections(set(overrides))
        self.engine: Engine = make_engine(self.config.database_url)
        _OWNERS[self.engine.pool] = weakref.ref(self)

        if create_schema:
            self.create_schema()
        self.hooks.startup(self)

    # -- the services, each imported on first use: a command that counts customers
    # does not pay for the importer, cases or segments ------------------------------
    @functools.cached_property
    def projects(self) -> ProjectService:
        from .projects import ProjectService

        return ProjectService(self)

    @functools.cached_property
    def customers(self) -> CustomerService:
        from .customers import CustomerService

        return CustomerService(self)

    @functools.cached_property
    def interactions(self) -> InteractionService:
        from .interactions import InteractionService

        return InteractionService(self)

    @functools.cached_property
    def consent(self) -> ConsentService:
        from .consent import ConsentService

        return ConsentService(self)

    @functools.cached_property
    def cases(self) -> CaseService:
        from .cases import CaseService

        return CaseService(self)

    @functools.cached_property
    def incidents(self) -> IncidentService:
        from .incidents import IncidentService

        return IncidentService(self)

    @functools.cached_property
    def tasks(self) -> TaskService:
        """Follow-up tasks (``recrm tasks``): add, list, done, cancel, sweep, report."""
        from .tasks import TaskService

        return TaskService(self)

    @functools.cached_property
    def pool(self) -> PoolService:
        """The public pool (公海, ``recrm pool``): sweep, list, claim, report."""
        from .pool import PoolService

        return PoolService(self)

    @functools.cached_property
    def reports(self) -> ReportService:
        """Management reports (``recrm report``): list the registered ones, run one."""
        from .reports.registry import ReportService

        return ReportService(self)

    @functools.cached_property
    def segments(self) -> SegmentService:
        from .segments import SegmentService

        return SegmentService(self)

    @functools.cached_property
    def importer(self) -> ImportService:
        from .importing import ImportService

        return ImportService(self)

    @functools.cached_property
    def access(self) -> AccessService:
        """Who sees what (``docs/access.md``): every read path asks it."""
        from .access import AccessService

        return AccessService(self)

    @functools.cached_property
    def directory(self) -> DirectoryService:
        from .directory import DirectoryService

        return DirectoryService(self)

    @functools.cached_property
    def privacy(self) -> PrivacyService:
        """Privacy requests: a person's export, their erasure, retention."""
        from .privacy import PrivacyService

        return PrivacyService(self)

    @functools.cached_property
    def apikeys(self) -> ApiKeyService:
        """Keys of the HTTP API (``recrm apikey``, docs/api.md)."""
        from .apikeys import ApiKeyService

        return ApiKeyService(self)

    @functools.cached_property
    def import_jobs(self) -> ImportJobService:
        """Import jobs of the HTTP API (``POST /v1/imports``, docs/api.md)."""
        from .importjobs import ImportJobService

        return ImportJobService(self)

    @functools.cached_property
    def webhooks(self) -> WebhookService:
        """Webhooks: subscriptions, events, delivery (``recrm webhook``, docs/api.md)."""
        from .webhooks.service import WebhookService

        return WebhookService(self)

    @functools.cached_property
    def audit(self) -> AuditService:
        from .audit import AuditService

        return AuditService(self)

    @property
    def key_file(self) -> Path | None:
        """Where the key file is (None: PostgreSQL and no configuration to put it beside)."""
        from .keys import key_file_path

        return key_file_path(self.config.key_file, self.config_file, self.config.database_url)

    @property
    def keys(self) -> Keys:
        """The keys of the key file (hashing, encryption, signing), loaded on first use:
        commands that never need one work without it; one that does exits 2 when the
        file is missing or bad."""
        cached: Keys | None = self.__dict__.get("_keys")
        if cached is None:
            from .keys import load_keys, verify_keys

            cached = load_keys(self.key_file)
            verify_keys(self, cached)
            self.__dict__["_keys"] = cached
        return cached

    @classmethod
    def from_config(
        cls, config_path: str | os.PathLike[str] | None = None, **kwargs: Any
    ) -> CRM:
        """Build from ``config_path``, else ``recrm.toml`` in the working directory."""
        return cls(config_path=config_path, search_cwd=config_path is None, **kwargs)

    # -- plugins and settings ---------------------------------------------------------
    def _validate_plugin_settings(self) -> dict[str, BaseModel]:
        validated: dict[str, BaseModel] = {}
        for section, model in self.hooks.settings_model().items():
            try:
                validated[section] = model.model_validate(self.config.plugin_section(section))
            except ValidationError as exc:
                err = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in err["loc"])
                raise ConfigError(f"[{section}] {where}: {err['msg']}") from None
        return validated

    def _refuse_unknown_sections(self, given_in_code: set[str]) -> None:
        """A ``[section]`` of the configuration file that no enabled plugin declares and
        no installed plugin is named after is a misspelling: its settings would quietly
        keep their defaults (a ``[membershp]`` table). A disabled plugin's section stays
        allowed, and so do sections given in code (``settings=``), which a plugin
        registered later may read (the test harness's ``register_plugin``)."""
        from .plugins import installed_entry_points

        if self.config_file is None:
            return
        known = set(self._plugin_settings) | given_in_code
        tables = [k for k, v in (self.config.model_extra or {}).items()
                  if isinstance(v, dict) and k not in known]
        if not tables:
            return
        known |= set(installed_entry_points())
        for section in tables:
            if section not in known:
                close = difflib.get_close_matches(section, sorted(known), n=1)
                hint = f"; did you mean [{close[0]}]?" if close else ""
                raise ConfigError(f"configuration: unknown section [{section}]: no enabled "
                                  f"or installed plugin declares it{hint}")

    def settings_for(self, section: str) -> Any:
        """The validated settings model of a plugin's ``[section]`` (its defaults when
        the configuration has no such section); ``ConfigError`` if no plugin declares it."""
        if section not in self._plugin_settings:
            # A plugin registered after the CRM was built (the ``register_plugin``
            # fixture): its settings hook has not run yet.
            self._plugin_settings = self._validate_plugin_settings()
        try:
            return self._plugin_settings[section]
        except KeyError:
            raise ConfigError(f"no settings registered for [{section}]") from None

    @property
    def plugin_names(self) -> list[str]:
        """The plugins this CRM runs, by name (not the core's own builtin modules)."""
        return [name for name, _ in self.pm.list_name_plugin() if name not in BUILTIN_PLUGINS]

    def has_plugin(self, name: str) -> bool:
        return self.pm.has_plugin(name)

    # -- database -----------------------------------------------------------------------
    def create_schema(self) -> None:
        """Bring the database to the code's schema through the migrations (idempotent).

        An empty database, or one behind the code (a plugin newly enabled, a newer
        recrm), is upgraded, one made by ``create_all`` before migrations first
        recognised and stamped; the tables of a plugin without a migration branch are
        created directly. A database ahead of the code raises ``SchemaMismatch``.
        When nothing is to do this is one read of the revision table, without a
        write lock (on SQLite a ``customers count`` must not queue behind an import)."""
        from .errors import SchemaMismatch
        from .schema import create_unmigrated_tables, schema_state

        state = schema_state(self)
        if state.kind == "ahead":
            raise SchemaMismatch(state.message)
        if state.kind != "current":
            from .migrating import upgrade

            upgrade(self)
        create_unmigrated_tables(self)

    def unit_of_work(
        self, actor: Actor | None = None, *, readonly: bool = False
    ) -> AbstractContextManager[UnitOfWork]:
        """A transaction for one operation; hooks fired inside it receive it.
        ``readonly=True`` for reads: on SQLite it takes no write lock."""
        return unit_of_work(self, actor, readonly=readonly)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> CRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- messages -------------------------------------------------------------------------
    def send_message(self, message: Message) -> DeliveryResult:
        """Deliver one message through the first transport that takes its channel."""
        result = self.hooks.deliver_message(self, message)
        if result is None:  # only when the console transport was unregistered
            raise ConfigError(f"no transport delivers {message.channel!r} messages")
        return result
