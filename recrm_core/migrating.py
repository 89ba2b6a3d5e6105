"""Running the migrations: one Alembic environment, the core's branch and one branch per
enabled plugin (``recrm db ...``, ``CRM.create_schema``). The only module that imports
Alembic; :mod:`recrm_core.schema` decides, without it, whether it is needed.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, RootTransaction, inspect
from sqlalchemy.exc import OperationalError

from .db import NAMING_CONVENTION, Base
from .errors import RecrmError, SchemaMismatch
from .schema import (
    CORE_BRANCH,
    REVISIONS_FILE,
    VERSION_TABLE,
    Branch,
    applied_revisions,
    core_branch,
    declare_tables,
    enabled_branches,
    installed_branch_directories,
    installed_branches,
    read_versions,
)

if TYPE_CHECKING:
    from .crm import CRM
    from .keys import Keys

ENVIRONMENT = Path(__file__).with_name("migrations")


class MigrationError(RecrmError):
    """A migration command that cannot run as asked (unknown revision or plugin)."""

    exit_code = 2


def script_directory(branches: Sequence[Branch] | None = None) -> ScriptDirectory:
    """Every installed branch, enabled or not (a disabled plugin's revisions in the
    revision table must still be known, or Alembic could not read it), or only
    ``branches``."""
    if branches is None:
        locations = [str(core_branch().directory),
                     *map(str, installed_branch_directories().values())]
    else:
        locations = [str(b.directory) for b in branches]
    return ScriptDirectory(str(ENVIRONMENT), version_locations=locations)


def run_environment(context: Any) -> None:
    """The body of ``env.py``: configure Alembic on the connection (or, offline, the
    dialect) that :func:`_environment` put into the config's attributes."""
    attributes = context.config.attributes
    options: dict[str, Any] = {
        "target_metadata": attributes.get("target_metadata"),
        "include_object": attributes.get("include_object"),
        "include_name": attributes.get("include_name"),
        # SQLite cannot alter constraints or drop columns in place: rebuild the table
        "render_as_batch": True,
    }
    if context.is_offline_mode():
        context.configure(dialect_name=attributes["dialect_name"], literal_binds=True,
                          output_buffer=attributes["output"], **options)
    else:
        context.configure(connection=attributes["connection"], **options)
    with context.begin_transaction():
        context.run_migrations()


#: the advisory lock key migrations hold on PostgreSQL ("recrm" in ASCII)
_MIGRATION_LOCK = 0x7265_63726D
#: how long a migration on SQLite waits for another process's to finish
MIGRATION_WAIT_SECONDS = 600


def _begin(conn: Connection, sqlite: bool) -> RootTransaction:
    """``conn.begin()``; on SQLite, waiting as long as another process migrates. The busy
    timeout (30 s) suits a unit of work, but several first commands on one empty
    database each run every migration in turn under BEGIN IMMEDIATE, which on a loaded
    machine takes longer; a failed BEGIN leaves no transaction, so it is tried again."""
    deadline = time.monotonic() + MIGRATION_WAIT_SECONDS
    while True:
        try:
            return conn.begin()
        except OperationalError as exc:
            if not sqlite or "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.1)


@contextmanager
def _write_connection(crm: CRM) -> Iterator[Connection]:
    """One transaction for the whole run. On SQLite foreign keys are off meanwhile
    (batch mode drops and renames tables others refer to; only outside a
    transaction does the pragma take) and checked before the commit."""
    sqlite = crm.engine.dialect.name == "sqlite"
    with crm.engine.connect() as conn:
        raw: Any = conn.connection.dbapi_connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with _begin(conn, sqlite):
                if not sqlite:
                    # Two first commands on one empty database (or two `db upgrade`s)
                    # run one after the other: the second then finds the revisions
                    # the first applied. SQLite's BEGIN IMMEDIATE already does this.
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                yield conn
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RecrmError("migration left rows whose foreign keys point nowhere;"
                                     " nothing was changed")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def _run(script: ScriptDirectory, conn: Connection | None, fn: Any, *,
         dialect_name: str | None = None, starting_rev: Any = None,
         output: io.StringIO | None = None, config: Config | None = None,
         crm: CRM | None = None) -> None:
    config = config or Config()
    # The CRM, for the migrations that need its key file (migration_keys).
    config.attributes.update(connection=conn, dialect_name=dialect_name, output=output,
                             recrm_crm=crm)
    try:
        with EnvironmentContext(config, script, fn=fn, as_sql=conn is None,
                                starting_rev=starting_rev):
            script.run_env()
    except CommandError as exc:
        raise MigrationError(str(exc)) from None


def _branch(crm: CRM, name: str) -> Branch:
    branches = {b.name: b for b in enabled_branches(crm)}
    if name not in branches:
        raise MigrationError(f"no migration branch {name!r} among the enabled ones "
                             f"({', '.join(branches)})")
    return branches[name]


def _targets(crm: CRM, plugin: str | None, to: str | None) -> tuple[str, ...]:
    if plugin is None:
        return (to,) if to else _heads(enabled_branches(crm))
    branch = _branch(crm, plugin)
    if not branch.revisions:
        raise MigrationError(f"branch {plugin!r} has no revisions yet: write its first with "
                             f"`recrm db revision --plugin {plugin} -m MESSAGE --autogenerate`")
    if to not in (None, "head", *branch.revisions):
        raise MigrationError(f"{to!r} is not a revision of branch {plugin!r} "
                             f"({', '.join(branch.revisions)}, or head)")
    return (f"{plugin}@{to or 'head'}",)


def _heads(branches: list[Branch]) -> tuple[str, ...]:
    """The branches' heads as upgrade targets, less those another head depends on:
    Alembic refuses targets that overlap (a plugin's first revision written by
    `recrm db revision` depends on the core's head), and reaching the dependent
    head applies them anyway."""
    heads = {b.head: b.name for b in branches if b.head is not None}
    return tuple(f"{name}@head" for head, name in heads.items()
                 if head not in applied_revisions(set(heads) - {head}, branches))


def upgrade(crm: CRM, plugin: str | None = None, to: str | None = None) -> list[str]:
    """Upgrade the enabled branches (or ``plugin``'s, with the core revisions it
    depends on) to their heads, or to ``to``; a database made before migrations is
    first recognised and stamped (:mod:`recrm_core.baselines`). Returns the
    revisions applied, in order."""
    script = script_directory()
    destination = _targets(crm, plugin, to)
    applied: list[str] = []
    with _write_connection(crm) as conn:
        if read_versions(conn) is None and _has_tables(conn):
            from .baselines import stamp_baseline

            stamp_baseline(crm, conn, script)
        else:
            applied.extend(_adopt_tables_created_directly(crm, conn, script))

        def fn(rev: Any, context: Any) -> Any:
            steps = script._upgrade_revs(destination, rev)  # type: ignore[arg-type]
            applied.extend(s.revision.revision for s in steps)
            return steps

        _run(script, conn, fn, crm=crm)
    return applied


def _has_tables(conn: Connection) -> bool:
    return bool(inspect(conn).get_table_names())


def _adopt_tables_created_directly(crm: CRM, conn: Connection,
                                   script: ScriptDirectory) -> list[str]:
    """Stamp the first revision of each enabled plugin branch not yet applied whose
    tables the database already holds, as that revision creates them: they were
    created directly while the branch had no revision (a plugin author's database,
    before `recrm db revision` wrote the first), and creating them again would fail.
    Tables shaped otherwise are refused, each difference named. Returns the revisions
    stamped."""
    from sqlalchemy import create_engine

    from .baselines import differences as shape_differences
    from .baselines import shape

    stamped: list[str] = []
    present = set(inspect(conn).get_table_names())
    applied = applied_revisions(read_versions(conn) or set(), [
        core_branch(), *installed_branches().values()])
    for branch in enabled_branches(crm)[1:]:
        if not branch.tables & present or applied & set(branch.revisions):
            continue
        first = branch.revisions[0]
        engine = create_engine("sqlite://")
        with engine.begin() as scratch:
            needed = tuple(branch.needs.get(first, ()))
            for target in needed:  # one by one: Alembic refuses a target another implies
                _run(script, scratch, lambda rev, _c, to=target: script._upgrade_revs(to, rev))
            before = set(inspect(scratch).get_table_names())
            _run(script, scratch, lambda rev, _c, to=first: script._upgrade_revs(to, rev))
            created = set(inspect(scratch).get_table_names()) - before
            expected = shape(scratch, ignore=before)
        engine.dispose()
        if not created & present:
            continue
        actual = shape(conn, ignore=present - created)
        found = shape_differences(actual, expected)
        if found:
            raise MigrationError(
                f"plugin {branch.name!r}: the tables created before its first revision "
                f"{first} differ from what it creates: {'; '.join(found)}")
        stamp(conn, script, [first])
        stamped.append(first)
    return stamped


def downgrade(crm: CRM, plugin: str, to: str) -> list[str]:
    """Downgrade ``plugin``'s branch (``core`` for the core's) to revision ``to``
    (``base``: remove the branch and its tables). Returns the revisions undone."""
    branch = _branch(crm, plugin)
    if not branch.revisions and to == "base":
        return []  # a branch without revisions has nothing applied
    if to != "base" and to not in branch.revisions:
        raise MigrationError(f"{to!r} is not a revision of branch {plugin!r} "
                             f"({', '.join(branch.revisions)}, or base)")
    script = script_directory()
    destination = f"{plugin}@base" if to == "base" else to
    undone: list[str] = []
    with _write_connection(crm) as conn:

        def fn(rev: Any, context: Any) -> Any:
            steps = script._downgrade_revs(destination, rev)
            undone.extend(s.revision.revision for s in steps)
            return steps

        _run(script, conn, fn, crm=crm)
    return undone


def migration_keys(conn: Connection) -> Keys:
    """The key file's keys, for a running migration that encrypts or decrypts (core_0007),
    checked against the database's recorded fingerprint on the migration's own
    connection. Loaded only when there is something to encrypt, so a database
    without ID numbers migrates without a key file."""
    from alembic import context

    from .keys import load_keys, verify_keys_on

    crm: CRM | None = context.config.attributes.get("recrm_crm")
    if crm is None:
        raise MigrationError("this migration encrypts ID numbers with the key file: run it "
                             "with `recrm db upgrade`")
    cached: Keys | None = crm.__dict__.get("_keys")
    if cached is None:
        cached = load_keys(crm.key_file)
        verify_keys_on(conn, cached)
        crm.__dict__["_keys"] = cached
    return cached


def stamp(conn: Connection, script: ScriptDirectory, revisions: Sequence[str]) -> None:
    """Record ``revisions`` as applied without running them (a recognised baseline)."""

    for target in revisions:  # one by one: Alembic refuses a target another implies
        _run(script, conn, lambda rev, _c, to=target: script._stamp_revs(to, rev))


def upgrade_sql(crm: CRM) -> str:
    """The upgrade from where the database stands to the enabled heads, as SQL for a
    DBA to read (Alembic's offline mode; the database is only read)."""
    if crm.engine.dialect.name == "sqlite":
        # batch mode rebuilds SQLite tables from what it reflects on a live database
        raise MigrationError("recrm db sql is for PostgreSQL: on SQLite the upgrade must "
                             "read the live tables; run `recrm db upgrade` on a copy instead")
    script = script_directory()
    with crm.engine.connect() as conn:
        versions = read_versions(conn)
        unversioned = versions is None and _has_tables(conn)
    if unversioned:
        raise SchemaMismatch("the database was created before recrm had migrations: run "
                             "`recrm db upgrade` to recognise and stamp it first")
    if _clear_id_numbers(crm):
        raise MigrationError("the database holds ID numbers in clear: encrypting them needs "
                             "the key file and cannot be done as SQL; run `recrm db upgrade`")
    destination = _targets(crm, None, None)
    output = io.StringIO()

    def fn(rev: Any, context: Any) -> Any:
        return script._upgrade_revs(destination, rev)  # type: ignore[arg-type]

    _run(script, None, fn, dialect_name=crm.engine.dialect.name,
         starting_rev=sorted(versions or ()) or None, output=output)
    return output.getvalue()


def _clear_id_numbers(crm: CRM) -> bool:
    """Whether identities hold ID numbers not yet encrypted (core_0007 not applied)."""
    from sqlalchemy import text

    with crm.engine.connect() as conn:
        if "identities" not in inspect(conn).get_table_names():
            return False
        return conn.execute(text("SELECT 1 FROM identities WHERE kind = 'id_card' AND "
                                 "display NOT LIKE 'v1:%' LIMIT 1")).first() is not None


@dataclass(frozen=True)
class RevisionInfo:
    """One revision of ``recrm db history``."""

    branch: str
    revision: str
    down_revision: str | None
    depends_on: list[str]
    message: str
    applied: bool


def history(crm: CRM) -> list[RevisionInfo]:
    """The enabled branches' revisions, oldest first per branch, and which are applied."""
    script = script_directory()
    with crm.engine.connect() as conn:
        versions = read_versions(conn) or set()
    applied = applied_revisions(versions, [core_branch(), *installed_branches().values()])
    out: list[RevisionInfo] = []
    for branch in enabled_branches(crm):
        for rev_id in branch.revisions:
            found = script.get_revision(rev_id)
            assert found is not None
            out.append(RevisionInfo(
                branch.name, found.revision, _first(found.down_revision),
                list(_all(found.dependencies)), (found.doc or "").strip().splitlines()[0],
                found.revision in applied))
    return out


def _first(value: Any) -> str | None:
    values = _all(value)
    return values[0] if values else None


def _all(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def declared_metadata(branches: Sequence[Branch]) -> MetaData:
    """The declared tables the given branches own, on a MetaData of their own."""
    from . import tables  # noqa: F401  (the core's tables, declared on Base)

    owned = {name for b in branches for name in b.tables}
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for table in Base.metadata.sorted_tables:
        if table.name in owned:
            table.to_metadata(metadata)
    return metadata


def differences(crm: CRM) -> list[str]:
    """What ``recrm db check`` reports: enabled branches not at their heads, and every
    difference Alembic's autogenerate finds between the tables those branches'
    code declares and the database (other tables are left out: a disabled plugin's,
    or those of a plugin without migrations)."""
    from alembic.autogenerate import compare_metadata

    from .schema import schema_state, unowned_tables

    found: list[str] = []
    installed = installed_branches()
    state = schema_state(crm, installed)
    if state.kind != "current":
        found.append(state.message or "the database is empty: run `recrm db upgrade`")
        if state.kind in ("empty", "unversioned"):
            return found
    branches = enabled_branches(crm, installed)
    declare_tables(crm)  # every table, those without a branch (ignored below) too
    metadata = declared_metadata(branches)
    ignored = {VERSION_TABLE, *(t.name for t in unowned_tables(installed))}
    ignored |= {n for b in installed.values() for n in b.tables} - set(metadata.tables)

    def include(obj: Any, name: str | None, kind: str, reflected: bool, _other: Any) -> bool:
        return not (kind == "table" and name in ignored)

    with crm.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={
            "target_metadata": metadata, "include_object": include, "compare_type": True})
        diffs = compare_metadata(context, metadata)
    found.extend(_describe(d) for d in diffs)
    return found


def _describe(diff: Any) -> str:
    """One line for one autogenerate difference (a tuple, or a list of column ones)."""
    if isinstance(diff, list):
        return "; ".join(_describe(d) for d in diff)
    kind, *rest = diff
    names = []
    for item in rest:
        name = getattr(item, "name", None)
        table = getattr(getattr(item, "table", None), "name", None)
        if name is not None:
            names.append(f"{table}.{name}" if table and table != name else str(name))
        elif isinstance(item, str):
            names.append(item)
    return f"{kind.replace('_', ' ')}: {' '.join(names)}".strip()


def revisions_file_for(script: ScriptDirectory, branch: str) -> dict[str, Any]:
    """What ``revisions.json`` of ``branch`` must hold, from its scripts: its
    revisions oldest first and the tables its head has (an in-memory SQLite migrated
    to the head of the branch and of what it depends on)."""
    heads = [r for r in script.get_revisions(f"{branch}@head") if r is not None]
    if len(heads) != 1:
        raise MigrationError(f"branch {branch!r} has {len(heads)} heads; merge them")
    chain = [r.revision for r in script.revision_map.iterate_revisions(
        heads[0].revision, "base", select_for_downgrade=True)
        if r is not None and branch in r.branch_labels]
    chain.reverse()
    needs = {rev: sorted(_all(_revision(script, rev).dependencies))
             for rev in chain}
    needed = {d for deps in needs.values() for d in deps} - set(chain)
    from sqlalchemy import create_engine

    before = _tables_at(script, create_engine("sqlite://"), sorted(needed))
    after = _tables_at(script, create_engine("sqlite://"), heads[0].revision)
    return {"branch": branch, "revisions": chain, "tables": sorted(after - before),
            "needs": {rev: deps for rev, deps in needs.items() if deps}}


def _tables_at(script: ScriptDirectory, engine: Any, target: Any) -> set[str]:
    if not target:
        return set()
    targets = tuple(_all(target))
    with engine.begin() as conn:
        _run(script, conn, lambda rev, _c: script._upgrade_revs(targets, rev))  # type: ignore[arg-type]
        return set(inspect(conn).get_table_names()) - {VERSION_TABLE}


def write_revisions_file(branch: Branch | str) -> Path:
    """Regenerate a branch's ``revisions.json`` from its scripts."""
    name = branch if isinstance(branch, str) else branch.name
    # not read_branch: the file is missing while the branch's first revision is written
    directory = core_branch().directory if name == CORE_BRANCH else \
        installed_branch_directories()[name]
    path = directory / REVISIONS_FILE
    data = revisions_file_for(script_directory(), name)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def new_revision(crm: CRM, branch: str, message: str, *, autogenerate: bool = False) -> Path:
    """Write the next revision of ``branch`` (``core`` or an enabled plugin whose
    ``recrm.migrations`` package exists; an empty one starts the branch, depending on
    the core's head) and regenerate its ``revisions.json``. ``autogenerate`` fills it
    from what the database (at the heads) lacks of the branch's declared tables."""
    import re

    from alembic.autogenerate import RevisionContext

    if branch == CORE_BRANCH:
        known: Branch = core_branch()
    else:
        installed = installed_branches()
        if branch not in installed or branch not in crm.plugin_names:
            raise MigrationError(f"plugin {branch!r} is not enabled or declares no "
                                 "recrm.migrations package")
        known = installed[branch]
    adopted: frozenset[str] = frozenset()
    if not known.revisions and branch != CORE_BRANCH:
        # The first revision takes over the plugin's tables that no branch creates (those
        # named after it, created directly so far): compared as absent from the
        # database, so it creates them even where they were created directly.
        from .schema import unmigrated_tables

        adopted = frozenset(t.name for t in unmigrated_tables(crm)
                            if t.name.startswith(f"{branch}_"))
        known = replace(known, tables=adopted)
    # Autogenerate compares with a database at every head it knows: the enabled ones.
    script = script_directory(enabled_branches(crm))
    first = not known.revisions
    rev_id = f"{branch}_{len(known.revisions) + 1:04d}"
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_")[:40]
    config = Config()
    config.set_main_option("script_location", str(ENVIRONMENT))
    # the core's tables too, for the foreign keys; only the branch's are compared
    declare_tables(crm)
    target = declared_metadata([core_branch(), known])
    config.attributes.update(target_metadata=target, include_object=(
        lambda _obj, name, kind, _reflected, _other: kind != "table" or name in known.tables),
        include_name=lambda name, kind, _parent: kind != "table" or name not in adopted)
    revision_context = RevisionContext(
        config, script, {
            "message": message, "autogenerate": autogenerate, "rev_id": rev_id,
            "head": "base" if first else f"{branch}@head", "splice": first,
            "branch_label": branch if first else None,
            "version_path": str(known.directory), "sql": False, "depends_on":
            core_branch().head if first and branch != CORE_BRANCH else None,
        })
    with _write_connection(crm) as conn:
        config.attributes["connection"] = conn
        if autogenerate:
            def fn(rev: Any, context: Any) -> Any:
                revision_context.run_autogenerate(rev, context)
                return []

            _run(script, conn, fn, config=config)
        else:
            def fn_plain(rev: Any, context: Any) -> Any:
                revision_context.run_no_autogenerate(rev, context)
                return []

            _run(script, conn, fn_plain, config=config)
    written = next(iter(revision_context.generate_scripts()))
    assert written is not None
    path = Path(written.path)
    if slug:
        path = path.rename(path.with_name(f"{rev_id}_{slug}.py"))
    write_revisions_file(branch)
    return path


def _revision(script: ScriptDirectory, rev: str) -> Any:
    found = script.get_revision(rev)
    if found is None:
        raise MigrationError(f"no revision {rev!r}")
    return found
