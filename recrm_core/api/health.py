"""``/healthz``: the database answers and its schema is the code's (no key needed)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..crm import CRM
from ..schema import schema_state
from .auth import crm_of
from .problems import Problem, problem

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The service is up."""

    status: Literal["ok"] = Field(description="ok")
    database: str = Field(description="the database's kind: sqlite or postgresql")
    schema_version: Literal["current"] = Field(description="the migrations are current")


@router.get("/healthz", response_model=Health,
            responses={503: {"model": Problem, "description": "database down or behind"}})
def healthz(crm: Annotated[CRM, Depends(crm_of)]) -> Health | JSONResponse:
    try:
        with crm.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        state = schema_state(crm)
    except SQLAlchemyError:
        return problem(503, "the database does not answer")
    if state.kind != "current":
        return problem(503, f"the schema is not current ({state.kind}): run recrm db upgrade")
    return Health(status="ok", database=crm.engine.dialect.name, schema_version="current")
