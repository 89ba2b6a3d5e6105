"""``crm.reports``: every registered report, by name, and running one."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..access import require_role
from ..errors import ConfigError, InvalidInput, NotFound, PluginError, RecrmError
from ..models import Actor
from .model import Report, ReportOption, ReportRequest, ReportSpec
from .periods import day_range

if TYPE_CHECKING:
    from ..crm import CRM


#: option names every report command has already (standard options, outputs)
RESERVED_OPTIONS = frozenset({"project", "from", "to", "by", "option", "json", "csv", "xlsx",
                              "svg", "png", "html", "help"})
#: ``recrm report list`` and ``recrm report dashboard``
FIXED_COMMANDS = frozenset({"list", "dashboard"})


class ReportService:
    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self._specs: dict[str, ReportSpec] | None = None
        self._plugins_key: tuple[str, ...] = ()

    def specs(self) -> dict[str, ReportSpec]:
        """Every registered report by name: the core's first, then each enabled
        plugin's, in registration order."""
        # Rebuilt when the set of plugins changes (a test's register_plugin).
        key = tuple(sorted(name for name, _ in self.crm.pm.list_name_plugin()))
        if self._specs is None or key != self._plugins_key:
            registered: list[tuple[str, object]] = []
            # Checked once the hook returned: a refusal raised inside it would reach the
            # caller as the plugin's failure (exit 1), not as the configuration's (exit 2).
            self.crm.hooks.reports(lambda plugin, spec: registered.append((plugin, spec)))
            found: dict[str, ReportSpec] = {}
            for plugin, spec in registered:
                self._add(found, plugin, spec)
            self._specs, self._plugins_key = found, key
        return self._specs

    @staticmethod
    def _add(found: dict[str, ReportSpec], plugin: str, spec: object) -> None:
        if not isinstance(spec, ReportSpec):
            raise ConfigError(f"plugin {plugin!r}: recrm_reports: register() takes a "
                              f"ReportSpec, got {type(spec).__name__}")
        builtin = plugin.startswith("recrm_core.")
        if not builtin and not spec.name.startswith(f"{plugin}."):
            raise ConfigError(f"report {spec.name!r} of plugin {plugin!r}: its name must "
                              f"start with '{plugin}.', the plugin's name")
        taken = sorted({o.name for o in spec.options} & RESERVED_OPTIONS)
        if taken:
            raise ConfigError(f"report {spec.name!r} of {plugin}: option(s) "
                              f"{', '.join(taken)} are the standard ones or outputs; name "
                              "them otherwise")
        if spec.name in FIXED_COMMANDS:
            raise ConfigError(f"report {spec.name!r} of {plugin}: the name is taken by "
                              f"`recrm report {spec.name}`")
        if spec.name in found:
            first = found[spec.name].plugin or "the core"
            raise ConfigError(f"report {spec.name!r} is registered twice: by {first} "
                              f"and by {plugin}")
        found[spec.name] = spec.model_copy(update={"plugin": None if builtin else plugin})

    def available(self, actor: Actor | None = None) -> list[ReportSpec]:
        """The reports ``actor`` may run (None: the integrator's code, every one)."""
        return [spec for spec in self.specs().values()
                if actor is None or actor.role in spec.roles]

    def get(self, name: str) -> ReportSpec:
        spec = self.specs().get(name)
        if spec is None:
            raise NotFound(f"no report named {name!r} (recrm report list shows them)")
        return spec

    def run(self, name: str, request: ReportRequest | None = None) -> Report:
        """Run the report ``name``.

        Refused: an actor whose role is not among the report's ``roles``, an option the
        report does not have or a value its kind refuses, a standard option it does not
        take. Its own options' defaults are filled in before it runs. A plugin's report
        that raises is a :class:`~recrm_core.errors.PluginError` naming the plugin.
        """
        spec = self.get(name)
        request = request or ReportRequest()
        require_role(request.actor, spec.roles, f"run the report {name!r}")
        options = {o.name: o for o in spec.options}
        for option, value in request.options.items():
            if option not in options:
                raise InvalidInput(option, f"report {name!r} has no option {option!r}")
            _check_option(options[option], value)
        given = {"project": request.project, "from": request.start, "to": request.end,
                 "by": None if request.by == "all" else request.by}
        day_range(request.start, request.end)  # a period ending before it starts
        for standard, asked in given.items():
            if asked is not None and standard not in spec.standard:
                raise InvalidInput(standard, f"report {name!r} takes no {standard}")
        filled = {o.name: o.default for o in spec.options if o.default is not None}
        request = request.model_copy(update={"options": filled | dict(request.options)})
        try:
            report = spec.run(self.crm, request)
        except RecrmError:
            raise
        except Exception as exc:
            if spec.plugin is None:
                raise
            raise PluginError(spec.plugin, "recrm_reports", exc) from exc
        if not report.parameters:
            shown = {k: str(v) for k, v in given.items() if v is not None}
            report.parameters = shown | request.options
        return report


def _check_option(option: ReportOption, value: str) -> None:
    """A report's own option's value as its kind allows (one rule for CLI and API)."""
    import datetime as dt

    if option.kind == "choice" and value not in option.choices:
        raise InvalidInput(option.name, f"{value!r} is not one of "
                                        f"{', '.join(option.choices)}")
    if option.kind == "int" and re.fullmatch(r"[+-]?[0-9]{1,18}", value) is None:
        raise InvalidInput(option.name, f"{value!r} is not a whole number")
    if option.kind == "date":
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(option.name, f"{value!r} is not a day (YYYY-MM-DD)") from None
