"""Where a database stands against the code, read without Alembic.

Every command but ``recrm db ...`` asks this before it runs, so it costs one read of
the revision table (no write lock) and the ``revisions.json`` files each migration
branch ships beside its scripts: the core's and those of the enabled plugins, found
through the entry-point group ``recrm.migrations`` without importing them. The
files are written by ``recrm db revision`` and checked against the scripts by
``tests/test_migrations.py``. Alembic itself is imported only by
:mod:`recrm_core.migrating`, when something must be migrated.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection, Table, inspect, text

from .db import Base, read_connection
from .errors import RecrmError, SchemaMismatch
from .plugins import entry_points

if TYPE_CHECKING:
    from .crm import CRM

#: the entry-point group where a plugin names the package holding its revisions:
#: ``membership = "recrm_membership.migrations"`` (the name is the plugin's)
MIGRATIONS_ENTRY_POINT_GROUP = "recrm.migrations"
#: the core's branch label
CORE_BRANCH = "core"
#: Alembic's revision table
VERSION_TABLE = "alembic_version"
#: written beside a branch's scripts: its revisions, oldest first, and its tables at head
REVISIONS_FILE = "revisions.json"


@dataclass(frozen=True)
class Branch:
    """One migration branch: the core's or a plugin's (labelled with its name)."""

    name: str
    #: the directory holding the revision scripts and ``revisions.json``
    directory: Path
    #: oldest first; the last is the head
    revisions: tuple[str, ...]
    #: the tables the branch creates, at its head
    tables: frozenset[str]
    #: revision -> the revisions of other branches it depends on
    needs: dict[str, tuple[str, ...]]

    @property
    def head(self) -> str | None:
        """The last revision; None for a branch whose package holds none yet."""
        return self.revisions[-1] if self.revisions else None


def read_branch(name: str, directory: Path) -> Branch:
    path = directory / REVISIONS_FILE
    if not path.exists() and directory.is_dir() and not any(
            p.name != "__init__.py" for p in directory.glob("*.py")):
        # The empty package a plugin author makes to start the branch (docs/plugins.md,
        # "Migrations"): no revision yet, so its tables are created directly until
        # `recrm db revision` writes the first and this file.
        return Branch(name, directory, (), frozenset(), {})
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Branch(name, directory, tuple(data["revisions"]), frozenset(data["tables"]),
                      {k: tuple(v) for k, v in data.get("needs", {}).items()})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RecrmError(f"migration branch {name!r}: unreadable {path}: {exc}") from None


def core_branch() -> Branch:
    return read_branch(CORE_BRANCH, Path(__file__).with_name("migrations") / "versions")


def _package_directory(dotted: str) -> Path | None:
    """The directory of package ``dotted`` without importing it: its top-level
    package is found, not imported, and the rest of the name is a path below it."""
    top, _, rest = dotted.partition(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)), *rest.split(".") if rest else ())


def installed_branch_directories() -> dict[str, Path]:
    """Where each installed plugin's revisions are, by plugin name (enabled or not),
    from the entry-point group :data:`MIGRATIONS_ENTRY_POINT_GROUP`."""
    found: dict[str, Path] = {}
    for ep in entry_points(MIGRATIONS_ENTRY_POINT_GROUP):
        if ep.name in found or ep.name == CORE_BRANCH:
            continue
        directory = _package_directory(ep.value.partition(":")[0])
        if directory is None:
            raise RecrmError(f"plugin {ep.name!r}: migrations package {ep.value!r} not found")
        found[ep.name] = directory
    return found


def installed_branches() -> dict[str, Branch]:
    """Every installed plugin's branch by plugin name (enabled or not)."""
    return {name: read_branch(name, directory)
            for name, directory in installed_branch_directories().items()}


def enabled_branches(crm: CRM, installed: dict[str, Branch] | None = None) -> list[Branch]:
    """The core's branch, then those of the CRM's plugins that have one (among
    ``installed``, read when not given)."""
    installed = installed_branches() if installed is None else installed
    return [core_branch(), *(installed[n] for n in crm.plugin_names if n in installed)]


def read_versions(conn: Connection) -> set[str] | None:
    """The revisions the database is at; None when it has no revision table."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return {row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))}


StateKind = Literal["empty", "current", "behind", "ahead", "unversioned"]


@dataclass(frozen=True)
class SchemaState:
    """Where the database stands; ``message`` says so in one line (empty if current)."""

    kind: StateKind
    message: str
    #: enabled branch -> the revision the database holds (None: not migrated yet)
    at: dict[str, str | None]


def compare(versions: set[str] | None, table_names: set[str], branches: list[Branch],
            others: dict[str, Branch]) -> SchemaState:
    """The state of a database holding ``versions`` (None: no revision table) and,
    when it has no revision table, ``table_names``; ``others`` are the installed
    branches not enabled, whose revisions are ignored (a disabled plugin's tables
    stay as they are)."""
    if versions is None:
        if not table_names:
            return SchemaState("empty", "", {})
        return SchemaState(
            "unversioned",
            "the database was created before recrm had migrations: run `recrm db upgrade`"
            " to recognise its schema and bring it up to date", {})
    everyone = [*branches, *others.values()]
    owner = {rev: b for b in everyone for rev in b.revisions}
    unknown = sorted(v for v in versions if v not in owner)
    applied = applied_revisions(versions, everyone)
    at: dict[str, str | None] = {
        b.name: next((r for r in reversed(b.revisions) if r in applied), None)
        for b in branches}
    if unknown:
        return SchemaState(
            "ahead",
            f"the database is ahead of this software (revision {', '.join(unknown)} is"
            " unknown): run a recrm with those migrations, or downgrade the database", at)
    behind = [f"{b.name} at {at[b.name] or 'nothing'}, code at {b.head}"
              for b in branches if at[b.name] != b.head]
    if behind:
        return SchemaState(
            "behind",
            f"the database is behind the code ({'; '.join(behind)}): run `recrm db upgrade`",
            at)
    return SchemaState("current", "", at)


def applied_revisions(stored: set[str], branches: Iterable[Branch]) -> set[str]:
    """Every revision of ``branches`` that the revision table's ``stored`` implies:
    Alembic keeps only heads there, and a revision another depends on is not a head
    (``core_0001`` under a plugin's first revision), nor are a branch's earlier ones."""
    owner = {rev: b for b in branches for rev in b.revisions}
    applied: set[str] = set()
    pending = list(stored)
    while pending:
        rev = pending.pop()
        if rev in applied or rev not in owner:
            continue
        branch = owner[rev]
        chain = branch.revisions[: branch.revisions.index(rev) + 1]
        applied.update(chain)
        pending.extend(d for r in chain for d in branch.needs.get(r, ()))
    return applied


def disabled_plugin_data(crm: CRM, conn: Connection) -> dict[str, list[str]]:
    """Installed plugins not enabled in ``crm`` whose migrated tables hold rows: plugin
    name -> those tables. Their rows are outside what this CRM can export, erase or
    scan (its plugin manager does not know their tables), so a privacy request must
    not pretend to cover them."""
    versions = read_versions(conn)
    branches = enabled_branches(crm)
    others = _other_branches(versions, branches)
    if not others:
        return {}
    assert versions is not None  # other branches are read only for revisions
    applied = applied_revisions(versions, [*branches, *others.values()])
    present = set(inspect(conn).get_table_names())
    found: dict[str, list[str]] = {}
    for name, branch in sorted(others.items()):
        if applied.isdisjoint(branch.revisions):
            continue
        quote = conn.dialect.identifier_preparer.quote
        holding = [t for t in sorted(branch.tables & present)
                   if conn.execute(text(f"SELECT 1 FROM {quote(t)} LIMIT 1")).first()]
        if holding:
            found[name] = holding
    return found


def schema_state(crm: CRM, installed: dict[str, Branch] | None = None) -> SchemaState:
    """Where ``crm``'s database stands, from a read-only transaction (``installed``:
    :func:`installed_branches`, read when not given)."""
    branches = enabled_branches(crm, installed)
    with read_connection(crm) as conn:
        versions = read_versions(conn)
        names = set(inspect(conn).get_table_names()) if versions is None else set()
    # A disabled plugin's revision in the table is not a newer one.
    return compare(versions, names, branches, _other_branches(versions, branches, installed))


def _other_branches(versions: set[str] | None, branches: list[Branch],
                    installed: dict[str, Branch] | None = None) -> dict[str, Branch]:
    """The installed branches not among ``branches`` (the enabled ones), read only when
    the database holds a revision the enabled ones do not know: the common case reads
    no other plugin's file."""
    if not versions or versions <= {r for b in branches for r in b.revisions}:
        return {}
    enabled = {b.name for b in branches}
    installed = installed_branches() if installed is None else installed
    return {n: b for n, b in installed.items() if n not in enabled}


def declare_tables(crm: CRM, skip: Iterable[str] = ()) -> None:
    """The core's tables and every enabled plugin's (but those in ``skip``) declared
    on ``Base``: a plugin whose package is light (docs/plugins.md) imports its tables
    only when asked (``recrm_declare_tables``)."""
    from . import tables  # noqa: F401  (the core's tables, declared on Base)

    crm.hooks.declare_tables(skip)


def unmigrated_tables(crm: CRM, installed: dict[str, Branch] | None = None) -> list[Table]:
    """The declared tables no installed branch creates: those of plugins without a
    migration branch (a quick experiment, a plugin registered in a test). A disabled
    plugin's tables are never among them. Only those plugins are asked to declare
    theirs: every command's start-up check comes here, and the others' tables are in
    their ``revisions.json`` (so a ``customers count`` imports none of them). The
    core's are declared here, though every branch creates them: a command reads them
    (a count, an import), and declared while the console script starts they cost no
    pass of the garbage collector (``recrm_core.collector``)."""
    installed = installed_branches() if installed is None else installed
    declare_tables(crm, skip=[n for n in crm.plugin_names
                              if n in installed and installed[n].tables])
    return unowned_tables(installed)


def unowned_tables(installed: dict[str, Branch]) -> list[Table]:
    """The tables declared on ``Base`` that neither the core's branch nor one of
    ``installed`` creates, in dependency order."""
    owned = set(core_branch().tables)
    for branch in installed.values():
        owned |= branch.tables
    return [t for t in Base.metadata.sorted_tables if t.name not in owned]


def create_unmigrated_tables(crm: CRM, installed: dict[str, Branch] | None = None) -> None:
    """Create the missing :func:`unmigrated_tables`; the write lock is taken only
    when one is missing (SQLite readers must not queue behind an import)."""
    wanted = unmigrated_tables(crm, installed)
    if not wanted:
        return
    with read_connection(crm) as conn:
        existing = set(inspect(conn).get_table_names())
    missing = [t for t in wanted if t.name not in existing]
    if missing:
        Base.metadata.create_all(crm.engine, tables=missing)


def ensure_current(crm: CRM) -> None:
    """What every command but ``recrm db ...`` runs first: an empty database is
    migrated to head; one behind or ahead of the code, or made before migrations,
    raises :class:`SchemaMismatch`."""
    installed = installed_branches()
    state = schema_state(crm, installed)
    if state.kind == "empty":
        from .migrating import upgrade

        upgrade(crm)
    elif state.kind != "current":
        raise SchemaMismatch(state.message)
    create_unmigrated_tables(crm, installed)
