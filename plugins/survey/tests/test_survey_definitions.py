"""Survey definitions: validation in code, in recrm.toml and in the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from recrm_survey import (
    BUILTIN,
    L3_ROLES,
    SurveyDefinition,
    define_survey,
    get_definition,
    invite,
    list_surveys,
    validate_answers,
)
from recrm_survey.service import parse_definition
from survey_testkit import customer

from recrm_core import CRM, ConfigError, InvalidInput, NotFound, Refused

pytestmark = pytest.mark.recrm_plugins("survey")


def definition(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "key": "move_in",
        "title": "入住体验",
        "questions": [
            {"id": "nps", "type": "nps", "text": "推荐意愿", "role": "nps"},
            {"id": "overall", "type": "rating", "text": "整体满意度",
             "role": "overall_satisfaction"},
            {"id": "channel", "type": "single_choice", "text": "从哪里得知",
             "choices": ["朋友", "广告"]},
            {"id": "note", "type": "text", "text": "建议", "required": False},
        ],
    }
    base.update(changes)
    return base


def test_a_valid_definition_is_parsed() -> None:
    d = parse_definition(definition())
    assert d.key == "move_in"
    assert [q.type for q in d.questions] == ["nps", "rating", "single_choice", "text"]
    assert d.by_role("nps") is not None and d.by_role("nps").scale == (0, 10)  # type: ignore[union-attr]
    assert d.by_role("overall_satisfaction").scale == (1, 5)  # type: ignore[union-attr]
    assert not d.has_l3


@pytest.mark.parametrize(
    ("questions", "where", "message"),
    [
        ([{"id": "q", "type": "stars", "text": "t"}], "questions.0.type", "Input should be"),
        ([{"id": "q", "type": "rating", "text": "t", "role": "happiness"}],
         "questions.0.role", "Input should be"),
        ([{"id": "q", "type": "rating", "text": "t", "role": "nps"}], "questions.0",
         "role nps needs a nps question, not rating"),
        ([{"id": "q", "type": "nps", "text": "t", "role": "overall_satisfaction"}],
         "questions.0", "role overall_satisfaction needs a rating question"),
        ([{"id": "q", "type": "single_choice", "text": "t", "choices": ["a"]}],
         "questions.0", "needs at least two choices"),
        ([{"id": "q", "type": "single_choice", "text": "t", "choices": ["a", "a"]}],
         "questions.0.choices", "choices repeat"),
        ([{"id": "q", "type": "rating", "text": "t", "choices": ["a", "b"]}],
         "questions.0", "only choice questions have choices"),
        ([{"id": "Q 1", "type": "text", "text": "t"}], "questions.0.id", "lower-case"),
        ([{"id": "q", "type": "text", "text": "t"}, {"id": "q", "type": "text", "text": "u"}],
         "questions", "question id 'q' is used twice"),
        ([{"id": "a", "type": "nps", "text": "t", "role": "nps"},
          {"id": "b", "type": "nps", "text": "u", "role": "nps"}],
         "questions", "role nps is given to two questions"),
        ([], "questions", "at least 1 item"),
    ],
)
def test_bad_definitions_name_the_place(questions: list[dict[str, Any]], where: str,
                                        message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_definition(definition(questions=questions))
    assert caught.value.field == where


def test_referral_intent_may_be_an_nps_question() -> None:
    d = parse_definition(definition(questions=[
        {"id": "r", "type": "nps", "text": "t", "role": "referral_intent"}]))
    assert d.by_role("referral_intent") is not None


def test_bad_key_and_invitation_text() -> None:
    with pytest.raises(InvalidInput, match="survey key") as caught:
        parse_definition(definition(key="Move In"))
    assert caught.value.field == "key"
    with pytest.raises(InvalidInput, match=r"unknown placeholders \['phone'\]"):
        parse_definition(definition(invitation_text="{name} {phone}"))


def test_builtin_surveys() -> None:
    assert set(BUILTIN) == {"csat", "handover_checkin", "yearly"}
    checkin = BUILTIN["handover_checkin"]
    assert checkin.has_l3 and BUILTIN["yearly"].has_l3
    # the check-in carries every L3 role and every satisfaction factor
    roles = {q.role for q in checkin.questions if q.role}
    assert roles == {"nps", *L3_ROLES, "service", "handover_readiness", "sales_staff",
                     "quality", "value", "design", "amenities", "location"}
    csat = BUILTIN["csat"]
    overall = csat.by_role("overall_satisfaction")
    assert overall is not None and overall.type == "rating"


def test_validate_answers_normalises() -> None:
    d = parse_definition(definition(questions=[
        {"id": "nps", "type": "nps", "text": "t"},
        {"id": "issues", "type": "multiple_choice", "text": "t", "choices": ["a", "b", "c"]},
        {"id": "note", "type": "text", "text": "t", "required": False},
    ]))
    assert validate_answers(d, {"nps": "9", "issues": "c, a", "note": "  好  "}) == {
        "nps": 9, "issues": ["a", "c"], "note": "好"}
    assert validate_answers(d, {"nps": 0, "issues": ["b"]}) == {"nps": 0, "issues": ["b"]}


@pytest.mark.parametrize(
    ("answers", "field", "reason"),
    [
        ({"nps": 11, "overall": 3, "channel": "朋友"}, "nps",
         "11 is not a whole number from 0 to 10"),
        ({"nps": -1, "overall": 3, "channel": "朋友"}, "nps", "from 0 to 10"),
        ({"nps": 8.5, "overall": 3, "channel": "朋友"}, "nps", "from 0 to 10"),
        ({"nps": True, "overall": 3, "channel": "朋友"}, "nps", "from 0 to 10"),
        ({"nps": 8, "overall": 0, "channel": "朋友"}, "overall", "from 1 to 5"),
        ({"nps": 8, "overall": 3, "channel": "电视"}, "channel",
         "unknown choice '电视'; choose one of 朋友, 广告"),
        ({"nps": 8, "channel": "朋友"}, "overall", "required question not answered"),
        ({"nps": 8, "overall": " ", "channel": "朋友"}, "overall", "required question"),
        ({"nps": 8, "overall": 3, "channel": "朋友", "colour": "red"}, "colour",
         "no such question"),
    ],
)
def test_invalid_answers_are_refused_clearly(answers: dict[str, Any], field: str,
                                             reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as caught:
        validate_answers(parse_definition(definition()), answers)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.recrm_settings(survey={"definitions": {"move_in": {
    "title": "入住体验",
    "questions": [{"id": "nps", "type": "nps", "text": "推荐", "role": "nps"}],
}, "csat": {
    "title": "我们的满意度",
    "questions": [{"id": "s", "type": "rating", "text": "满意吗",
                   "role": "overall_satisfaction"}],
}}})
def test_definitions_from_recrm_toml(crm: CRM) -> None:
    assert get_definition(crm, "move_in").title == "入住体验"
    # a configured key replaces the built-in survey of that name
    assert get_definition(crm, "csat").title == "我们的满意度"
    sources = {s.key: s.source for s in list_surveys(crm)}
    assert crm.settings_for("survey").csat_survey == "csat"
    assert sources == {"csat": "config", "handover_checkin": "builtin", "yearly": "builtin",
                       "move_in": "config"}


@pytest.mark.parametrize(
    ("section", "where"),
    [
        ({"definitions": {"x": {"title": "t", "questions": [
            {"id": "q", "type": "nps", "text": "t", "role": "overall_satisfaction"}]}}},
         r"\[survey\] definitions\.x\.questions\.0"),
        ({"definitions": {"Bad Key": {"title": "t", "questions": [
            {"id": "q", "type": "text", "text": "t"}]}}}, r"\[survey\] definitions"),
        ({"handover_schedule_months": [3, 3]}, r"\[survey\] handover_schedule_months"),
        ({"handover_schedule_months": [0]}, r"\[survey\] handover_schedule_months"),
        ({"detractor_threshold": 11}, r"\[survey\] detractor_threshold"),
        ({"channel": "fax"}, r"\[survey\] channel"),
        ({"link_template": "https://x/"}, r"\[survey\] link_template"),
        ({"invitation_expiry_days": 0}, r"\[survey\] invitation_expiry_days"),
        ({"colour": "red"}, r"\[survey\] colour"),
        ({"csat_survey": "typo"}, r"\[survey\] csat_survey: .*no survey 'typo'"),
    ],
)
def test_bad_settings_are_config_errors(crm_factory: Callable[..., CRM],
                                        section: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        crm_factory(plugins=["survey"], settings={"survey": section})


def test_define_in_the_database(crm: CRM) -> None:
    stored = define_survey(crm, definition())
    assert isinstance(stored, SurveyDefinition)
    assert get_definition(crm, "move_in") == stored
    # replacing is fine while nobody was invited
    define_survey(crm, definition(title="入住体验 v2"))
    assert get_definition(crm, "move_in").title == "入住体验 v2"
    cid = customer(crm, "13812345678")
    invite(crm, cid, "move_in")
    with pytest.raises(Refused, match="already has 1 invitation"):
        define_survey(crm, definition(title="v3"))
    assert get_definition(crm, "move_in").title == "入住体验 v2"
    [info] = [s for s in list_surveys(crm) if s.key == "move_in"]
    assert (info.source, info.questions, info.invitations, info.answers) == (
        "database", 4, 1, 0)
    assert info.roles == ["nps", "overall_satisfaction"]


def test_define_refuses_builtin_keys_and_bad_definitions(crm: CRM) -> None:
    with pytest.raises(Refused, match="'csat' is defined in builtin"):
        define_survey(crm, definition(key="csat"))
    with pytest.raises(InvalidInput, match="questions"):
        define_survey(crm, definition(questions=[]))
    with pytest.raises(NotFound, match="no survey 'nope'"):
        get_definition(crm, "nope")
