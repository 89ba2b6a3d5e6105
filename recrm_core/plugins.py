"""Plugin discovery, loading and the typed facade over ``pm.hook``.

One :class:`pluggy.PluginManager` per CRM: no module-global state, so two CRMs
with different plugins live side by side (and tests can build as many as they like).
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import importlib
import importlib.metadata as md
import inspect
import os
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Sequence
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
        CustomerStageChange,
        DeliveryResult,
        ImportedCustomer,
        Interaction,
        Message,
        OwnerChange,
        StageChange,
        Task,
        TimelineEntry,
    )

ENTRY_POINT_GROUP = "recrm"
DISABLE_ENV = "RECRM_DISABLE_PLUGINS"
#: plugins the core registers itself, written like any other plugin
BUILTIN_PLUGINS = ("recrm_core.transports", "recrm_core.webhooks.hooks", "recrm_core.followups",
                   "recrm_core.reports.builtin")
_HOOK_PREFIX = f"{_hooks.PROJECT_NAME}_"
_IMPL_ATTR = f"{_hooks.PROJECT_NAME}_impl"
_SPEC_ATTR = f"{_hooks.PROJECT_NAME}_spec"


class PluginWarning(UserWarning):
    """A plugin loads but looks wrong: a ``recrm_`` function without ``@hookimpl``."""


@dataclass
class PluginInfo:
    """What ``recrm plugins list`` shows for one plugin."""

    name: str
    version: str | None
    enabled: bool
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


class _LazyPackage(types.ModuleType):
    """A package whose public names are imported on first use (:func:`lazy_exports`)."""

    _lazy_exports: dict[str, str]

    def __getattr__(self, attr: str) -> Any:
        module = self.__dict__.get("_lazy_exports", {}).get(attr)
        if module is None:
            raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")
        value = getattr(importlib.import_module(f".{module}", self.__name__), attr)
        self.__dict__[attr] = value  # later look-ups skip this method
        return value

    def __setattr__(self, attr: str, value: Any) -> None:
        # Importing a submodule sets it as the package's attribute of its name: a
        # public name it shares (``service`` of ``.service``) stays the public one,
        # as an eager ``from .service import service`` keeps it.
        if attr in self.__dict__.get("_lazy_exports", {}) and isinstance(
                value, types.ModuleType) and value.__name__ == f"{self.__name__}.{attr}":
            return
        super().__setattr__(attr, value)


def lazy_exports(package: str, exports: dict[str, str]) -> None:
    """Make the package being imported lazy (PEP 562's module ``__getattr__``): each
    public name of ``exports`` (name -> its module, relative to ``package``) is
    imported on first use. A plugin's ``__init__`` calls it, so loading the plugin
    imports only its hooks module and what that imports (docs/plugins.md, "A light
    entry point"). ``dir()`` of the package lists only what is imported: pluggy reads
    every name it gives."""
    module = sys.modules[package]
    module.__dict__["_lazy_exports"] = dict(exports)
    module.__class__ = _LazyPackage


def disabled_by_env() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {n.strip() for n in raw.split(",") if n.strip()}


def entry_points(group: str) -> md.EntryPoints:
    """The installed entry points of ``group``.

    A command asks for several groups as it starts (the plugins, their commands,
    their migration branches) and ``importlib.metadata`` reads every installed
    distribution's metadata for each ask (~3 ms each): all groups are read at once
    and kept while the directories on ``sys.path`` are what they were (installing
    or removing a distribution changes its directory's modification time)."""
    return _installed_entry_points(_search_path_state())(group=group)


def _search_path_state() -> tuple[tuple[str, int | None], ...]:
    state: list[tuple[str, int | None]] = []
    for entry in sys.path:
        try:
            where = entry or os.getcwd()  # "": the working directory, wherever it is now
            state.append((where, os.stat(where).st_mtime_ns))
        except (OSError, ValueError):  # not there (yet), or not a path
            state.append((entry, None))
    return tuple(state)


@functools.lru_cache(maxsize=4)
def _installed_entry_points(
    _state: tuple[tuple[str, int | None], ...],
) -> Callable[..., md.EntryPoints]:
    """``select`` of every installed entry point: Python 3.11 gives them grouped,
    3.12 in one list, and both select a group. (Flattening the groups first would
    select each group of every distribution, ~30 M instructions at every start.)"""
    return md.entry_points().select


def installed_entry_points() -> dict[str, md.EntryPoint]:
    found: dict[str, md.EntryPoint] = {}
    for ep in entry_points(ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def declared_commands(group: str) -> dict[str, str]:
    """Command name -> plugin name, from the entry points in ``group`` with which
    plugins name their command groups (the plugin is the ``recrm`` entry point of the
    same distribution); read from metadata, importing nothing."""
    declared: dict[str, str] = {}
    for ep in entry_points(group):
        dist = getattr(ep, "dist", None)
        if dist is None:
            continue
        owners = [p.name for p in dist.entry_points if p.group == ENTRY_POINT_GROUP]
        if owners:
            declared.setdefault(ep.name, owners[0])
    return declared


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


@functools.cache
def _spec_arguments() -> dict[str, tuple[str, ...]]:
    """Hook name -> the arguments its specification offers."""
    return {
        name: tuple(inspect.signature(obj).parameters)
        for name, obj in vars(specs).items()
        if callable(obj) and hasattr(obj, _SPEC_ATTR)
    }


def _required_arguments(function: Callable[..., Any]) -> list[str]:
    """The arguments pluggy passes to an implementation: those without a default
    (``self`` of a method is bound already, or named so on a plain class)."""
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return []
    if params and params[0].name in ("self", "cls") and "." in function.__qualname__ \
            and not inspect.ismethod(function):
        params = params[1:]
    return [
        p.name for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]


#: per-change hooks and their batch forms (a plugin implements one of each pair)
BATCH_FORMS = {
    "recrm_stage_changed": "recrm_stages_changed",
    "recrm_interaction_logged": "recrm_interactions_logged",
}


def check_plugin(name: str, plugin: object) -> list[str]:
    """The one check every way of adding a plugin runs (``CRM(plugins=...)``, the
    ``register_plugin`` fixture, ``recrm plugins list`` and ``recrm init``).

    Raises :class:`PluginError` naming the plugin for a hook no specification has
    (suggesting the nearest hook name) and for an argument its specification lacks:
    pluggy would otherwise never call the first and only fail on the second. Returns
    warnings for ``recrm_`` functions without ``@hookimpl``, which are never called.
    """
    known = _spec_arguments()
    problems: list[str] = []
    found: list[str] = []
    for attr in sorted(dir(plugin)):
        if not attr.startswith(_HOOK_PREFIX):
            continue
        try:
            value = getattr(plugin, attr)
        except Exception:  # a property that raises is not a hook
            continue
        opts = getattr(value, _IMPL_ATTR, None)
        if not isinstance(opts, dict):
            if inspect.isroutine(value):
                found.append(f"{attr} has no @hookimpl, so it is never called")
            continue
        hook = opts.get("specname") or attr
        offered = known.get(hook)
        if offered is None:
            close = difflib.get_close_matches(hook, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown hook {hook!r}{hint}")
            continue
        extra = sorted(set(_required_arguments(value)) - set(offered))
        if extra:
            problems.append(
                f"{attr} takes {{{', '.join(map(repr, extra))}}}, which {hook} does not "
                f"offer (it offers {', '.join(offered)})"
            )
    implemented = set()
    for attr in dir(plugin):
        try:  # any name: pluggy registers a marked function with ``specname`` under it
            opts = getattr(getattr(plugin, attr), _IMPL_ATTR, None)
        except Exception:
            continue
        if isinstance(opts, dict):
            implemented.add(opts.get("specname") or attr)
    for single, batch in BATCH_FORMS.items():
        if single in implemented and batch in implemented:
            problems.append(f"implements both {single!r} and {batch!r}: implement one "
                            "(each change would be handled twice)")
    if problems:
        raise PluginError(name, "load", pluggy.PluginValidationError(plugin, "; ".join(problems)))
    return found


def register_plugin(pm: pluggy.PluginManager, plugin: object, name: str) -> list[str]:
    """Check ``plugin`` and register it under ``name``; returns the check's warnings
    (also issued as :class:`PluginWarning`)."""
    found = check_plugin(name, plugin)
    for warning in found:
        warnings.warn(PluginWarning(f"plugin {name!r}: {warning}"), stacklevel=3)
    try:
        pm.register(plugin, name=name)
    except ValueError as exc:  # already registered, or the name is taken
        raise ConfigError(f"plugin {name!r}: {exc}") from None
    except pluggy.PluginValidationError as exc:  # what pluggy checks beyond ours
        raise PluginError(name, "load", exc) from exc
    return found


class _PluginManager(pluggy.PluginManager):
    """pluggy's manager, counting the hook-call monitors on it (``HookRecorder``,
    ``enable_tracing``): while none watches, :class:`Hooks` skips calling a hook
    nobody implements, which nothing could observe."""

    monitors = 0

    def add_hookcall_monitoring(self, before: Any, after: Any) -> Callable[[], None]:
        undo = super().add_hookcall_monitoring(before, after)
        self.monitors += 1

        def undo_and_count() -> None:
            undo()
            self.monitors -= 1

        return undo_and_count


def new_plugin_manager() -> pluggy.PluginManager:
    pm = _PluginManager(_hooks.PROJECT_NAME)
    pm.add_hookspecs(specs)
    return pm


def load_plugins(
    pm: pluggy.PluginManager, enabled: Sequence[str | object]
) -> list[PluginInfo]:
    """Register builtin plugins and every enabled one; raise on a broken enabled plugin."""
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    entry_points = installed_entry_points()
    skip = disabled_by_env()
    infos: list[PluginInfo] = []
    names = [item if isinstance(item, str) else plugin_name(item) for item in enabled]
    twice = sorted({name for name in names if names.count(name) > 1} - skip)
    if twice:
        # pluggy's refusal of the second registration prints every registered module
        raise ConfigError(f"plugins: {', '.join(map(repr, twice))} listed more than once")
    for item in enabled:
        if not isinstance(item, str):
            name = plugin_name(item)
            if name in skip:
                continue
            found = register_plugin(pm, item, name)
            infos.append(PluginInfo(name, None, True, _hooks_of(pm, item), warnings=found))
            continue
        if item in skip:
            continue
        ep = entry_points.get(item)
        if ep is None:
            known = ", ".join(sorted(entry_points)) or "none installed"
            raise ConfigError(f"plugin {item!r} is not installed (installed: {known})")
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:  # sys.exit() on import: name the plugin
            raise PluginError(item, "load", exc) from exc
        found = register_plugin(pm, plugin, item)
        infos.append(PluginInfo(item, _version(ep), True, _hooks_of(pm, plugin), warnings=found))
    return infos


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
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PluginWarning)  # listed in the info instead
                info.warnings = register_plugin(pm, plugin, name)
            info.hooks = _hooks_of(pm, plugin)
        except PluginError as exc:
            info.error = _describe(exc.error)
        except (Exception, SystemExit) as exc:  # a broken plugin must not take the CLI down
            info.error = _describe(exc)
        infos.append(info)
    return infos


def describe_loaded(pm: pluggy.PluginManager) -> list[PluginInfo]:
    """What a built CRM runs (plugin objects included) and the installed plugins it
    does not: ``recrm plugins list`` for a CRM given to the CLI (the test harness)."""
    loaded = {n: p for n, p in pm.list_name_plugin() if n not in BUILTIN_PLUGINS}
    entry_points = installed_entry_points()
    infos = [i for i in describe_installed([]) if i.name not in loaded]
    for name, plugin in loaded.items():
        ep = entry_points.get(name)
        infos.append(PluginInfo(name, _version(ep) if ep else None, True, _hooks_of(pm, plugin),
                                warnings=check_plugin(name, plugin)))
    return sorted(infos, key=lambda i: i.name)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _wrong_answer(answer: object, expected: str) -> TypeError:
    """What a plugin's hook returned instead of what its spec asks for, in one line
    (the type only: the value may hold personal data)."""
    kinds = sorted({type(item).__name__ for item in answer}) \
        if isinstance(answer, list | tuple) else []
    got = f"a list of {', '.join(kinds)}" if kinds else type(answer).__name__
    return TypeError(f"returned {got}; expected {expected}")


@dataclass
class HookBatch:
    """What the batch hooks will receive when :meth:`Hooks.batched` ends."""

    interactions: list[Interaction] = field(default_factory=list)
    stages: list[CustomerStageChange] = field(default_factory=list)


class _BatchBlock:
    """``with hooks.batched(uow)``: see :meth:`Hooks.batched`. A class rather than a
    ``@contextmanager`` generator (as ``db._UnitOfWorkBlock``): every batch form of an
    operation opens one, and the generator and its wrapper cost more to enter and
    leave."""

    __slots__ = ("_batch", "_hooks", "_uow")

    def __init__(self, hooks: Hooks, uow: UnitOfWork) -> None:
        self._hooks, self._uow = hooks, uow
        self._batch: HookBatch | None = None

    def __enter__(self) -> None:
        uow = self._uow
        if uow.hook_batch is None:  # else a nested block: the outer one delivers
            self._batch = uow.hook_batch = HookBatch()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: types.TracebackType | None) -> None:
        batch = self._batch
        if batch is None:
            return
        # Detached first: what a batch implementation changes itself is a batch of
        # its own, never appended to the one being delivered.
        self._batch = self._uow.hook_batch = None
        if exc_type is None:
            self._hooks._deliver(self._uow, batch)


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

    def implemented_only_by(self, hook_name: str, plugins: Iterable[str]) -> bool:
        """Whether every implementation of ``hook_name`` is one of ``plugins`` (by
        registered name): asked at each call, as plugins may come and go."""
        caller = getattr(self.pm.hook, hook_name)
        return all(impl.plugin_name in plugins for impl in caller.get_hookimpls())

    def _call(self, hook_name: str, **kwargs: Any) -> Any:
        return self._run(hook_name, getattr(self.pm.hook, hook_name), kwargs)

    def _run(self, hook_name: str, caller: Any, kwargs: dict[str, Any]) -> Any:
        try:
            return caller(**kwargs)
        except PluginError:
            raise
        except (Exception, SystemExit) as exc:
            # A plugin's sys.exit() is a failure of that plugin too: left alone it would
            # end the CLI with the plugin's code and no word of who stopped it.
            # KeyboardInterrupt stays what it is: the person at the terminal asked.
            raise PluginError(self._culprit(hook_name, exc), hook_name, exc) from exc

    def _notify(self, hook_name: str, **kwargs: Any) -> None:
        """``_call`` for a hook whose answers are not used, skipped when nobody
        implements it and no monitor watches the calls (a hook recorder, and so a
        plugin author's test, still sees every change): each operation fires its
        per-change hook, which most CRMs do not implement (~1 µs a call)."""
        caller = getattr(self.pm.hook, hook_name)
        if not caller.get_hookimpls() and not getattr(self.pm, "monitors", 1):
            return
        self._call(hook_name, **kwargs)

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

    def declare_tables(self, skip: Iterable[str] = ()) -> None:
        """Every enabled plugin's tables declared on ``Base`` (but those of the
        plugins named in ``skip``): the plugins whose package does not import them
        import them now (``recrm_declare_tables``)."""
        caller: Any = self.pm.hook.recrm_declare_tables
        left_out = [p for p in (self.pm.get_plugin(n) for n in skip) if p is not None]
        if left_out:
            caller = self.pm.subset_hook_caller("recrm_declare_tables", left_out)
        self._run("recrm_declare_tables", caller, {})

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

    def project_renamed(self, uow: UnitOfWork, old_code: str, new_code: str) -> None:
        self._call("recrm_project_renamed", uow=uow, old_code=old_code, new_code=new_code)

    def stage_changed(self, uow: UnitOfWork, customer: Customer, change: StageChange) -> None:
        """``recrm_stage_changed`` now, and ``recrm_stages_changed`` now as a batch of
        one or, inside :meth:`batched`, when the batch ends."""
        self._notify("recrm_stage_changed", uow=uow, customer=customer, change=change)
        if not self.implemented("recrm_stages_changed"):
            return
        from .models import CustomerStageChange

        item = CustomerStageChange(customer=customer, change=change)
        if uow.hook_batch is not None:
            uow.hook_batch.stages.append(item)
        else:
            self._call("recrm_stages_changed", uow=uow, changes=(item,))

    def batched(self, uow: UnitOfWork) -> _BatchBlock:
        """Collect the batch hooks' changes made inside the block and deliver them
        once at its end (interactions, then stage changes), each batch hook called
        once. The per-change hooks still fire as each change is made. Nested blocks
        join the outer one; nothing is delivered if the block raises (the unit of work
        rolls back)."""
        return _BatchBlock(self, uow)

    def _deliver(self, uow: UnitOfWork, batch: HookBatch) -> None:
        if batch.interactions:
            self._call("recrm_interactions_logged", uow=uow,
                       interactions=tuple(batch.interactions))
        if batch.stages:
            self._call("recrm_stages_changed", uow=uow, changes=tuple(batch.stages))

    def owners_changed(self, uow: UnitOfWork, changes: Sequence[OwnerChange]) -> None:
        if changes:
            self._call("recrm_owners_changed", uow=uow, changes=changes)

    def customers_imported(
        self,
        uow: UnitOfWork,
        records: Sequence[ImportedCustomer],
        load: Callable[[Iterable[int]], dict[int, Customer]],
    ) -> None:
        self._call("recrm_customers_imported", uow=uow, records=records, load=load)

    def withhold_referral_reward(
        self,
        uow: UnitOfWork,
        customer: Customer,
        project: str,
        referrer_id: int,
        referred_at: dt.datetime,
        occurred_at: dt.datetime,
    ) -> list[tuple[str, str]]:
        """``(plugin name, reason)`` for each plugin that withholds the referral
        reward (each asked on its own); empty: reward it. A plugin answering anything
        but a reason (non-empty text) or ``None`` is a :class:`PluginError`."""
        hook = "recrm_withhold_referral_reward"
        answers = self.per_plugin(hook, uow=uow, customer=customer, project=project,
                                  referrer_id=referrer_id, referred_at=referred_at,
                                  occurred_at=occurred_at)
        reasons: list[tuple[str, str]] = []
        for name, reason in answers:
            if reason is None:
                continue
            if not isinstance(reason, str) or not reason.strip():
                raise PluginError(name, hook, TypeError(
                    f"returned {reason!r}: a reason (non-empty text) or None"))
            reasons.append((name, " ".join(reason.split())))
        return reasons

    def interaction_logged(self, uow: UnitOfWork, interaction: Interaction) -> None:
        """``recrm_interaction_logged`` now, and ``recrm_interactions_logged`` now as a
        batch of one or, inside :meth:`batched`, when the batch ends."""
        self._notify("recrm_interaction_logged", uow=uow, interaction=interaction)
        if not self.implemented("recrm_interactions_logged"):
            return
        if uow.hook_batch is not None:
            uow.hook_batch.interactions.append(interaction)
        else:
            self._call("recrm_interactions_logged", uow=uow, interactions=(interaction,))

    def task_created(self, uow: UnitOfWork, task: Task) -> None:
        self._call("recrm_task_created", uow=uow, task=task)

    def task_done(self, uow: UnitOfWork, task: Task) -> None:
        self._call("recrm_task_done", uow=uow, task=task)

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
        from .models import TimelineEntry

        results = self._call("recrm_timeline", uow=uow, customer=customer)
        if all(isinstance(batch, list | tuple) and all(isinstance(e, TimelineEntry)
                                                       for e in batch) for batch in results):
            return [entry for batch in results for entry in batch]
        # Something else would fail far from the plugin (an AttributeError in the 360
        # view). The hook only reads: ask each plugin alone to name the one at fault.
        for name, batch in self.per_plugin("recrm_timeline", uow=uow, customer=customer):
            if not (isinstance(batch, list | tuple) and all(isinstance(e, TimelineEntry)
                                                             for e in batch)):
                raise PluginError(name, "recrm_timeline", _wrong_answer(
                    batch, "a list of TimelineEntry, or None"))
        raise AssertionError("recrm_timeline: an answer no plugin gave")  # pragma: no cover

    def segment_fields(self, register: Callable[[str, object], None]) -> None:
        """``register(plugin_name, field)`` for every field a plugin registers.

        Each plugin is called on its own, so the core knows which plugin registered
        which field (to check its prefix and to name both sides of a clash).
        """
        self._each_alone("recrm_segment_fields",
                         lambda name: {"register": functools.partial(register, name)})

    def api_routes(self, crm: CRM, routes_for: Callable[[str], object]) -> None:
        """``recrm_api_routes`` for each plugin on its own, with the routers
        ``routes_for(plugin name)`` makes for it (``recrm_core.api.routes``)."""
        self._each_alone("recrm_api_routes",
                         lambda name: {"crm": crm, "routes": routes_for(name)})

    def per_plugin(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """``(plugin name, result)`` of each implementation of ``hook``, each called on
        its own, so the core knows whose result is whose."""
        return self._each_alone(hook, lambda _name: kwargs)

    def _each_alone(self, hook: str, kwargs_for: Callable[[str], dict[str, Any]]
                    ) -> list[tuple[str, Any]]:
        """Call each implementation of ``hook`` on its own, with the arguments
        ``kwargs_for(plugin name)`` gives; ``(plugin name, result)`` of each."""
        everyone = [impl.plugin for impl in getattr(self.pm.hook, hook).get_hookimpls()]
        results: list[tuple[str, Any]] = []
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            alone = self.pm.subset_hook_caller(
                hook, remove_plugins=[p for p in everyone if p is not impl.plugin])
            try:
                answered = alone(**kwargs_for(impl.plugin_name))
            except PluginError:
                raise
            except (Exception, SystemExit) as exc:  # as in _call: sys.exit() is a failure
                raise PluginError(impl.plugin_name, hook, exc) from exc
            results.extend((impl.plugin_name, r) for r in answered)
        return results

    def customer_export(self, uow: UnitOfWork, customer: Customer) -> dict[str, Any]:
        """Each plugin's export section, by plugin name (those that returned one)."""
        return {name: data for name, data in
                self.per_plugin("recrm_customer_export", uow=uow, customer=customer)
                if data is not None}

    def customer_erase(self, uow: UnitOfWork, customer: Customer,
                       merged_ids: list[int]) -> list[tuple[str, Any]]:
        """``(plugin name, its ErasureStep list)`` for each plugin that erased."""
        from pydantic import ValidationError

        from .models import ErasureStep

        found: list[tuple[str, Any]] = []
        for name, steps in self.per_plugin("recrm_customer_erase", uow=uow,
                                           customer=customer, merged_ids=merged_ids):
            if not steps:
                continue
            try:
                if not isinstance(steps, list | tuple):
                    raise TypeError
                found.append((name, [ErasureStep.model_validate(s) for s in steps]))
            except (TypeError, ValidationError):
                # named here, not as a pydantic error far from the plugin
                raise PluginError(name, "recrm_customer_erase", _wrong_answer(
                    steps, "a list of ErasureStep, or None")) from None
        return found

    def register_audit_actions(self, register: Callable[[str, str], None]) -> None:
        self._call("recrm_register_audit_actions", register=register)

    def message_fields(self, uow: UnitOfWork, customers: list[Customer]
                       ) -> dict[int, dict[str, dict[str, Any]]]:
        """``{customer id: {plugin name: {field: value}}}`` from ``recrm_message_fields``
        (each plugin on its own, its fields under its name)."""
        found: dict[int, dict[str, dict[str, Any]]] = {}
        for name, result in self.per_plugin("recrm_message_fields", uow=uow,
                                            customers=customers):
            for cid, fields in (result or {}).items():
                found.setdefault(cid, {})[name] = dict(fields)
        return found

    def consent_purposes(self, register: Callable[[str, str, str], None]) -> None:
        """``register(plugin_name, name, label)`` for every consent purpose a plugin
        registers (each plugin on its own, so a clash names the plugin)."""
        self._each_alone("recrm_consent_purposes",
                         lambda name: {"register": functools.partial(register, name)})

    def reports(self, register: Callable[[str, object], None]) -> None:
        """``register(plugin_name, spec)`` for every report a plugin registers (each
        plugin on its own, to check its prefix and name both sides of a clash)."""
        self._each_alone("recrm_reports",
                         lambda name: {"register": functools.partial(register, name)})

    def webhook_events(self, register: Callable[[str, str, str], None]) -> None:
        """``register(plugin_name, name, description)`` for every webhook event type
        a plugin registers (each plugin on its own, to check its prefix)."""
        self._each_alone("recrm_webhook_events",
                         lambda name: {"register": functools.partial(register, name)})

    def demo(self, crm: CRM, rng: Any, customer_ids: list[int],
             anchor: dt.datetime) -> list[Any]:
        sections = self._call("recrm_demo", crm=crm, rng=rng, customer_ids=customer_ids,
                              anchor=anchor)
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
