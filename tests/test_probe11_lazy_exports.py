"""Review finding: a package that imports its public names on first use (PEP 562: the
core's ``_EXPORTS``, each plugin's ``lazy_exports`` map) keeps two lists of them, the
name -> module map and the ``if TYPE_CHECKING:`` imports for type checkers, and
nothing checked them against each other: a name added to one only was an
AttributeError at run time, or unknown to mypy. Per package: every lazily exported
name resolves to what its module defines, the two lists agree name for name and
module for module, and ``__all__`` lists only names the package gives."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

import pytest

PACKAGES = ["recrm_core", "recrm_channels", "recrm_membership", "recrm_newsletter",
            "recrm_sales", "recrm_survey"]


def _lazy_map(package: ModuleType) -> dict[str, str]:
    found = package.__dict__.get("_lazy_exports", package.__dict__.get("_EXPORTS"))
    assert isinstance(found, dict) and found, f"{package.__name__} has no lazy export map"
    return dict(found)


def _type_checking_imports(package: ModuleType) -> dict[str, str]:
    """name -> module (relative, as the map writes it) of every import under
    ``if TYPE_CHECKING:`` in the package's ``__init__``."""
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text(encoding="utf-8"))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) \
                and node.test.id == "TYPE_CHECKING":
            for statement in ast.walk(node):
                if isinstance(statement, ast.ImportFrom):
                    assert statement.level == 1 and statement.module, ast.dump(statement)
                    for alias in statement.names:
                        found[alias.asname or alias.name] = statement.module
    return found


@pytest.mark.parametrize("name", PACKAGES)
def test_the_lazy_map_and_the_type_checking_imports_agree(name: str) -> None:
    package = importlib.import_module(name)
    lazy, typed = _lazy_map(package), _type_checking_imports(package)
    assert {n: m for n, m in lazy.items() if typed.get(n) != m} == {}, \
        "lazily exported, not (or from another module) under TYPE_CHECKING"
    assert {n: m for n, m in typed.items() if lazy.get(n) != m} == {}, \
        "under TYPE_CHECKING, not (or from another module) in the lazy map"


@pytest.mark.parametrize("name", PACKAGES)
def test_every_lazily_exported_name_resolves(name: str) -> None:
    package = importlib.import_module(name)
    for export, module in _lazy_map(package).items():
        defined = importlib.import_module(f"{name}.{module}")
        assert hasattr(defined, export), f"{name}.{module} defines no {export}"
        assert getattr(package, export) is getattr(defined, export), export
    for export in package.__all__:
        assert hasattr(package, export), f"{name}.__all__ names {export}, which it lacks"
