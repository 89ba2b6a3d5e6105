"""recrm-survey: NPS/CSAT surveys, check-ins after the handover, the L3 loyalty
index, and closing the loop on unhappy answers.

Written against the public API of ``recrm_core`` only, like any third-party plugin:

- ``recrm_case_status_changed``: a case closed -> a CSAT invitation;
- ``recrm_stages_changed``: a handover (stage ``owner``) -> check-ins at 3, 11, 23
  and 35 months, carrying the project and unit;
- ``recrm survey trigger --yearly``: every owner once a year;
- ``recrm survey send``: due invitations leave through ``crm.send_message``, each
  claimed in the database first (an outbox), so none is sent twice;
- an answer at or below the detractor threshold opens a service case in the
  answer's transaction (``crm.cases.open_in``);
- who sees what: every read takes the ``actor`` and follows ``crm.access``
  (partners are refused invitations and answers, analysts read no free text or
  link tokens, only admins send; each send run is audited as ``bulk_send``);
- ``recrm_api_routes``: ``GET /v1/survey/scores`` and ``/v1/survey/drivers`` (see
  :mod:`recrm_survey.api`), and the survey page ``/s/<token>`` the invitation links
  to (public, see :mod:`recrm_survey.pages`);
- ``recrm_reports``: ``survey.scores``, the NPS/CSAT/L3 trends per project and
  period (``recrm report survey.scores``; see :mod:`recrm_survey.reports`);
- ``recrm_timeline``, ``recrm_segment_fields`` (``survey.last_nps``,
  ``survey.last_csat``, ``survey.answers``), ``recrm_customer_merged`` and
  ``recrm_demo``;
- privacy requests: ``recrm_customer_export`` and ``recrm_customer_erase`` (answers
  stay for the scores, anonymously; see :mod:`recrm_survey.privacy`).

See ``README.md`` beside ``pyproject.toml`` for settings and decisions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recrm_core import lazy_exports

# The hook implementations pluggy finds: loading the plugin imports these and the
# settings, nothing more; every other public name is imported on first use.
from .hooks import (
    recrm_api_routes,
    recrm_case_status_changed,
    recrm_customer_erase,
    recrm_customer_export,
    recrm_customer_merged,
    recrm_declare_tables,
    recrm_demo,
    recrm_project_renamed,
    recrm_register_commands,
    recrm_register_settings,
    recrm_reports,
    recrm_segment_fields,
    recrm_stages_changed,
    recrm_timeline,
)
from .settings import NAME, SurveySettings, settings

#: the plugin's name: settings section, table prefix, segment-field prefix
name = NAME
__version__ = "0.1.0"

lazy_exports(__name__, {
    **dict.fromkeys([
        "BUILTIN", "FACTOR_ROLES", "L3_ROLES", "ROLES", "Question", "SurveyBody",
        "SurveyDefinition", "validate_answers",
    ], "definitions"),
    **dict.fromkeys([
        "Driver", "Score", "drivers", "scores",
    ], "scores"),
    **dict.fromkeys([
        "Answer", "AnswerItem", "Handover", "Invitation", "SendResult", "SurveyInfo",
        "TriggerResult", "answer", "answer_many", "answers", "define_survey", "due", "expire",
        "get_definition", "invitations", "invite", "list_surveys", "send_due", "trigger_yearly",
    ], "service"),
    **dict.fromkeys([
        "SurveyAnswer", "SurveyInvitation", "SurveyScore",
    ], "tables"),
})

if TYPE_CHECKING:  # the same names, for type checkers
    from .definitions import (
        BUILTIN,
        FACTOR_ROLES,
        L3_ROLES,
        ROLES,
        Question,
        SurveyBody,
        SurveyDefinition,
        validate_answers,
    )
    from .scores import (
        Driver,
        Score,
        drivers,
        scores,
    )
    from .service import (
        Answer,
        AnswerItem,
        Handover,
        Invitation,
        SendResult,
        SurveyInfo,
        TriggerResult,
        answer,
        answer_many,
        answers,
        define_survey,
        due,
        expire,
        get_definition,
        invitations,
        invite,
        list_surveys,
        send_due,
        trigger_yearly,
    )
    from .tables import (
        SurveyAnswer,
        SurveyInvitation,
        SurveyScore,
    )

__all__ = [
    "BUILTIN",
    "FACTOR_ROLES",
    "L3_ROLES",
    "ROLES",
    "Answer",
    "AnswerItem",
    "Driver",
    "Handover",
    "Invitation",
    "Question",
    "Score",
    "SendResult",
    "SurveyAnswer",
    "SurveyBody",
    "SurveyDefinition",
    "SurveyInfo",
    "SurveyInvitation",
    "SurveyScore",
    "SurveySettings",
    "TriggerResult",
    "answer",
    "answer_many",
    "answers",
    "define_survey",
    "drivers",
    "due",
    "expire",
    "get_definition",
    "invitations",
    "invite",
    "list_surveys",
    "name",
    "recrm_api_routes",
    "recrm_case_status_changed",
    "recrm_customer_erase",
    "recrm_customer_export",
    "recrm_customer_merged",
    "recrm_declare_tables",
    "recrm_demo",
    "recrm_project_renamed",
    "recrm_register_commands",
    "recrm_register_settings",
    "recrm_reports",
    "recrm_segment_fields",
    "recrm_stages_changed",
    "recrm_timeline",
    "scores",
    "send_due",
    "settings",
    "trigger_yearly",
    "validate_answers",
]
