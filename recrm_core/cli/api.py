"""``recrm serve`` and ``recrm apikey ...``: the HTTP API and its keys (docs/api.md)."""

from __future__ import annotations

import os

import click

from ..crm import CRM
from ..errors import ConfigError, InvalidInput, RecrmError
from . import cli, current_actor, get_crm, pass_crm
from .customers import bad_value, json_option
from .output import emit_json, info, local_time, table

#: uvicorn's log levels, quietest first
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
#: the factory ``--workers N`` processes build their app with (from the environment)
APP_FACTORY = "recrm_core.api.serving:app_from_environment"
#: seconds uvicorn's supervisor waits for a ``--workers N`` process to answer its health
#: check before it kills and replaces it. uvicorn's 5 s is shorter than a worker's
#: start on a loaded host: a spawned worker first imports the ``recrm`` command's
#: modules again (3.6-4.3 s wall at load 17) and answers nothing meanwhile, so the
#: supervisor replaced its workers in a loop and none ever served.
WORKER_HEALTHCHECK_SECONDS = 30


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="TCP port to listen on (refused, exit 1, when it is taken).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes (rate limits are counted per process).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info",
              show_default=True, metavar="LEVEL",
              help="The server's log level on stderr: " + ", ".join(LOG_LEVELS) + ".")
def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Serve the HTTP API (needs recrm[api]): /v1, /docs, /openapi.json, /healthz."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigError("recrm serve needs the api extra: pip install 'recrm[api]'") from None
    _check_port_free(host, port)
    crm = get_crm()
    try:
        from ..api import create_app
    except ImportError:
        raise ConfigError("recrm serve needs the api extra: pip install 'recrm[api]'") from None
    from ..api.serving import clean_exit_on_sigterm, log_config

    if workers == 1:
        app = create_app(crm)  # plugin route clashes fail here, before listening
        with clean_exit_on_sigterm():
            uvicorn.run(app, host=host, port=port, log_level=log_level,
                        log_config=log_config(), proxy_headers=False, server_header=False)
        return
    create_app(crm)  # fail once, here, rather than in every worker
    # Workers are new processes: they build their CRM from what this one used.
    os.environ["RECRM_DATABASE_URL"] = crm.config.database_url
    if crm.config_file is not None:
        os.environ["RECRM_CONFIG"] = str(crm.config_file)
    if crm.key_file is not None:
        os.environ.setdefault("RECRM_KEY_FILE", str(crm.key_file))
    crm.close()
    with clean_exit_on_sigterm():
        uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, log_config=log_config(), proxy_headers=False,
                    server_header=False,
                    timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS)


def _check_port_free(host: str, port: int) -> None:
    """One line, before anything starts, when the address cannot be listened on
    (uvicorn would log its start-up, the error and its shutdown)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise click.BadParameter(f"cannot resolve {host!r}", param_hint="--host") from None
    family, kind, proto, _, address = infos[0]
    probe = socket.socket(family, kind, proto)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
    except OSError as exc:
        raise RecrmError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    finally:
        probe.close()


@cli.group()
def apikey() -> None:
    """API keys: create, list, revoke (admin)."""


@apikey.command("create")
@click.option("--staff", "staff_id", required=True, metavar="ID",
              help="The member of staff the key acts as.")
@click.option("--role", help="The role its calls have (default: the staff member's).")
@click.option("--name", help="What the key is for, e.g. 'sales-office app'.")
@json_option
@pass_crm
def create_cmd(crm: CRM, staff_id: str, role: str | None, name: str | None,
               as_json: bool) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    try:
        created = crm.apikeys.create(staff_id, role=role, name=name, actor=current_actor())
    except InvalidInput as exc:
        raise bad_value(exc, {"staff": "--staff"}) from None
    if as_json:
        emit_json(created)
        return
    info(f"API key {created.prefix} for {created.staff_id} ({created.role}); "
         "it is shown once, keep it now:")
    click.echo(created.key)


@apikey.command("list")
@json_option
@pass_crm
def list_cmd(crm: CRM, as_json: bool) -> None:
    """Every key (revoked ones too), without secrets."""
    keys = crm.apikeys.list(actor=current_actor())
    if as_json:
        emit_json(keys)
        return
    zone = crm.config.zone
    table("API keys", ["id", "prefix", "staff", "role", "name", "created", "revoked"],
          [(k.id, k.prefix, k.staff_id, k.role, k.name or "", local_time(k.created_at, zone),
            local_time(k.revoked_at, zone) if k.revoked_at else "") for k in keys])


@apikey.command("revoke")
@click.argument("key", metavar="KEY")
@json_option
@pass_crm
def revoke_cmd(crm: CRM, key: str, as_json: bool) -> None:
    """Revoke a key by id, prefix (rk_xxxxxxxx) or the whole key."""
    revoked = crm.apikeys.revoke(key, actor=current_actor())
    if as_json:
        emit_json(revoked)
    else:
        info(f"revoked API key {revoked.prefix} ({revoked.staff_id})")
