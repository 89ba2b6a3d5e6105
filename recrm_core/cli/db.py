"""``recrm db``: the migrations (the core's branch and one per enabled plugin)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import RecrmError
from . import CliContext, cli, get_crm
from .output import confirm_or_refuse, echo, emit_json, info, table


@cli.group("db")
@click.pass_context
def db(ctx: click.Context) -> None:
    """Schema migrations: upgrade, downgrade, current, history, check, sql; rotate-key."""
    obj = ctx.find_object(CliContext)
    if obj is not None:
        # These commands are how a database behind or ahead of the code is mended.
        obj.check_schema = False


@db.command("upgrade")
@click.option("--plugin", metavar="NAME", help="Only this branch (core or a plugin), with "
              "the core revisions it depends on.")
@click.option("--to", "to", metavar="REV", help="Stop at this revision (default: head).")
@click.pass_context
def upgrade(ctx: click.Context, plugin: str | None, to: str | None) -> None:
    """Upgrade the database to the code's heads; recognise and stamp one made before
    migrations first."""
    from ..migrating import upgrade as run_upgrade
    from ..schema import create_unmigrated_tables

    crm = get_crm(ctx)
    applied = run_upgrade(crm, plugin, to)
    create_unmigrated_tables(crm)
    info(f"applied {', '.join(applied)}" if applied else "already up to date")
    from .setup import provide_key_file

    provide_key_file(crm, anywhere=False)


@db.command("downgrade")
@click.option("--plugin", metavar="NAME", required=True,
              help="The branch to downgrade: core or a plugin's name.")
@click.option("--to", "to", metavar="REV", required=True,
              help="The revision to go back to, or base (removes the branch's tables).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.pass_context
def downgrade(ctx: click.Context, plugin: str, to: str, yes: bool) -> None:
    """Downgrade one branch to a revision (base: remove its tables). What the undone
    revisions added is dropped with its data: asks on a terminal, else needs --yes."""
    from ..migrating import downgrade as run_downgrade

    crm = get_crm(ctx)
    confirm_or_refuse(
        f"this downgrades branch {plugin!r} to {to!r}: the tables and columns its undone "
        "revisions added are dropped, with their data", yes=yes)
    undone = run_downgrade(crm, plugin, to)
    info(f"undid {', '.join(undone)}" if undone else "nothing to undo")


@db.command("current")
@click.option("--json", "as_json", is_flag=True, help="Print one line of JSON.")
@click.pass_context
def current(ctx: click.Context, as_json: bool) -> None:
    """Each enabled branch's revision in the database and in the code."""
    from ..schema import enabled_branches, schema_state

    crm = get_crm(ctx)
    state = schema_state(crm)
    rows = [{"branch": b.name, "database": state.at.get(b.name), "head": b.head,
             "current": state.at.get(b.name) == b.head} for b in enabled_branches(crm)]
    if as_json:
        emit_json({"state": state.kind, "message": state.message, "branches": rows})
        return
    table("migrations", ["branch", "database", "head", "current"],
          [(r["branch"], r["database"], r["head"], "yes" if r["current"] else "no")
           for r in rows])
    if state.message:
        info(state.message)


@db.command("history")
@click.pass_context
def history(ctx: click.Context) -> None:
    """The enabled branches' revisions, oldest first, and which are applied."""
    from ..migrating import history as read_history

    table("revisions", ["branch", "revision", "after", "needs", "applied", "what"],
          [(r.branch, r.revision, r.down_revision, ", ".join(r.depends_on),
            "yes" if r.applied else "no", r.message) for r in read_history(get_crm(ctx))])


@db.command("check")
@click.pass_context
def check(ctx: click.Context) -> None:
    """Exit 1 listing every difference between the declared tables and the database."""
    from ..migrating import differences
    from ..schema import unmigrated_tables

    crm = get_crm(ctx)
    found = differences(crm)
    unmigrated = unmigrated_tables(crm)
    if unmigrated:
        info("warning: tables without migrations (created directly): "
             + ", ".join(_owned(crm.plugin_names, t.name) for t in unmigrated))
    if found:
        for line in found:
            echo(line)
        raise RecrmError(f"{len(found)} difference(s) between the code and the database")
    info("the database matches the code")


def _owned(plugins: list[str], table_name: str) -> str:
    owner = next((p for p in plugins if table_name.startswith(f"{p}_")), None)
    return f"{table_name} (plugin {owner!r}, unmigrated)" if owner else table_name


@db.command("sql")
@click.pass_context
def sql(ctx: click.Context) -> None:
    """Print the upgrade from the database's revisions to the heads as SQL."""
    from ..migrating import upgrade_sql

    click.echo(upgrade_sql(get_crm(ctx)), nl=False)


@db.command("revision")
@click.option("--plugin", metavar="NAME", required=True,
              help="The branch: core or a plugin's name (its first revision starts it).")
@click.option("-m", "--message", required=True, help="What the revision does.")
@click.option("--autogenerate", is_flag=True,
              help="Fill it from the differences between the tables and the database.")
@click.pass_context
def revision(ctx: click.Context, plugin: str, message: str, autogenerate: bool) -> None:
    """For plugin authors: write a new revision of a branch and its revisions.json."""
    from ..migrating import new_revision

    path = new_revision(get_crm(ctx), plugin, message, autogenerate=autogenerate)
    info(f"wrote {path}")


@db.command("rotate-key")
@click.option("--new-key-file", "new_key_file", required=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the new key file first (a rerun after a crash finds "
              "it there and goes on); at the end it replaces the configured key file.")
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True,
              help="ID numbers re-encrypted per committed transaction.")
@click.pass_context
def rotate_key(ctx: click.Context, new_key_file: Path, batch_size: int) -> None:
    """Re-encrypt the ID numbers with a new encryption key (resumable); the hashing
    and signing keys stay (matching and the links already sent keep working)."""
    from ..rotation import rotate_key as run_rotation

    crm = get_crm(ctx)
    done = run_rotation(crm, new_key_file, batch_size=batch_size,
                        after_batch=lambda n: info(f"re-encrypted {n} ID number(s)"))
    info(f"the key file {str(done.key_file)!r} now holds encryption key {done.key_id} "
         f"({done.reencrypted} ID number(s) re-encrypted); back it up")
