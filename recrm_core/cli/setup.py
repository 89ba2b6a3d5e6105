"""``recrm init`` and ``recrm plugins``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..config import CONFIG_FILE, DEFAULT_DATABASE_URL
from ..crm import CRM
from ..plugins import describe_installed, describe_loaded
from . import CliContext, cli, get_crm
from .output import emit_json, info, table


@cli.command()
@click.option("--db", "db", metavar="URL",
              help="Database URL to write (same as `recrm --db URL init`).")
@click.pass_context
def init(ctx: click.Context, db: str | None) -> None:
    """Write a starter recrm.toml (if none exists) and create the schema."""
    obj = ctx.find_object(CliContext)
    assert obj is not None
    if db is not None:
        obj.db = db
    path = Path(obj.config_path or CONFIG_FILE)
    if path.exists():
        info(f"{path} exists; left unchanged")
    else:
        url = obj.db or DEFAULT_DATABASE_URL
        names = []
        # Enabling a plugin that fails to load would break every later command.
        for plugin in describe_installed([]):
            if plugin.error is None:
                names.append(plugin.name)
            else:
                info(f"left out plugin {plugin.name!r}: {plugin.error}")
        # JSON string escapes are valid TOML basic strings (a Windows path's backslashes).
        plugins = ", ".join(json.dumps(n) for n in names)
        path.write_text(
            "# recrm configuration: see README.md\n"
            f"database_url = {json.dumps(url)}\n"
            f"plugins = [{plugins}]\n"
            'timezone = "Asia/Shanghai"\n',
            encoding="utf-8",
        )
        info(f"wrote {path}")
        obj.config_path = str(path)
    crm = get_crm(ctx)
    info(f"schema ready on {crm.engine.url.render_as_string(hide_password=True)}")
    provide_key_file(crm, anywhere=True)


def provide_key_file(crm: CRM, *, anywhere: bool) -> None:
    """Create the key file when it is missing, and say so: where it is configured
    (``anywhere``, for ``init``) or only in its default place (``db upgrade``: a
    mistyped key_file must not quietly get a new key, which would match nothing)."""
    from ..keys import create_key_file, default_key_path

    path = crm.key_file
    if path is None:
        info("no key file: set key_file in recrm.toml (or RECRM_KEY_FILE); audited "
             "exports and, later, encrypted ID numbers need it")
        return
    if path.exists():
        return
    if not anywhere and path != default_key_path(crm.config_file, crm.config.database_url):
        info(f"key file {str(path)!r} not found (set by key_file or RECRM_KEY_FILE); "
             "left to you")
        return
    create_key_file(path)
    info(f"created the key file {path} (owner-only): keep a copy with your backups; "
         "without it encrypted data cannot be read")


@cli.group()
def plugins() -> None:
    """Installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one line of JSON.")
@click.pass_context
def plugins_list(ctx: click.Context, as_json: bool) -> None:
    """Installed plugins: enabled or not, their hooks, and the error of a broken one."""
    obj = ctx.find_object(CliContext)
    assert obj is not None
    if obj.crm_factory is not None:  # a CRM given to the CLI (the test harness): describe it
        infos = describe_loaded(obj.crm().pm)
    else:
        infos = describe_installed(obj.settings().plugins)
    if as_json:
        emit_json([vars(i) for i in infos])
        return
    table(
        "plugins",
        ["name", "version", "enabled", "hooks", "error", "warnings"],
        [(i.name, i.version, "yes" if i.enabled else "no", ", ".join(i.hooks), i.error,
          "; ".join(i.warnings)) for i in infos],
    )
