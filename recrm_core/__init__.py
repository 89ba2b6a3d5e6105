"""recrm: a plugin-based customer-relationship SDK for real-estate developers.

Everything public is re-exported here; other modules are implementation detail.
"""

from __future__ import annotations

from .consent import consent_granted_clause, consent_withdrawn_clause
from .crm import CRM
from .csvsource import (
    CUSTOMER_COLUMNS,
    ImportFileError,
    ImportReadError,
    UnknownColumns,
    Vocabulary,
)
from .customers import AddResult
from .db import Base, UnitOfWork, UTCDateTime, utcnow, valid_id
from .demo import DemoSection, DemoSummary, run_demo
from .errors import (
    ConfigError,
    IdentityConflict,
    InvalidInput,
    NotFound,
    PluginError,
    RecrmError,
    Refused,
)
from .errorsfile import ErrorsFile
from .hooks import hookimpl, hookspec
from .identity import (
    IdentityError,
    mask_mobile,
    normalise_email,
    normalise_id_card,
    normalise_mobile,
)
from .importing import ImportProgress, ImportStopped
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
    IdentityEntry,
    ImportedCustomer,
    ImportResult,
    Interaction,
    InteractionIn,
    Message,
    OwnerChange,
    Project,
    ProjectLink,
    RejectedRow,
    StageChange,
    TimelineEntry,
)
from .projects import project_code
from .segments import OPS, SegmentField
from .tabular import TableSource, open_table
from .values import PERSONAS, STAGES, check_storable

__version__ = "0.1.0"

__all__ = [
    "CRM",
    "CUSTOMER_COLUMNS",
    "OPS",
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
    "DemoSummary",
    "DuplicatePair",
    "ErrorsFile",
    "IdentityConflict",
    "IdentityEntry",
    "IdentityError",
    "ImportFileError",
    "ImportProgress",
    "ImportReadError",
    "ImportResult",
    "ImportStopped",
    "ImportedCustomer",
    "Interaction",
    "InteractionIn",
    "InvalidInput",
    "Message",
    "NotFound",
    "OwnerChange",
    "PluginError",
    "Project",
    "ProjectLink",
    "RecrmError",
    "Refused",
    "RejectedRow",
    "SegmentField",
    "StageChange",
    "TableSource",
    "TimelineEntry",
    "UTCDateTime",
    "UnitOfWork",
    "UnknownColumns",
    "Vocabulary",
    "__version__",
    "check_storable",
    "consent_granted_clause",
    "consent_withdrawn_clause",
    "hookimpl",
    "hookspec",
    "mask_mobile",
    "normalise_email",
    "normalise_id_card",
    "normalise_mobile",
    "open_table",
    "project_code",
    "run_demo",
    "utcnow",
    "valid_id",
]
