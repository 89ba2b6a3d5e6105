"""Hook specifications: the audit log, webhooks, reports, the HTTP API and the demo."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import hookspec

if TYPE_CHECKING:
    from ...api.routes import ApiRoutes
    from ...crm import CRM
    from ...demo import DemoSection
    from ...reports import ReportSpec


# -- the audit log ----------------------------------------------------------------------


@hookspec
def recrm_register_audit_actions(register: Callable[[str, str], None]) -> None:
    """Register the actions the plugin records in the audit log.

    Fires once per CRM, the first time the audit log is written or its actions are
    listed; outside any transaction. The core's actions (``disclose``, ``export``,
    ``erase``, ``merge``, ``reassign``, ``pool``, ``consent``, ``import``,
    ``bulk_send``, ``prune``, ``apikey``, ``webhook``) need no registration;
    ``crm.audit.record(uow, name, ...)`` refuses a name nobody registered, so a typo
    cannot slip into a record kept for years.

    :param register: call ``register(name, description)``; ``name`` is lower-case
        letters, digits, ``_`` and ``.``, best prefixed with the plugin's name
        (``membership.redeem``); registering a name twice (or a core one) is an error.
    """


# -- webhooks ---------------------------------------------------------------------------


@hookspec
def recrm_webhook_events(register: Callable[[str, str], None]) -> None:
    """Declare the webhook event types the plugin sends (docs/api.md#webhooks).

    Fires once per CRM, the first time event types are listed, a subscription is
    added or an event is emitted; outside any transaction. Subscribers name these
    types in ``recrm webhook add --events``; the plugin then writes each event inside
    the unit of work of the change it describes, so it is sent only if the change
    commits::

        @hookimpl
        def recrm_webhook_events(register):
            register("sales.contract_signed", "a deal's contract was signed")

        # in the service, inside the operation's unit of work
        uow.crm.webhooks.emit(uow, "sales.contract_signed",
                              {"deal_id": deal.id, "unit": deal.unit},
                              customer_id=deal.customer_id)

    ``emit`` writes nothing (and returns ``None``) when no subscription wants the
    type. Pass the ``customer_id`` the event is about: an erasure deletes that
    person's events, and the export lists them.

    :param register: call ``register(name, description)``; ``name`` is
        ``<plugin>.<event>`` (the plugin's own name, a dot, lower-case letters, digits
        and ``_``), ``description`` says when it is sent (``recrm webhook events``
        lists it). A name without the plugin's prefix, or registered twice, is a
        :class:`~recrm_core.errors.PluginError` naming the plugin.
    """


# -- reports ----------------------------------------------------------------------------


@hookspec
def recrm_reports(register: Callable[[ReportSpec], None]) -> None:
    """Register the plugin's management reports (``recrm report list``).

    Fires once per CRM, the first time reports are listed or one is run (and again
    when the set of plugins changes); outside any transaction. Each registered report
    runs from ``recrm report NAME``, ``crm.reports.run(NAME, request)``,
    ``GET /v1/reports/NAME`` and the dashboard (``recrm report dashboard``), with
    every output (table, ``--json``, ``--csv``, ``--xlsx``, ``--svg``, ``--png``)
    made from the :class:`~recrm_core.reports.Report` it returns::

        from recrm_core.reports import Chart, Column, Report, ReportSpec, Series

        def _points(crm, request):
            rows = ...  # aggregates computed in SQL, honouring request.project,
                        # request.start/end (inclusive days) and request.by
            return Report(name="membership.points", title="Points by month",
                          columns=[Column(key="period", title="Period"),
                                   Column(key="earned", title="Earned", kind="int")],
                          rows=rows,
                          chart=Chart(kind="line", x="period",
                                      series=(Series(column="earned"),)))

        @hookimpl
        def recrm_reports(register):
            register(ReportSpec(name="membership.points", title="Points",
                                description="points earned and spent per period",
                                run=_points))

    :param register: call ``register(spec)`` with a
        :class:`~recrm_core.reports.ReportSpec`; its ``name`` is ``<plugin>.<name>``
        (the plugin's own name first). A name without the prefix, or one registered
        twice, is a :class:`~recrm_core.errors.ConfigError` naming the plugin. The
        ``run`` function receives the CRM and a
        :class:`~recrm_core.reports.ReportRequest` and must respect
        ``request.actor`` (a partner sees only what it may) and keep personal data
        out of aggregates.
    """


# -- the HTTP API -----------------------------------------------------------------------


@hookspec
def recrm_api_routes(crm: CRM, routes: ApiRoutes) -> None:
    """Add routes to the HTTP API (``recrm serve``, ``recrm_core.api.create_app``).

    Fires once per app, when ``create_app`` builds it, for each plugin on its own;
    outside any transaction. Add FastAPI routes to two routers. Keep them in a
    module of their own that the hook imports when it fires, so a CLI command
    never pays for importing FastAPI::

        # recrm_myplugin/hooks.py
        @hookimpl
        def recrm_api_routes(crm, routes):
            from .api import add_routes

            add_routes(crm, routes)

        # recrm_myplugin/api.py
        from recrm_core.api import CurrentActor

        def add_routes(crm, routes):
            @routes.api.get("/balance/{customer_id}", response_model=Balance)
            def balance(customer_id: int, actor: CurrentActor) -> Balance:
                return my_service(crm).balance(customer_id, actor=actor)

    ``routes.api`` is served under ``/v1/<plugin>/`` with the plugin's OpenAPI tag
    and needs an API key; declare ``actor: CurrentActor`` and pass it to the
    services, so masking and the audit apply as in the CLI. ``routes.public`` is
    served at the paths it declares and needs no key: pages and provider callbacks,
    at a short prefix the plugin owns (``/s/{token}``); it may not use ``/v1``,
    ``/docs``, ``/openapi.json`` or ``/healthz``. Raise the SDK's exceptions
    (``NotFound`` → 404, ``Forbidden`` → 403, ``Refused`` → 409, ``InvalidInput`` →
    422); responses are problem documents. Operation ids are
    ``<plugin>_<function name>``, stable as long as the function keeps its name.
    FastAPI reads the route functions' annotations: in a module with ``from
    __future__ import annotations`` the names they use (``CurrentActor``, your
    models) must be the module's globals, not local imports.
    Two plugins (or a plugin and the core) declaring one method and path stop the
    app from being built with an error naming both.

    :param crm: the CRM the app serves.
    :param routes: this plugin's :class:`recrm_core.api.ApiRoutes` (``api``,
        ``public``).
    """


# -- demo -----------------------------------------------------------------------------


@hookspec
def recrm_demo(crm: CRM, rng: random.Random, customer_ids: list[int],
               anchor: dt.datetime) -> DemoSection | None:
    """Seed the plugin's demo data and describe it in the demo summary.

    Fires from ``recrm demo`` after the core seeded projects, customers, visits,
    contracts, handovers and cases; outside a transaction (use the CRM's services,
    each of which is its own operation). Use only ``rng`` for randomness so the
    demo is deterministic for a seed.

    :param crm: the demo CRM.
    :param rng: a seeded random generator.
    :param customer_ids: ids of the customers the core created.
    :param anchor: midnight (business time) of the demo's day, the moment the core
        dated its history from (at hours of whole days before it): count a window
        from it rather than from the clock, so that the same seed gives the same
        section in the morning as in the afternoon (``recrm_core.demo.demo_anchor``).

    .. versionchanged:: 0.2
       ``anchor`` added (an implementation may leave it out).
    :return: a :class:`~recrm_core.demo.DemoSection` (title and rows) for the
        summary, or ``None``.
    """
