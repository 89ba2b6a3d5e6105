"""``recrm customers ...``"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from ..crm import CRM
from ..db import MAX_ID
from ..errors import InvalidInput
from ..models import Actor, Customer, CustomerView
from . import F, cli, current_actor, pass_crm
from .output import emit_json, info, local_time, table

json_option = click.option("--json", "as_json", is_flag=True, help="Print one line of JSON.")
actor_option = click.option("--actor", metavar="STAFF", help="Staff id performing the change.")


def actor_of(staff: str | None, option: str = "--actor") -> Actor:
    """The command's actor (``--as``), with the staff id given as ``option`` if any; a
    bad one is a usage error."""
    return current_actor(staff or None, option)


def bad_value(exc: InvalidInput, options: Mapping[str, str] | None = None) -> click.BadParameter:
    """A value given on the command line that fails validation is a usage error (exit 2),
    named by its option; ``options`` maps a field to its option where they differ."""
    names = [(options or {}).get(f, f"--{f.replace('_', '-')}") for f in exc.field.split(",") if f]
    return click.BadParameter(exc.reason, param_hint=" / ".join(names) or None)


def customer_rows(crm: CRM, customers: list[Customer]) -> list[tuple[Any, ...]]:
    return [
        (
            c.id,
            c.name,
            ", ".join(c.mobiles),
            c.id_card,
            ", ".join(c.wechat_unionids),
            c.email,
            c.stage,
            ", ".join(f"{p.project}:{p.stage}" for p in c.projects),
        )
        for c in customers
    ]


def show_customers(crm: CRM, customers: list[Customer], as_json: bool) -> None:
    if as_json:
        emit_json(customers)
        return
    table(
        None,
        ["id", "name", "mobiles", "id card", "WeChat", "email", "stage", "projects"],
        customer_rows(crm, customers),
    )


def profile_options(f: F) -> F:
    """``--gender``, ``--birth-date``, ``--persona`` and ``--budget``, as ``add`` and
    ``update`` take them (the profile fields a customer's ID card may decide)."""
    for option in reversed((
        click.option("--gender",
                     help="male or female (男/女, M/F too); must agree with the ID card."),
        click.option("--birth-date", metavar="DATE",
                     help="Date of birth, YYYY-MM-DD (2024/1/2, 2024年1月2日 too); must "
                          "agree with the ID card."),
        click.option("--persona", help="first_time, upgrader, investor, luxury or retiree "
                                       "(刚需/改善/投资/高端/养老)."),
        click.option("--budget", metavar="YUAN",
                     help="Budget in yuan (CNY): 1200000, 1,200,000 or 120万."),
    )):
        f = option(f)
    return f


def load_segment_argument(value: str) -> dict[str, Any]:
    """Inline JSON when it starts with '{', else a file path (usage error if bad)."""
    from ..regularfile import open_regular
    from ..segments import MAX_DEFINITION_BYTES, parse_definition

    text = value.strip()
    if not text.startswith("{"):
        try:
            # A FIFO would wait for a writer forever: only a regular file is read.
            with open_regular(value, lambda why: click.BadParameter(why, param_hint="--segment")
                              ) as file:
                # Read one byte past the limit, never the whole of a huge file.
                raw = file.read(MAX_DEFINITION_BYTES + 1)
            text = raw.decode("utf-8-sig")
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {value!r}: {exc.strerror}", param_hint="--segment"
            ) from None
        except UnicodeDecodeError:
            raise click.BadParameter(f"{value!r} is not UTF-8 text",
                                     param_hint="--segment") from None
    try:
        return parse_definition(text)
    except InvalidInput as exc:
        raise click.BadParameter(exc.reason, param_hint="--segment") from None


@cli.group()
def customers() -> None:
    """Customers: add, import, find, show, disclose, export-list, merge, ..."""


@customers.command("add")
@click.option("--name", help="Full name (at most 100 characters).")
@click.option("--mobile", multiple=True, help="Mobile number (repeatable).")
@click.option("--id-card", metavar="NUMBER",
              help="18-character ID-card number (GB 11643 check character); sets gender "
                   "and birth date.")
@click.option("--wechat", multiple=True, metavar="UNIONID", help="WeChat unionid (repeatable).")
@click.option("--email", help="Email address (never merges two customers by itself).")
@profile_options
@click.option("--project", help="Project code to link the customer to.")
@click.option("--source", help="Where the lead came from at --project (ad, call, agency, ...).")
@click.option("--owner-staff", metavar="STAFF",
              help="Staff id of the consultant who owns the customer at --project.")
@click.option("--external-id", metavar="ID", help="The record's id in --source-system.")
@click.option("--source-system", metavar="CODE",
              help="The external system the record came from.")
@actor_option
@json_option
@pass_crm
def add(crm: CRM, actor: str | None, as_json: bool, mobile: tuple[str, ...],
        wechat: tuple[str, ...], **fields: Any) -> None:
    """Add a customer, or merge into the one its mobile / ID card / WeChat unionid match."""
    data = {k: v for k, v in fields.items() if v is not None}
    data["mobiles"] = list(mobile)
    data["wechat_unionids"] = list(wechat)
    who = actor_of(actor)
    try:
        result = crm.customers.add(data, actor=who)
    except InvalidInput as exc:
        raise bad_value(exc, {"wechat_unionid": "--wechat"}) from None
    outcome = "created" if result.created else ("merged" if result.changed else "unchanged")
    shown = crm.access.present(who, [result.customer])[0]
    if as_json:
        emit_json({"outcome": outcome, "customer": shown,
                   "suspected_duplicate_of": result.suspected_duplicate_of})
        return
    info(f"{outcome}: customer {result.customer.id}")
    if result.suspected_duplicate_of:
        info("suspected duplicate of (same email): "
             + ", ".join(map(str, result.suspected_duplicate_of)))
    show_customers(crm, [shown], False)


@customers.command("update")
@click.argument("customer_id", type=int)
@click.option("--name", help="New full name (at most 100 characters).")
@click.option("--email", help="New email address.")
@profile_options
@click.option("--add-mobile", "add_mobiles", multiple=True, metavar="MOBILE",
              help="Add a mobile number; the existing ones stay (repeatable).")
@click.option("--add-wechat", "add_wechat_unionids", multiple=True, metavar="UNIONID",
              help="Add a WeChat unionid (repeatable).")
@actor_option
@json_option
@pass_crm
def update_cmd(crm: CRM, customer_id: int, actor: str | None, as_json: bool,
               add_mobiles: tuple[str, ...], add_wechat_unionids: tuple[str, ...],
               **fields: Any) -> None:
    """Change profile fields of a customer."""
    data: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if add_mobiles:
        data["add_mobiles"] = list(add_mobiles)
    if add_wechat_unionids:
        data["add_wechat_unionids"] = list(add_wechat_unionids)
    if not data:
        raise click.UsageError("nothing to update: give at least one option")
    who = actor_of(actor)
    try:
        customer = crm.customers.update(customer_id, data, actor=who)
    except InvalidInput as exc:
        raise bad_value(exc, {"mobile": "--add-mobile",
                              "wechat_unionid": "--add-wechat"}) from None
    if as_json:
        emit_json(crm.access.present(who, [customer])[0])
    else:
        info(f"updated customer {customer.id}")


@customers.command("find")
@click.option("--mobile", help="A mobile number (matched after normalising, +86 or not).")
@click.option("--id-card", metavar="NUMBER",
              help="An 18-character ID-card number (matched by its keyed hash).")
@click.option("--email", help="An email address (matched lower-cased).")
@click.option("--wechat", metavar="UNIONID", help="A WeChat unionid (matched exactly).")
@json_option
@pass_crm
def find(crm: CRM, mobile: str | None, id_card: str | None, email: str | None,
         wechat: str | None, as_json: bool) -> None:
    """Find customers by exactly one of mobile, ID card, email or WeChat unionid."""
    given = [v for v in (mobile, id_card, email, wechat) if v is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --mobile, --id-card, --email, --wechat")
    try:
        found = crm.customers.find(mobile=mobile, id_card=id_card, email=email,
                                   wechat_unionid=wechat, actor=current_actor())
    except InvalidInput as exc:
        raise bad_value(exc, {"wechat_unionid": "--wechat"}) from None
    show_customers(crm, found, as_json)


@customers.command("count")
@click.option("--segment", metavar="JSON_OR_FILE",
              help="A segment definition: inline JSON (starting with '{') or a file.")
@json_option
@pass_crm
def count(crm: CRM, segment: str | None, as_json: bool) -> None:
    """Count customers (merged-away duplicates are not counted)."""
    if segment is None:
        n = crm.customers.count()
    else:
        definition = load_segment_argument(segment)
        try:
            n = crm.segments.count(definition, actor=current_actor())
        except InvalidInput as exc:
            # str(exc) keeps the path inside the definition (e.g. "all[1].op: ...").
            raise click.BadParameter(str(exc), param_hint="--segment") from None
    if as_json:
        emit_json({"count": n})
    else:
        click.echo(str(n))


@customers.command("show")
@click.argument("customer_id", type=int)
@json_option
@pass_crm
def show(crm: CRM, customer_id: int, as_json: bool) -> None:
    """The 360 view: profile, identities, projects, timeline, cases, consents."""
    view = crm.customers.view(customer_id, actor=current_actor())
    if as_json:
        emit_json(view)
        return
    render_view(crm, view)


def render_view(crm: CRM, view: CustomerView) -> None:
    c = view.customer
    zone = crm.config.zone
    table(
        f"customer {c.id}",
        ["field", "value"],
        [
            ("name", c.name),
            ("mobiles", ", ".join(c.mobiles)),
            ("ID card", c.id_card),
            ("birthplace", view.birthplace),
            ("WeChat unionids", ", ".join(c.wechat_unionids)),
            ("email", c.email),
            ("gender", c.gender),
            ("birth date", c.birth_date),
            ("persona", c.persona),
            ("budget (CNY)", f"{c.budget:,}" if c.budget is not None else None),
            ("stage", c.stage),
            ("external", f"{c.source_system}:{c.external_id}" if c.external_id else None),
            ("created", local_time(c.created_at, zone)),
        ],
    )
    if c.projects:
        table("projects", ["project", "name", "stage", "owner", "source", "first seen"],
              [(p.project, p.project_name, p.stage, p.owner_staff, p.source,
                local_time(p.first_seen_at, zone)) for p in c.projects])
    table("timeline", ["when", "kind", "what", "from"],
          [(local_time(e.at, zone), e.kind, e.title, e.source) for e in view.timeline])
    if view.cases:
        table("cases", ["id", "category", "priority", "status", "level", "subject", "due"],
              [(k.id, k.category, k.priority, k.status, k.level, k.subject,
                local_time(k.sla_due_at, zone)) for k in view.cases])
        escalations = [(k.id, local_time(h.at, zone), h.from_value, h.to_value, h.note)
                       for k in view.cases for h in k.history if h.action == "escalate"]
        if escalations:
            table("escalations", ["case", "when", "from level", "to level", "note"],
                  escalations)
    if view.consents:
        table("consents", ["channel", "purpose", "granted", "since"],
              [(k.channel, k.purpose, "yes" if k.granted else "no",
                local_time(k.recorded_at, zone)) for k in view.consents])
    if view.tasks:
        table("open follow-up tasks", ["id", "due", "kind", "project", "staff", "note"],
              [(t.id, local_time(t.due_at, zone) + ("  OVERDUE" if t.overdue else ""), t.kind,
                t.project, t.owner_staff, t.note) for t in view.tasks])


@customers.command("stage")
@click.argument("customer_id", type=int)
@click.argument("stage")
@click.option("--project", required=True, metavar="CODE",
              help="The project whose stage moves.")
@click.option("--unit", help="The unit (房号) for subscription, contract, handover.")
@click.option("--amount", type=click.IntRange(min=0), help="Amount in CNY.")
@click.option("--force", is_flag=True, help="Allow moving backwards.")
@actor_option
@json_option
@pass_crm
def stage(crm: CRM, customer_id: int, stage: str, project: str, unit: str | None,
          amount: int | None, force: bool, actor: str | None, as_json: bool) -> None:
    """Move a customer's stage at a project (prospect → visitor → subscriber → buyer → owner)."""
    if stage.strip().lower() not in crm.customers.stages():
        raise click.BadParameter(
            f"{stage!r} is not one of {', '.join(crm.customers.stages())}", param_hint="STAGE"
        )
    who = actor_of(actor)
    try:
        customer = crm.customers.set_stage(customer_id, stage, project, unit=unit,
                                           amount=amount, force=force, actor=who)
    except InvalidInput as exc:
        raise bad_value(exc) from None
    if as_json:
        emit_json(crm.access.present(who, [customer])[0])
    else:
        info(f"customer {customer.id} is {stage.strip().lower()} at {project}")


@customers.command("merge")
@click.argument("survivor_id", type=int)
@click.argument("duplicate_id", type=int)
@actor_option
@json_option
@pass_crm
def merge(crm: CRM, survivor_id: int, duplicate_id: int, actor: str | None,
          as_json: bool) -> None:
    """Merge DUPLICATE_ID into SURVIVOR_ID (an id merged away stands for the customer
    it was merged into)."""
    who = actor_of(actor)
    # The SDK merges the customers the ids resolve to (overlapping merges rely on it);
    # the message names the customer actually merged, not an id merged away before.
    with crm.unit_of_work(who, readonly=True) as uow:
        merged = crm.customers.resolve_in(uow, duplicate_id)
    customer = crm.customers.merge(survivor_id, duplicate_id, actor=who)
    if as_json:
        emit_json(crm.access.present(who, [customer])[0])
        return
    loser = str(merged) if merged == duplicate_id else \
        f"{merged} (customer {duplicate_id} had been merged into it)"
    winner = str(customer.id) if customer.id == survivor_id else \
        f"{customer.id} (customer {survivor_id} had been merged into it)"
    info(f"merged {loser} into {winner}")


@customers.command("reassign")
@click.argument("from_staff")
@click.argument("to_staff", required=False)
@click.option("--to-pool", is_flag=True, help="Release them to the public pool instead.")
@click.option("--project", help="Only this project.")
@actor_option
@json_option
@pass_crm
def reassign(crm: CRM, from_staff: str, to_staff: str | None, to_pool: bool,
             project: str | None, actor: str | None, as_json: bool) -> None:
    """Move every customer owned by FROM_STAFF to TO_STAFF, or with --to-pool release
    them to the public pool."""
    if (to_staff is None) == (not to_pool):
        raise click.UsageError("give TO_STAFF or --to-pool (one of them)")
    try:
        if to_pool:
            moved = crm.pool.release_staff(from_staff, project, actor=actor_of(actor))
        else:
            assert to_staff is not None
            moved = crm.customers.reassign(from_staff, to_staff, project,
                                           actor=actor_of(actor))
    except InvalidInput as exc:
        raise click.UsageError(exc.reason) from None
    if as_json:
        emit_json({"released" if to_pool else "reassigned": moved})
    elif to_pool:
        info(f"released {moved} customer-project link(s) of {from_staff} to the pool")
    else:
        info(f"reassigned {moved} customer-project link(s) from {from_staff} to {to_staff}")


@customers.command("duplicates")
@click.option("--limit", type=click.IntRange(min=1, max=MAX_ID),
              help="At most this many groups.")
@json_option
@pass_crm
def duplicates(crm: CRM, limit: int | None, as_json: bool) -> None:
    """Suspected duplicates: customers sharing an email, for review (never auto-merged)."""
    pairs = crm.customers.duplicates(limit, actor=current_actor())
    if as_json:
        emit_json(pairs)
        return
    table("suspected duplicates", ["email", "customers"],
          [(p.email, ", ".join(map(str, p.customer_ids))) for p in pairs])


@customers.command("disclose")
@click.argument("customer_id", type=int)
@click.option("--reason", required=True, help="Why the full details are needed (audited).")
@json_option
@pass_crm
def disclose(crm: CRM, customer_id: int, reason: str, as_json: bool) -> None:
    """Show a customer in full, where your role allows it and a read showed them masked;
    recorded in the audit log with the reason."""
    try:
        view = crm.customers.disclose(customer_id, reason, actor=current_actor())
    except InvalidInput as exc:
        raise bad_value(exc) from None
    if as_json:
        emit_json(view)
        return
    render_view(crm, view)


@customers.command("export-list")
@click.option("--segment", metavar="JSON_OR_FILE",
              help="A segment definition: inline JSON (starting with '{') or a file.")
@click.option("--all", "everyone", is_flag=True, help="Every customer (instead of --segment).")
@click.option("--out", required=True, metavar="FILE",
              help="The file to write: .csv (UTF-8 with BOM, for Excel) or .xlsx.")
@json_option
@pass_crm
def export_list_cmd(crm: CRM, segment: str | None, everyone: bool, out: str,
                    as_json: bool) -> None:
    """Write a list of customers to CSV or XLSX, with the columns and masking your role
    allows; audited with the row count."""
    from ..customerlist import export_list

    if (segment is None) == (not everyone):
        raise click.UsageError("give exactly one of --segment or --all")
    definition = load_segment_argument(segment) if segment is not None else None
    try:
        rows = export_list(crm, out, definition, actor=current_actor())
    except InvalidInput as exc:
        if exc.field == "--out":
            raise click.BadParameter(exc.reason, param_hint="--out") from None
        raise click.BadParameter(str(exc), param_hint="--segment") from None
    if as_json:
        emit_json({"rows": rows, "out": out})
    else:
        info(f"wrote {rows} customer(s) to {out}")


@customers.command("export")
@click.argument("customer_id", type=int)
@click.option("--out", metavar="FILE", help="Write the JSON here (default: standard output).")
@pass_crm
def export_cmd(crm: CRM, customer_id: int, out: str | None) -> None:
    """Everything held about one person, as one JSON document (PIPL Art. 45); audited."""
    import json

    from ..listexport import write_text_atomically

    if out is None or out == "-":  # "-" is standard output, as for most tools
        emit_json(crm.privacy.export(customer_id, actor=current_actor()))
        return

    def write(document: dict[str, Any]) -> None:
        try:
            write_text_atomically(out, json.dumps(document, ensure_ascii=False, indent=2)
                                  + "\n")
        except InvalidInput as exc:
            raise click.BadParameter(exc.reason, param_hint="--out") from None

    document = crm.privacy.export(customer_id, actor=current_actor(), deliver=write)
    info(f"wrote the data of customer {document['customer']['id']} to {out}")


@customers.command("erase")
@click.argument("customer_id", type=int)
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option("--reason", help="Why (the request's reference; kept in the audit).")
@json_option
@pass_crm
def erase_cmd(crm: CRM, customer_id: int, dry_run: bool, reason: str | None,
              as_json: bool) -> None:
    """Erase a person (PIPL Art. 47), with the customers merged into them: every plugin
    takes part, then every column of every table is scanned for their values."""
    try:
        report = crm.privacy.erase(customer_id, reason, dry_run=dry_run, actor=current_actor())
    except InvalidInput as exc:
        raise bad_value(exc) from None
    if as_json:
        emit_json(report)
        return
    table(f"{'plan for erasing' if dry_run else 'erased'} customer {report.customer_id}",
          ["from", "table", "deleted", "anonymised", "retained", "kept because"],
          [(s["source"], s["table"], s["deleted"], s["anonymised"], s["retained"], s["basis"])
           for s in report.steps])
    info(f"verified: none of the person's values in {report.scanned_columns} text columns"
         + ("; nothing was changed (--dry-run)" if dry_run else ""))


# ``customers import`` lives in its own module; registering it here means every way
# of reaching the ``customers`` group (the CLI, another command module) has it.
from . import importing  # noqa: E402,F401
