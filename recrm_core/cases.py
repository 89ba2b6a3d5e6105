"""Service cases with SLAs (placeholder until the cases stage lands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from .models import Case

if TYPE_CHECKING:
    from .crm import CRM


class CaseService:
    def __init__(self, crm: CRM) -> None:
        self.crm = crm

    def list_for_customer(self, session: Session, customer_id: int) -> list[Case]:
        return []
