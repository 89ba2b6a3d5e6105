"""Plugin discovery, loading and the typed facade over ``pm.hook``.

One :class:`pluggy.PluginManager` per CRM: no module-global state, so two CRMs
with different plugins live side by side (and tests can build as many as they like).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

from . import hooks as _hooks
from .errors import ConfigError, PluginError
from .hooks import specs

if TYPE_CHECKING:
    import click
    from pydantic import BaseModel

    from .crm import CRM
    from .db import UnitOfWork
    from .models import (
        Case,
        Customer,
        DeliveryResult,
        Interaction,
        Message,
        StageChange,
        TimelineEntry,
    )

ENTRY_POINT_GROUP = "recrm"
DISABLE_ENV = "RECRM_DISABLE_PLUGINS"
#: plugins the core registers itself, written like any other plugin
BUILTIN_PLUGINS = ("recrm_core.transports",)


@dataclass
class PluginInfo:
    """What ``recrm plugins list`` shows for one plugin."""

    name: str
    version: str | None
    enabled: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


def disabled_by_env() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {n.strip() for n in raw.split(",") if n.strip()}


def installed_entry_points() -> dict[str, md.EntryPoint]:
    found: dict[str, md.EntryPoint] = {}
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def _version(ep: md.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return dist.version if dist is not None else None


def plugin_name(plugin: object) -> str:
    """The name a plugin object is registered under."""
    name = getattr(plugin, "name", None)
    if isinstance(name, str) and name:
        return name
    if isinstance(plugin, types.ModuleType):
        return plugin.__name__
    return type(plugin).__name__ if not isinstance(plugin, type) else plugin.__name__


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    callers = pm.get_hookcallers(plugin) or []
    return sorted(c.name for c in callers)


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(_hooks.PROJECT_NAME)
    pm.add_hookspecs(specs)
    return pm


def load_plugins(
    pm: pluggy.PluginManager, enabled: Sequence[str | object]
) -> list[PluginInfo]:
    """Register builtin plugins and every enabled one; raise on a broken enabled plugin."""
    import importlib

    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    entry_points = installed_entry_points()
    skip = disabled_by_env()
    infos: list[PluginInfo] = []
    for item in enabled:
        if not isinstance(item, str):
            name = plugin_name(item)
            if name in skip:
                continue
            _register(pm, item, name, hook="load")
            infos.append(PluginInfo(name, None, True, _hooks_of(pm, item)))
            continue
        if item in skip:
            continue
        ep = entry_points.get(item)
        if ep is None:
            known = ", ".join(sorted(entry_points)) or "none installed"
            raise ConfigError(f"plugin {item!r} is not installed (installed: {known})")
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(item, "load", exc) from exc
        _register(pm, plugin, item, hook="load")
        infos.append(PluginInfo(item, _version(ep), True, _hooks_of(pm, plugin)))
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        # A misspelt hook name would otherwise never be called, silently.
        culprit = plugin_name(exc.plugin) if exc.plugin is not None else "unknown"
        for name, plugin in pm.list_name_plugin():
            if plugin is exc.plugin:
                culprit = name
        raise PluginError(culprit, "load", exc) from exc
    return infos


def _register(pm: pluggy.PluginManager, plugin: object, name: str, hook: str) -> None:
    try:
        pm.register(plugin, name=name)
    except ValueError as exc:  # already registered, or the name is taken
        raise ConfigError(f"plugin {name!r}: {exc}") from None
    except pluggy.PluginValidationError as exc:
        raise PluginError(name, hook, exc) from exc


def describe_installed(enabled: Iterable[str]) -> list[PluginInfo]:
    """Every installed plugin, enabled or not, with its hooks or its load error.

    Loads each entry point into a scratch plugin manager, so a broken plugin is
    reported here instead of crashing the caller.
    """
    wanted = set(enabled) - disabled_by_env()
    infos: list[PluginInfo] = []
    for name, ep in sorted(installed_entry_points().items()):
        info = PluginInfo(name=name, version=_version(ep), enabled=name in wanted)
        try:
            plugin = ep.load()
            pm = new_plugin_manager()
            pm.register(plugin, name=name)
            info.hooks = _hooks_of(pm, plugin)
        except Exception as exc:  # a broken plugin must not take the CLI down
            info.error = f"{type(exc).__name__}: {exc}"
        infos.append(info)
    return infos


class Hooks:
    """Typed call sites for every hook (tox's ``Plugin`` facade).

    Always calls with keywords, and turns an exception (or ``SystemExit``) raised in
    an implementation into :class:`PluginError` naming the plugin.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm

    def implemented(self, hook_name: str) -> bool:
        caller = getattr(self.pm.hook, hook_name)
        return bool(caller.get_hookimpls())

    def _call(self, hook_name: str, **kwargs: Any) -> Any:
        caller = getattr(self.pm.hook, hook_name)
        try:
            return caller(**kwargs)
        except PluginError:
            raise
        except (Exception, SystemExit) as exc:
            # A plugin's sys.exit() is a failure of that plugin too: left alone it would
            # end the CLI with the plugin's code and no word of who stopped it.
            # KeyboardInterrupt stays what it is: the person at the terminal asked.
            raise PluginError(self._culprit(hook_name, exc), hook_name, exc) from exc

    def _culprit(self, hook_name: str, exc: BaseException) -> str:
        caller = getattr(self.pm.hook, hook_name)
        by_code = {impl.function.__code__: impl.plugin_name for impl in caller.get_hookimpls()}
        tb = exc.__traceback__
        culprit = "unknown"
        while tb is not None:
            name = by_code.get(tb.tb_frame.f_code)
            if name is not None:
                culprit = name  # keep the innermost implementation frame
            tb = tb.tb_next
        return culprit

    # configuration --------------------------------------------------------------
    def register_settings(self, register: Any) -> None:
        self._call("recrm_register_settings", register=register)

    def startup(self, crm: CRM) -> None:
        self._call("recrm_startup", crm=crm)

    def register_commands(self, cli: click.Group) -> None:
        self._call("recrm_register_commands", cli=cli)

    # data -------------------------------------------------------------------------
    def customer_created(self, uow: UnitOfWork, customer: Customer) -> None:
        self._call("recrm_customer_created", uow=uow, customer=customer)

    def customer_updated(
        self, uow: UnitOfWork, customer: Customer, changes: dict[str, Any]
    ) -> None:
        self._call("recrm_customer_updated", uow=uow, customer=customer, changes=changes)

    def customer_merged(self, uow: UnitOfWork, survivor: Customer, duplicate_id: int) -> None:
        self._call("recrm_customer_merged", uow=uow, survivor=survivor, duplicate_id=duplicate_id)

    def stage_changed(self, uow: UnitOfWork, customer: Customer, change: StageChange) -> None:
        self._call("recrm_stage_changed", uow=uow, customer=customer, change=change)

    def customers_imported(
        self, uow: UnitOfWork, created: list[Customer], merged: list[Customer]
    ) -> None:
        self._call("recrm_customers_imported", uow=uow, created=created, merged=merged)

    def interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
        self._call("recrm_interaction_logged", uow=uow, interaction=interaction)

    def case_opened(self, uow: UnitOfWork, case: Case) -> None:
        self._call("recrm_case_opened", uow=uow, case=case)

    def case_status_changed(
        self, uow: UnitOfWork, case: Case, old_status: str, new_status: str
    ) -> None:
        self._call(
            "recrm_case_status_changed",
            uow=uow,
            case=case,
            old_status=old_status,
            new_status=new_status,
        )

    def timeline(self, uow: UnitOfWork, customer: Customer) -> list[TimelineEntry]:
        results = self._call("recrm_timeline", uow=uow, customer=customer)
        return [entry for batch in results if batch for entry in batch]

    def segment_fields(self, register: Any) -> None:
        self._call("recrm_segment_fields", register=register)

    def demo(self, crm: CRM, rng: Any, customer_ids: list[int]) -> list[Any]:
        sections = self._call("recrm_demo", crm=crm, rng=rng, customer_ids=customer_ids)
        return [s for s in sections if s]

    def deliver_message(self, crm: CRM, message: Message) -> DeliveryResult | None:
        result: DeliveryResult | None = self._call(
            "recrm_deliver_message", crm=crm, message=message
        )
        return result

    def settings_model(self) -> dict[str, type[BaseModel]]:
        models: dict[str, type[BaseModel]] = {}

        def register(section: str, model: type[BaseModel]) -> None:
            if section in models and models[section] is not model:
                raise ConfigError(f"settings section [{section}] registered twice")
            models[section] = model

        self.register_settings(register)
        return models
