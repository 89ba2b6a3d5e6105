"""recrm: a plugin-based customer-relationship SDK for real-estate developers.

Everything public is re-exported here; other modules are implementation detail.
"""

from __future__ import annotations

from .crm import CRM
from .customers import AddResult
from .db import Base, UnitOfWork, UTCDateTime, utcnow
from .demo import DemoSection
from .errors import (
    ConfigError,
    IdentityConflict,
    InvalidInput,
    NotFound,
    PluginError,
    RecrmError,
    Refused,
)
from .hooks import hookimpl, hookspec
from .identity import (
    IdentityError,
    mask_mobile,
    normalise_email,
    normalise_id_card,
    normalise_mobile,
)
from .models import (
    Actor,
    Case,
    CaseHistoryEntry,
    CaseIn,
    Consent,
    Customer,
    CustomerIn,
    CustomerUpdate,
    CustomerView,
    DeliveryResult,
    DuplicatePair,
    ImportResult,
    Interaction,
    InteractionIn,
    Message,
    Project,
    ProjectLink,
    RejectedRow,
    StageChange,
    TimelineEntry,
)
from .segments import SegmentField
from .values import PERSONAS, STAGES

__version__ = "0.1.0"

__all__ = [
    "CRM",
    "PERSONAS",
    "STAGES",
    "Actor",
    "AddResult",
    "Base",
    "Case",
    "CaseHistoryEntry",
    "CaseIn",
    "ConfigError",
    "Consent",
    "Customer",
    "CustomerIn",
    "CustomerUpdate",
    "CustomerView",
    "DeliveryResult",
    "DemoSection",
    "DuplicatePair",
    "IdentityConflict",
    "IdentityError",
    "ImportResult",
    "Interaction",
    "InteractionIn",
    "InvalidInput",
    "Message",
    "NotFound",
    "PluginError",
    "Project",
    "ProjectLink",
    "RecrmError",
    "Refused",
    "RejectedRow",
    "SegmentField",
    "StageChange",
    "TimelineEntry",
    "UTCDateTime",
    "UnitOfWork",
    "__version__",
    "hookimpl",
    "hookspec",
    "mask_mobile",
    "normalise_email",
    "normalise_id_card",
    "normalise_mobile",
    "utcnow",
]
