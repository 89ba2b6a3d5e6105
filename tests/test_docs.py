"""Guard tests: every hook is named, documented, in the reference and tested.

Like datasette's ``test_docs.py`` and ``test_plugins.py``: adding a hook spec without
a docstring that says when it fires and whether it runs in the transaction, without
an entry in ``docs/hooks.md``, or without a ``test_hook_<name>`` test fails here.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from recrm_core.hooks import PROJECT_NAME, specs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TEST_DIRS = ("tests", "plugins", "examples")


def load_generator(script: str = "gen_hooks") -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"recrm_docs_{script}", DOCS / f"{script}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hook_specs() -> list[Callable[..., Any]]:
    return [
        obj for obj in vars(specs).values()
        if callable(obj) and hasattr(obj, f"{PROJECT_NAME}_spec")
    ]


HOOKS = sorted(hook_specs(), key=lambda f: f.__name__)
HOOK_NAMES = [h.__name__ for h in HOOKS]


@cache
def collect_test_names() -> frozenset[str]:
    """Names of every test function in the repository's test directories (by ast,
    so a file that fails to import still counts, and nothing is executed)."""
    names: set[str] = set()
    for directory in TEST_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if ".venv" in path.parts or "site-packages" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(node.name)
    return frozenset(names)


def hooks_md_headings() -> list[str]:
    text = (DOCS / "hooks.md").read_text(encoding="utf-8")
    return re.findall(r"^## (recrm_\w+)$", text, flags=re.MULTILINE)


def test_specs_found() -> None:
    # The guards below are only as good as this list; an empty one proves nothing.
    assert len(HOOKS) >= 15
    assert "recrm_customer_created" in HOOK_NAMES


def test_specs_all_matches_the_specs() -> None:
    assert sorted(specs.__all__) == HOOK_NAMES


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_is_prefixed(hook: str) -> None:
    assert hook.startswith("recrm_")


@pytest.mark.parametrize("hook", HOOKS, ids=HOOK_NAMES)
def test_hook_docstring_says_when_and_where(hook: Callable[..., Any]) -> None:
    doc = inspect.getdoc(hook) or ""
    assert doc, f"{hook.__name__} has no docstring"
    assert re.search(r"\b(fires|called)\b", doc, re.IGNORECASE), (
        f"{hook.__name__}: the docstring must say when the hook fires"
    )
    assert re.search(r"transaction|unit of work", doc), (
        f"{hook.__name__}: the docstring must say whether it runs inside the transaction"
    )


@pytest.mark.parametrize("hook", HOOKS, ids=HOOK_NAMES)
def test_hook_arguments_are_documented(hook: Callable[..., Any]) -> None:
    doc = inspect.getdoc(hook) or ""
    documented = set(re.findall(r"^:param (\w+):", doc, re.MULTILINE))
    assert documented == set(inspect.signature(hook).parameters), hook.__name__


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_is_in_the_reference(hook: str) -> None:
    assert hook in hooks_md_headings(), f"docs/hooks.md has no '## {hook}' section"


def test_reference_lists_no_removed_hooks() -> None:
    headings = hooks_md_headings()
    assert sorted(headings) == HOOK_NAMES
    assert len(headings) == len(set(headings))


def test_reference_is_up_to_date() -> None:
    generated = load_generator().render()
    current = (DOCS / "hooks.md").read_text(encoding="utf-8")
    assert current == generated, "docs/hooks.md is out of date: run python docs/gen_hooks.py"


@pytest.mark.parametrize("hook", HOOK_NAMES)
def test_hook_has_a_test(hook: str) -> None:
    wanted = f"test_hook_{hook}"
    assert wanted in collect_test_names(), (
        f"no test function named {wanted} under {', '.join(TEST_DIRS)}/"
    )


def test_plugin_guide_links_every_hook() -> None:
    guide = (DOCS / "plugins.md").read_text(encoding="utf-8")
    missing = [h for h in HOOK_NAMES if f"hooks.md#{h}" not in guide]
    assert missing == [], f"docs/plugins.md does not link {missing}"


@pytest.mark.parametrize(
    "page", ["docs/plugins.md", "examples/hotlead/README.md"], ids=lambda p: p.split("/")[-2]
)
def test_python_snippets_parse(page: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    assert blocks, f"{page} has no python examples"
    for block in blocks:
        ast.parse(block)


# -- the model reference (docs/models.md) -------------------------------------------------


def public_models() -> dict[str, type[Any]]:
    """Every pydantic model and dataclass the public API exports."""
    import dataclasses

    from pydantic import BaseModel

    import recrm_core

    found: dict[str, type[Any]] = {}
    for name in recrm_core.__all__:
        obj = getattr(recrm_core, name)
        if isinstance(obj, type) and (issubclass(obj, BaseModel) or dataclasses.is_dataclass(obj)):
            found[name] = obj
    return found


def test_model_reference_is_up_to_date() -> None:
    generated = load_generator("gen_models").render()
    current = (DOCS / "models.md").read_text(encoding="utf-8")
    assert current == generated, "docs/models.md is out of date: run python docs/gen_models.py"


def test_model_reference_covers_the_public_models() -> None:
    documented = {cls.__name__ for cls in load_generator("gen_models").documented_classes()}
    exported = set(public_models())
    # Demo plumbing is not what a hook receives or the API returns to integrators.
    assert exported - documented <= {"DemoSummary", "ImportProgress"}, exported - documented
    assert len(documented) >= 25


def test_model_reference_covers_every_model_a_hook_names() -> None:
    gen = load_generator("gen_models")
    documented = {cls.__name__ for cls in gen.documented_classes()}
    named = gen.hook_model_names() & set(public_models())
    assert {"Customer", "StageChange", "UnitOfWork", "SegmentField", "Message"} <= named
    assert named <= documented, named - documented


def test_every_documented_field_has_a_description() -> None:
    gen = load_generator("gen_models")
    for cls in gen.documented_classes():
        rows = gen.field_rows(cls)  # raises MissingDescription naming the field
        assert rows, cls.__name__
        assert all(description.strip() for *_, description in rows), cls.__name__


def test_plugin_guide_links_the_model_reference() -> None:
    guide = (DOCS / "plugins.md").read_text(encoding="utf-8")
    assert "](models.md" in guide


def test_every_public_name_resolves_lazily() -> None:
    """``recrm_core`` imports its names on first use: each one resolves to what its
    module defines, and importing the package alone loads no service module."""
    import subprocess
    import sys

    import recrm_core

    for name in recrm_core.__all__:
        value = getattr(recrm_core, name)
        if name != "__version__":
            module = recrm_core._EXPORTS[name]
            assert value is getattr(__import__(f"recrm_core.{module}", fromlist=[name]), name)
    probe = ("import sys, recrm_core; "
             "print(sorted(m for m in sys.modules if m.startswith('recrm_core.')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout
    for heavy in ("customers", "demo", "importing", "segments", "models"):
        assert f"'recrm_core.{heavy}'" not in loaded, loaded
