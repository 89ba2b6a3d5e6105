"""Plugins' merge fields (``recrm_message_fields``): each customer's, by plugin, and
the blanks a template is checked against."""

from __future__ import annotations

from typing import Any

from recrm_core import Customer

from ..content import POLITE_NAME
from .rules import _Service


class _Fields(_Service):
    """The plugins' merge fields."""

    def _sample_fields(self) -> dict[str, Any]:
        blank = {name: Blank() for name in self._field_plugins()}
        return {**blank, "name": POLITE_NAME, "project": "", "customer_id": 0, "issue": 0}

    def _field_plugins(self) -> list[str]:
        """The plugins adding merge fields (``recrm_message_fields``)."""
        return [impl.plugin_name for impl in
                self.crm.pm.hook.recrm_message_fields.get_hookimpls()]

    def plugin_fields(self, customers: list[Customer]) -> dict[int, dict[str, Any]]:
        """Each customer's plugin merge fields, by plugin name (empty where a plugin
        has none for them: ``{{ membership.tier or "业主" }}`` falls back)."""
        if not customers or not self._field_plugins():
            return {}
        with self.crm.unit_of_work(readonly=True) as uow:
            found = self.crm.hooks.message_fields(uow, customers)
        names = self._field_plugins()
        return {c.id: {n: Blank(found.get(c.id, {}).get(n, {})) for n in names}
                for c in customers}


class Blank(dict[str, Any]):
    """A plugin's merge fields: a field it has not given renders empty."""

    def __missing__(self, key: str) -> str:
        return ""

