"""Regenerate ``docs/hooks.md`` from the hook specifications.

The specs' docstrings in ``recrm_core/hooks/specs/`` are the reference; this page
is only their rendering, so it can never drift from the code (``tests/test_docs.py``
fails when it does)::

    python docs/gen_hooks.py           # rewrite docs/hooks.md
    python docs/gen_hooks.py --check   # exit 1 if docs/hooks.md is out of date
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from recrm_core.hooks import PROJECT_NAME, specs

HOOKS_MD = Path(__file__).with_name("hooks.md")
SPEC_ATTR = f"{PROJECT_NAME}_spec"
SECTION_RE = re.compile(r"^# -- (?P<title>.+?) -+$")
ROLE_RE = re.compile(r":(?:func|class|data|mod|meth|attr|exc):`~?(?P<target>[^`]+)`")
FIELD_RE = re.compile(
    r"^:(?P<kind>param|return|returns|raises)(?: (?P<name>\w+))?:\s*(?P<text>.*)$"
)


def _module_specs(module: ModuleType) -> list[Callable[..., Any]]:
    found = [obj for obj in vars(module).values()
             if callable(obj) and hasattr(obj, SPEC_ATTR) and obj.__module__ == module.__name__]
    return sorted(found, key=lambda f: f.__code__.co_firstlineno)


def hook_specs() -> list[Callable[..., Any]]:
    """Every hook specification: module by module in ``specs.MODULES``' order, each
    module's in the order it defines them."""
    return [spec for module in specs.MODULES for spec in _module_specs(module)]


def sections() -> dict[str, str]:
    """Hook name -> the ``# -- title ---`` comment it sits under in its module."""
    found: dict[str, str] = {}
    for module in specs.MODULES:
        starts: list[tuple[int, str]] = []
        for lineno, line in enumerate(inspect.getsource(module).splitlines(), start=1):
            match = SECTION_RE.match(line)
            if match:
                starts.append((lineno, match["title"]))
        for spec in _module_specs(module):
            defined_at = spec.__code__.co_firstlineno
            titles = [title for start, title in starts if start < defined_at]
            found[spec.__name__] = titles[-1] if titles else "other"
    return found


def signature(spec: Callable[..., Any]) -> str:
    # The annotations are strings (``from __future__ import annotations``); print
    # them as written rather than as inspect's quoted reprs.
    sig = inspect.signature(spec)
    params = [
        f"{p.name}: {p.annotation}" if p.annotation is not p.empty else p.name
        for p in sig.parameters.values()
    ]
    returns = "" if sig.return_annotation is sig.empty else f" -> {sig.return_annotation}"
    return f"def {spec.__name__}({', '.join(params)}){returns}"


def inline(text: str, hook_names: set[str]) -> str:
    """reST inline markup to Markdown: roles become code (hooks become links)."""

    def role(match: re.Match[str]) -> str:
        target = match["target"]
        short = target.rsplit(".", 1)[-1]
        if short in hook_names:
            return f"[`{short}`](#{short})"
        # ``~a.b.C`` shows ``C``; an explicit ``a.b.C`` keeps its module path
        shown = short if match.group(0).count("~") else target
        return f"`{shown}`"

    return ROLE_RE.sub(role, text).replace("``", "`")


def render_docstring(doc: str, hook_names: set[str]) -> str:
    """The docstring as Markdown: prose as is, ``:param:`` fields as a list."""
    prose: list[str] = []
    params: list[list[str]] = []
    returns: list[str] = []
    current: list[str] | None = None
    for line in doc.splitlines():
        field = FIELD_RE.match(line.strip())
        if field:
            if field["kind"] == "param":
                current = [f"`{field['name']}`: {field['text']}"]
                params.append(current)
            elif field["kind"] in ("return", "returns"):
                current = returns
                current.append(field["text"])
            else:
                current = None
                prose.append(line)
            continue
        if current is not None and line.startswith(" ") and line.strip():
            current.append(line.strip())  # continuation of a field
            continue
        current = None
        prose.append(line)
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(prose)).strip()
    parts = [inline(out, hook_names)] if out else []
    if params:
        items = "\n".join(f"- {inline(' '.join(p), hook_names)}" for p in params)
        parts.append(f"**Arguments**\n\n{items}")
    if returns:
        parts.append(f"**Returns** {inline(' '.join(returns), hook_names)}")
    return "\n\n".join(parts)


def options(spec: Callable[..., Any]) -> list[str]:
    opts: dict[str, Any] = getattr(spec, SPEC_ATTR)
    notes: list[str] = []
    if opts.get("firstresult"):
        notes.append(
            "`firstresult`: implementations are called in turn until one returns "
            "something other than `None`; that value is the result."
        )
    if opts.get("historic"):
        notes.append("`historic`: plugins registered late are called with the past calls.")
    if opts.get("warn_on_impl"):
        notes.append(f"**Deprecated**: {opts['warn_on_impl']}")
    for arg, warning in (opts.get("warn_on_impl_args") or {}).items():
        notes.append(f"**Deprecated argument** `{arg}`: {warning}")
    return notes


def render() -> str:
    """The whole of docs/hooks.md."""
    specs_list = hook_specs()
    names = {s.__name__ for s in specs_list}
    by_section = sections()
    header = inline(inspect.getdoc(specs) or "", names)
    lines = [
        "# Hook reference",
        "",
        "<!-- Generated by docs/gen_hooks.py from recrm_core/hooks/specs/: edit the",
        "     docstrings there, then run `python docs/gen_hooks.py`. -->",
        "",
        header,
        "",
        "Implement a hook by defining a function (or method) with the hook's name,",
        "decorated with `recrm_core.hookimpl`; see [the plugin guide](plugins.md).",
        "",
        "## Contents",
        "",
    ]
    seen_sections: list[str] = []
    for spec in specs_list:
        section = by_section[spec.__name__]
        if section not in seen_sections:
            seen_sections.append(section)
    for section in seen_sections:
        hooks = [s.__name__ for s in specs_list if by_section[s.__name__] == section]
        links = ", ".join(f"[`{h}`](#{h})" for h in hooks)
        lines.append(f"- **{section}**: {links}")
    for spec in specs_list:
        lines += ["", f"## {spec.__name__}", "", "```python", signature(spec), "```", ""]
        for note in options(spec):
            lines += [f"> {note}", ""]
        lines.append(render_docstring(inspect.getdoc(spec) or "", names))
    return "\n".join(lines).rstrip() + "\n"


def write_or_check(page: Path, text: str, doc: str | None, argv: list[str] | None) -> int:
    """The command line of a page generator: rewrite ``page``, or with ``--check``
    exit 1 when it differs from ``text``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--check", action="store_true", help=f"fail if {page.name} is out of date")
    args = parser.parse_args(argv)
    if args.check:
        current = page.read_text(encoding="utf-8") if page.exists() else ""
        if current != text:
            print(f"{page} is out of date: run python docs/{Path(sys.argv[0]).name}",
                  file=sys.stderr)
            return 1
        return 0
    page.write_text(text, encoding="utf-8")
    print(f"wrote {page}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return write_or_check(HOOKS_MD, render(), __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
