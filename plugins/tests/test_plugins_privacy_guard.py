"""Guard: every installed plugin whose tables hold customer data takes part in privacy
requests, i.e. implements both ``recrm_customer_export`` and ``recrm_customer_erase``.

A table holds customer data when it is declared on ``recrm_core.Base`` by the plugin's
package and has a ``customer_id`` column or a foreign key to ``customers.id``. Every
plugin of the ``recrm`` entry-point group is checked (first-party ones must be
installed: a missing one fails rather than being skipped); a plugin known not to
comply yet is a strict xfail, so the day it complies the mark must go.
"""

from __future__ import annotations

import importlib.metadata as md
from types import ModuleType

import pytest

import recrm_core.tables  # noqa: F401  (the customers table, which plugin keys point at)
from recrm_core import Base
from recrm_core.plugins import check_plugin

GROUP = "recrm"
PRIVACY_HOOKS = ("recrm_customer_export", "recrm_customer_erase")
#: shipped in this repository: must be installed (scripts/test.sh installs them)
FIRST_PARTY = ("membership", "survey", "hotlead")
#: plugins that hold customer rows but do not implement the hooks yet, and why
#: (name -> reason); each is a strict xfail, so the day it complies the entry must go
PENDING: dict[str, str] = {}


def installed() -> dict[str, md.EntryPoint]:
    return {ep.name: ep for ep in md.entry_points(group=GROUP)}


def customer_tables(plugin: ModuleType) -> dict[str, list[str]]:
    """``{table: [customer columns]}`` of the tables the plugin's package declares."""
    package = plugin.__name__.split(".")[0]
    found: dict[str, list[str]] = {}
    for mapper in Base.registry.mappers:
        if mapper.class_.__module__.split(".")[0] != package:
            continue
        for table in mapper.tables:
            columns = [
                c.name for c in table.columns
                if c.name == "customer_id"
                or any(fk.target_fullname.split(".")[0] == "customers" for fk in c.foreign_keys)
            ]
            if columns:
                found[table.name] = columns
    return found


def test_first_party_plugins_are_installed() -> None:
    missing = sorted(set(FIRST_PARTY) - set(installed()))
    assert missing == [], f"not installed (run scripts/test.sh): {missing}"


@pytest.mark.parametrize("name", ["membership", "survey"])
def test_the_guard_sees_the_first_party_tables(name: str) -> None:
    # The guard below proves nothing if it finds no tables: membership and survey
    # both keep rows per customer.
    assert customer_tables(installed()[name].load())


def _cases() -> list[object]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(reason=PENDING[name], strict=True))
        if name in PENDING else name
        for name in sorted(set(installed()) | set(FIRST_PARTY))
    ]


@pytest.mark.parametrize("name", _cases())
def test_plugins_holding_customer_rows_implement_export_and_erase(name: str) -> None:
    entry_points = installed()
    assert name in entry_points, f"plugin {name!r} is not installed"
    plugin = entry_points[name].load()
    tables = customer_tables(plugin)
    if not tables:
        return  # nothing about customers to export or erase
    check_plugin(name, plugin)  # raises for a hook with arguments its spec lacks
    missing = [hook for hook in PRIVACY_HOOKS
               if not isinstance(getattr(getattr(plugin, hook, None), f"{GROUP}_impl", None),
                                 dict)]
    assert missing == [], (
        f"plugin {name!r} keeps customer data in {tables} but does not implement "
        f"{missing} (docs/plugins.md, 'Privacy: export and erase')")
