"""CSV import (placeholder until the import stage lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .crm import CRM


class ImportService:
    def __init__(self, crm: CRM) -> None:
        self.crm = crm
