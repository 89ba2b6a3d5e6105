"""``crm.reports``: every registered report, by name, and running one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError, InvalidInput, NotFound
from .model import Report, ReportRequest, ReportSpec

if TYPE_CHECKING:
    from ..crm import CRM


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
            found: dict[str, ReportSpec] = {}
            self.crm.hooks.reports(lambda plugin, spec: self._add(found, plugin, spec))
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
        if spec.name in found:
            first = found[spec.name].plugin or "the core"
            raise ConfigError(f"report {spec.name!r} is registered twice: by {first} "
                              f"and by {plugin}")
        found[spec.name] = spec.model_copy(update={"plugin": None if builtin else plugin})

    def get(self, name: str) -> ReportSpec:
        spec = self.specs().get(name)
        if spec is None:
            raise NotFound(f"no report named {name!r} (recrm report list shows them)")
        return spec

    def run(self, name: str, request: ReportRequest | None = None) -> Report:
        """Run the report ``name``; unknown own options are refused."""
        spec = self.get(name)
        request = request or ReportRequest()
        known = {o.name for o in spec.options}
        for option in request.options:
            if option not in known:
                raise InvalidInput(option, f"report {name!r} has no option {option!r}")
        if request.project is not None and "project" not in spec.standard:
            raise InvalidInput("project", f"report {name!r} is not per project")
        return spec.run(self.crm, request)
