"""Survey definitions: the built-in ones, those defined by code, and staff's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.orm import Session

from recrm_core import (
    CRM,
    Actor,
    InvalidInput,
    NotFound,
    Refused,
    utcnow,
)
from recrm_core.access import require_role

from ..definitions import BUILTIN, SurveyDefinition, with_key
from ..settings import SurveySettings, settings
from ..tables import SurveyAnswer, SurveyDefinitionRow, SurveyInvitation
from .records import STAFF, SurveyInfo


def code_definitions(crm: CRM) -> dict[str, tuple[SurveyDefinition, str]]:
    """Built-in and ``recrm.toml`` definitions (the latter replace the former).

    Built once per settings object: every answer, invitation and schedule looks a
    definition up, and validating the models anew cost ~0.3 ms a call (1.4 s of the
    demo). The cache holds the settings object, so its identity cannot be reused.
    Callers read the result; they never change it."""
    conf = settings(crm)
    cached = _CODE_DEFINITIONS.get(id(conf))
    if cached is not None and cached[0] is conf:
        return cached[1]
    found = {key: (with_key(key, body), "builtin") for key, body in BUILTIN.items()}
    for key, body in conf.definitions.items():
        found[key] = (with_key(key, body), "config")
    if len(_CODE_DEFINITIONS) > 16:  # tests build many CRMs: keep the cache small
        _CODE_DEFINITIONS.clear()
    _CODE_DEFINITIONS[id(conf)] = (conf, found)
    return found


_CODE_DEFINITIONS: dict[int, tuple[SurveySettings, dict[str, tuple[SurveyDefinition, str]]]] = {}


def definition_in(session: Session, crm: CRM, key: str) -> SurveyDefinition:
    """The survey ``key`` (code and configuration first, then the database)."""
    code = code_definitions(crm).get(key)
    if code is not None:
        return code[0]
    row = session.get(SurveyDefinitionRow, key)
    if row is None:
        raise NotFound(f"no survey {key!r}")
    return SurveyDefinition.model_validate({**row.definition, "key": key})


def get_definition(crm: CRM, key: str) -> SurveyDefinition:
    with crm.unit_of_work(readonly=True) as uow:
        return definition_in(uow.session, crm, key)


def parse_definition(data: SurveyDefinition | Mapping[str, Any]) -> SurveyDefinition:
    """Validate a definition; a bad one is InvalidInput naming the place
    (``questions.1.type: ...``)."""
    if isinstance(data, SurveyDefinition):
        return data
    if not isinstance(data, Mapping):
        raise InvalidInput("definition", "a survey definition is an object (a TOML table)")
    try:
        return SurveyDefinition.model_validate(dict(data))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(where or "definition",
                           err["msg"].removeprefix("Value error, ")) from None


def define_survey(crm: CRM, data: SurveyDefinition | Mapping[str, Any], *,
                  actor: Actor | None = None) -> SurveyDefinition:
    """Store a survey definition in the database (create, or replace one that has
    no invitations yet). Keys of built-in and configured surveys are refused: change
    those in ``recrm.toml``."""
    require_role(actor, STAFF, "define surveys")
    definition = parse_definition(data)
    code = code_definitions(crm).get(definition.key)
    if code is not None:
        raise Refused(f"survey {definition.key!r} is defined in {code[1]}; "
                      "choose another key (or change it in recrm.toml)")
    body = definition.model_dump(mode="json", exclude={"key"})
    now = utcnow()
    with crm.unit_of_work(actor) as uow:
        session = uow.session
        row = session.get(SurveyDefinitionRow, definition.key, with_for_update=True)
        if row is None:
            session.add(SurveyDefinitionRow(key=definition.key, definition=body,
                                            created_at=now, updated_at=now))
        else:
            used = session.scalar(select(func.count()).select_from(SurveyInvitation)
                                  .where(SurveyInvitation.survey_key == definition.key))
            if used:
                # Answers are validated and scored against the definition: changing
                # the questions under existing invitations would corrupt them.
                raise Refused(f"survey {definition.key!r} already has {used} invitation(s); "
                              "define the new version under a new key")
            row.definition, row.updated_at = body, now
    return definition


def list_surveys(crm: CRM, *, actor: Actor | None = None) -> list[SurveyInfo]:
    """Every survey with its counts of invitations and answers: an aggregate, for
    every role."""
    with crm.unit_of_work(actor, readonly=True) as uow:
        session = uow.session
        defs: dict[str, tuple[SurveyDefinition, str]] = dict(code_definitions(crm))
        for row in session.scalars(select(SurveyDefinitionRow)):
            defs.setdefault(row.key, (SurveyDefinition.model_validate(
                {**row.definition, "key": row.key}), "database"))
        invitations: dict[str, int] = {key: int(n) for key, n in session.execute(
            select(SurveyInvitation.survey_key, func.count()).group_by(SurveyInvitation.survey_key)
        )}
        answers: dict[str, int] = {key: int(n) for key, n in session.execute(
            select(SurveyAnswer.survey_key, func.count()).group_by(SurveyAnswer.survey_key)
        )}
    return [
        SurveyInfo(key=key, title=d.title, source=source, questions=len(d.questions),
                   roles=[q.role for q in d.questions if q.role],
                   invitations=invitations.get(key, 0), answers=answers.get(key, 0))
        for key, (d, source) in sorted(defs.items())
    ]
