"""The customer service: add with identity resolution, update, find, stages, merge,
reassign and the 360 view.

One module per concept (:mod:`.loading` reads, :mod:`.changes` what the writes share,
:mod:`.adding`, :mod:`.views`, :mod:`.stages`, :mod:`.merging`); every name other
modules import from ``recrm_core.customers`` is re-exported here.
"""

from __future__ import annotations

from ..models import AddResult as AddResult
from .adding import _Adding
from .changes import STAGE_INTERACTIONS as STAGE_INTERACTIONS
from .changes import _project_codes as _project_codes
from .changes import email_twins as email_twins
from .changes import interaction_entry as interaction_entry
from .changes import link_project as link_project
from .changes import recompute_stage as recompute_stage
from .changes import validate_record as validate_record
from .loading import current_for_write as current_for_write
from .loading import customer_by_key as customer_by_key
from .loading import erased as erased
from .loading import id_cards_of as id_cards_of
from .loading import load_customer as load_customer
from .loading import load_customers as load_customers
from .loading import owners_of_keys as owners_of_keys
from .loading import resolve_for_write as resolve_for_write
from .loading import resolve_id as resolve_id
from .loading import resolve_ids as resolve_ids
from .loading import resolve_ids_for_write as resolve_ids_for_write
from .merging import _Merging
from .stages import _Stages
from .views import _Views


class CustomerService(_Adding, _Views, _Stages, _Merging):
    """``crm.customers``."""
