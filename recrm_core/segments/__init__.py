"""Segments: JSON definitions compiled to SQLAlchemy expressions (never string-built SQL).

A definition is a tree of groups and conditions::

    {"all": [
        {"field": "persona", "op": "in", "value": ["investor", "luxury"]},
        {"any": [
            {"field": "budget", "op": "gte", "value": "300万"},
            {"field": "consent.email.marketing", "op": "eq", "value": true}
        ]},
        {"field": "project", "op": "eq", "value": "XL2"},
        {"field": "project_stage", "op": "eq", "value": "owner"}
    ]}

Rules, in the order people trip over them:

* ``{"all": [...]}`` matches when every member does (an empty ``all`` matches every
  customer), ``{"any": [...]}`` when one does (an empty ``any`` matches none),
  ``{"not": X}`` when ``X`` does not. A bare condition is a definition too.
* A condition is ``{"field": F, "op": OP, "value": V}``. ``in``/``not_in`` take a
  non-empty list, ``between`` a ``[low, high]`` pair (inclusive), ``is_null``
  ``true``/``false``, ``contains`` a case-sensitive piece of text (``%`` and ``_``
  are plain characters). Values are checked and converted per field type: dates
  from ISO strings, stages/personas/genders by name (刚需, 男 ... too), budgets
  like ``200万``, mobiles normalised to E.164, date-times without a zone read in
  the business time zone.
* A missing value (NULL) never satisfies ``eq``, ``in``, ``gt`` ... or ``contains``;
  ``ne`` and ``not_in`` are their exact negations, so they do match it.
* ``stage`` and ``project_stage`` compare in funnel order with ``gt``/``lt``/...:
  prospect < visitor < subscriber < buyer < owner.
* Project fields (``project``, ``project_stage``, ``owner_staff``, ``source``, ...)
  describe one customer-project relationship. The project conditions that sit
  together in one group (with groups made only of project conditions) are tested
  on the *same* relationship: ``all[project = XL2, project_stage = owner]`` is
  "owner at XL2", not "owner somewhere and linked to XL2". ``not`` always looks
  at the customer: ``{"not": {"field": "project", "op": "eq", "value": "XL2"}}``
  is "not linked to XL2".
* ``bool`` fields test ``IS TRUE``: a missing flag counts as false.
* Multi-valued fields (``mobile``, ``id_card``, ``wechat_unionid``, plugin fields with
  ``many=True``) match ``eq``/``in``/``contains``/... when *any* of the customer's
  values does; ``ne``/``not_in``/``is_null: true`` when none does.
* Merged-away customers never match.
* Limits, each refused as InvalidInput naming it: nesting deeper than
  :data:`MAX_DEPTH` (checked on JSON text before it is decoded, by
  :func:`parse_definition`), more than :data:`MAX_NODES` conditions and groups,
  more than :data:`MAX_VALUES` values in the lists; text with a NUL or a lone
  surrogate; whole numbers outside 64 bits. Long ``in`` lists are fine up to the
  limit on both backends (they travel as one array parameter).

Plugins add fields named ``<plugin>.<field>`` through the
:func:`~recrm_core.hooks.specs.recrm_segment_fields` hook.
"""

from __future__ import annotations

from .fields import CORE_FIELDS, FIELD_TYPES, OPS, TYPE_OPS, SegmentField
from .parsing import MAX_DEFINITION_BYTES, MAX_DEPTH, MAX_NODES, MAX_VALUES, parse_definition
from .service import SegmentService

__all__ = [
    "CORE_FIELDS",
    "FIELD_TYPES",
    "MAX_DEFINITION_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_VALUES",
    "OPS",
    "TYPE_OPS",
    "SegmentField",
    "SegmentService",
    "parse_definition",
]
