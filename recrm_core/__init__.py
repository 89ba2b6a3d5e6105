"""recrm: a plugin-based customer-relationship SDK for real-estate developers.

Everything public is re-exported here; other modules are implementation detail.

The names are imported on first use (PEP 562), so ``import recrm_core`` — and every
``recrm`` command — pays only for the modules it touches: a command that counts
customers never imports the demo, the importer or Faker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    "CUSTOMER_COLUMNS": "csvsource",
    "Vocabulary": "csvsource",
    "ErrorsFile": "errorsfile",
    "TableSource": "tabular",
    "open_table": "tabular",
    "consent_granted_clause": "consent",
    "consent_withdrawn_clause": "consent",
    "CRM": "crm",
    "ImportFileError": "csvsource",
    "ImportReadError": "csvsource",
    "UnknownColumns": "csvsource",
    "AddResult": "models",
    "Base": "db",
    "UnitOfWork": "db",
    "UTCDateTime": "db",
    "utcnow": "db",
    "valid_id": "db",
    "DemoSection": "demo",
    "DemoSummary": "demo",
    "run_demo": "demo",
    "ConfigError": "errors",
    "IdentityConflict": "errors",
    "InvalidInput": "errors",
    "NotFound": "errors",
    "PluginError": "errors",
    "RecrmError": "errors",
    "Refused": "errors",
    "Forbidden": "errors",
    "SchemaMismatch": "errors",
    "UnknownProject": "errors",
    "hookimpl": "hooks",
    "hookspec": "hooks",
    "IdentityError": "identity",
    "clean_code": "identity",
    "mask_mobile": "identity",
    "mask_id_card": "identity",
    "mask_email": "identity",
    "mask_name": "identity",
    "AuditEntry": "models",
    "ErasureStep": "models",
    "Department": "models",
    "DepartmentIn": "models",
    "Staff": "models",
    "StaffIn": "models",
    "KeyFileError": "keys",
    "ROLES": "roles",
    "HIDDEN": "access",
    "require_role": "access",
    "normalise_email": "identity",
    "normalise_id_card": "identity",
    "normalise_mobile": "identity",
    "ImportInterrupted": "importing",
    "ImportProgress": "importing",
    "ImportStopped": "importing",
    "Actor": "models",
    "Case": "models",
    "CaseHistoryEntry": "models",
    "CaseIn": "models",
    "Consent": "models",
    "Customer": "models",
    "CustomerIn": "models",
    "CustomerUpdate": "models",
    "CustomerView": "models",
    "DeliveryResult": "models",
    "DuplicatePair": "models",
    "IdentityEntry": "models",
    "ImportedCustomer": "models",
    "ImportResult": "models",
    "Interaction": "models",
    "InteractionIn": "models",
    "Message": "models",
    "OwnerChange": "models",
    "Project": "models",
    "ProjectIn": "models",
    "ProjectLink": "models",
    "RejectedRow": "models",
    "StageChange": "models",
    "StageMove": "models",
    "CustomerStageChange": "models",
    "CustomerInteractionIn": "models",
    "Task": "models",
    "TimelineEntry": "models",
    "TaskIn": "tasks",
    "ClaimIn": "pool",
    "PoolEntry": "pool",
    "PoolEvent": "pool",
    "PluginWarning": "plugins",
    "lazy_exports": "plugins",
    "project_code": "projects",
    "OPS": "segments",
    "SegmentField": "segments",
    "insert_or_ignore": "upserting",
    "insert_or_ignore_many": "upserting",
    "upsert": "upserting",
    "upsert_many": "upserting",
    "PERSONAS": "values",
    "STAGES": "values",
    "check_storable": "values",
    "make_unsubscribe_token": "unsubscribe",
    "unsubscribe_url": "unsubscribe",
}

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from .access import HIDDEN, require_role
    from .consent import (
        consent_granted_clause,
        consent_withdrawn_clause,
    )
    from .crm import CRM
    from .csvsource import (
        CUSTOMER_COLUMNS,
        ImportFileError,
        ImportReadError,
        UnknownColumns,
        Vocabulary,
    )
    from .db import (
        Base,
        UnitOfWork,
        UTCDateTime,
        utcnow,
        valid_id,
    )
    from .demo import (
        DemoSection,
        DemoSummary,
        run_demo,
    )
    from .errors import (
        ConfigError,
        Forbidden,
        IdentityConflict,
        InvalidInput,
        NotFound,
        PluginError,
        RecrmError,
        Refused,
        SchemaMismatch,
        UnknownProject,
    )
    from .errorsfile import ErrorsFile
    from .hooks import (
        hookimpl,
        hookspec,
    )
    from .identity import (
        IdentityError,
        clean_code,
        mask_email,
        mask_id_card,
        mask_mobile,
        mask_name,
        normalise_email,
        normalise_id_card,
        normalise_mobile,
    )
    from .importing import (
        ImportInterrupted,
        ImportProgress,
        ImportStopped,
    )
    from .keys import KeyFileError
    from .models import (
        Actor,
        AddResult,
        AuditEntry,
        Case,
        CaseHistoryEntry,
        CaseIn,
        Consent,
        Customer,
        CustomerIn,
        CustomerInteractionIn,
        CustomerStageChange,
        CustomerUpdate,
        CustomerView,
        DeliveryResult,
        Department,
        DepartmentIn,
        DuplicatePair,
        ErasureStep,
        IdentityEntry,
        ImportedCustomer,
        ImportResult,
        Interaction,
        InteractionIn,
        Message,
        OwnerChange,
        Project,
        ProjectIn,
        ProjectLink,
        RejectedRow,
        Staff,
        StaffIn,
        StageChange,
        StageMove,
        Task,
        TimelineEntry,
    )
    from .plugins import PluginWarning, lazy_exports
    from .pool import ClaimIn, PoolEntry, PoolEvent
    from .projects import project_code
    from .roles import ROLES
    from .segments import (
        OPS,
        SegmentField,
    )
    from .tabular import TableSource, open_table
    from .tasks import TaskIn
    from .unsubscribe import make_unsubscribe_token, unsubscribe_url
    from .upserting import (
        insert_or_ignore,
        insert_or_ignore_many,
        upsert,
        upsert_many,
    )
    from .values import (
        PERSONAS,
        STAGES,
        check_storable,
    )

__all__ = [
    "CRM",
    "CUSTOMER_COLUMNS",
    "HIDDEN",
    "OPS",
    "PERSONAS",
    "ROLES",
    "STAGES",
    "Actor",
    "AddResult",
    "AuditEntry",
    "Base",
    "Case",
    "CaseHistoryEntry",
    "CaseIn",
    "ClaimIn",
    "ConfigError",
    "Consent",
    "Customer",
    "CustomerIn",
    "CustomerInteractionIn",
    "CustomerStageChange",
    "CustomerUpdate",
    "CustomerView",
    "DeliveryResult",
    "DemoSection",
    "DemoSummary",
    "Department",
    "DepartmentIn",
    "DuplicatePair",
    "ErasureStep",
    "ErrorsFile",
    "Forbidden",
    "IdentityConflict",
    "IdentityEntry",
    "IdentityError",
    "ImportFileError",
    "ImportInterrupted",
    "ImportProgress",
    "ImportReadError",
    "ImportResult",
    "ImportStopped",
    "ImportedCustomer",
    "Interaction",
    "InteractionIn",
    "InvalidInput",
    "KeyFileError",
    "Message",
    "NotFound",
    "OwnerChange",
    "PluginError",
    "PluginWarning",
    "PoolEntry",
    "PoolEvent",
    "Project",
    "ProjectIn",
    "ProjectLink",
    "RecrmError",
    "Refused",
    "RejectedRow",
    "SchemaMismatch",
    "SegmentField",
    "Staff",
    "StaffIn",
    "StageChange",
    "StageMove",
    "TableSource",
    "Task",
    "TaskIn",
    "TimelineEntry",
    "UTCDateTime",
    "UnitOfWork",
    "UnknownColumns",
    "UnknownProject",
    "Vocabulary",
    "__version__",
    "check_storable",
    "clean_code",
    "consent_granted_clause",
    "consent_withdrawn_clause",
    "hookimpl",
    "hookspec",
    "insert_or_ignore",
    "insert_or_ignore_many",
    "lazy_exports",
    "make_unsubscribe_token",
    "mask_email",
    "mask_id_card",
    "mask_mobile",
    "mask_name",
    "normalise_email",
    "normalise_id_card",
    "normalise_mobile",
    "open_table",
    "project_code",
    "require_role",
    "run_demo",
    "unsubscribe_url",
    "upsert",
    "upsert_many",
    "utcnow",
    "valid_id",
]




def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'recrm_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
