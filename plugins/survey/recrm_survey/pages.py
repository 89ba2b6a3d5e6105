"""``/s/<token>``: the survey page a customer opens from the invitation's link.

A phone-sized HTML form in Chinese, rendered on the server (no JavaScript), served
on the plugin's public routes (no API key; ``limit_by_address`` counts each client
address). The answers go through :func:`recrm_survey.service.answer` — the SDK's one
path: the same validation, the same "answered once" lock, the same case for a
detractor — as the customer themself (``actor=None``: no member of staff).

- GET: the form, or a polite page when the link cannot be answered: answered
  already (200), not due yet (200), expired or cancelled (410). A token that is no
  invitation's is the plain 404 page.
- POST (the form, which carries the token again; a POST without it is a 400 page):
  invalid answers re-render the form (422) with a message at each question and the
  answers kept; valid ones are recorded and thanked for (200); a link answered
  meanwhile says so (409).

Imported only by the plugin's ``recrm_api_routes`` hook, with the API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from recrm_core import InvalidInput, NotFound, Refused, utcnow
from recrm_core.api.pages import ByAddress, PageError, Pages, form_fields, message_page, not_found

from .definitions import _TEXT_LIMIT, SCALES, SurveyDefinition, _storable, validate_answers
from .service import Invitation, answer, definition_in, link_state
from .service.inviting import _to_invitation
from .tables import SurveyInvitation

if TYPE_CHECKING:
    from recrm_core import CRM
    from recrm_core.api import ApiRoutes

pages = Pages("recrm_survey")
#: a link token's column is this long: anything longer is no token
_MAX_TOKEN = 48


def _find(crm: CRM, token: str) -> tuple[Invitation, SurveyDefinition]:
    """The invitation of ``token`` (by token only, never by id) and its survey; the
    404 page when there is none."""
    if not token or len(token) > _MAX_TOKEN or not _storable(token):
        raise not_found()
    with crm.unit_of_work(readonly=True) as uow:
        row = uow.session.scalar(select(SurveyInvitation).where(SurveyInvitation.token == token))
        if row is None:
            raise not_found()
        try:
            definition = definition_in(uow.session, crm, row.survey_key)
        except NotFound:  # a definition since removed from recrm.toml
            raise not_found() from None
        return _to_invitation(row), definition


def _day(crm: CRM, at: dt.datetime) -> str:
    local = at.astimezone(crm.config.zone)
    return f"{local.year}年{local.month}月{local.day}日"


def _closed(crm: CRM, invitation: Invitation, state: str, *, posted: bool) -> HTMLResponse:
    """The polite page of a link that cannot be answered (``state`` not ``open``)."""
    if state == "answered":
        return message_page(409 if posted else 200, "您已提交过问卷",
                            "这份问卷已经收到您的回答，无需再次填写。", "感谢您的反馈！")
    if state == "not_due":
        return message_page(409 if posted else 200, "问卷尚未开始",
                            f"这份问卷将于{_day(crm, invitation.due_at)}开放，届时欢迎您填写。")
    if state == "expired":
        return message_page(410, "问卷已过期",
                            f"这份问卷已于{_day(crm, invitation.expires_at)}截止。",
                            "感谢您的关注！")
    return message_page(410, "问卷已取消", "这份问卷已取消，无需填写。", "感谢您的关注！")


def _form(crm: CRM, request: Request, token: str, invitation: Invitation,
          definition: SurveyDefinition, values: Mapping[str, Any] | None = None,
          errors: Mapping[str, str] | None = None, status: int = 200) -> HTMLResponse:
    return pages.render(
        "survey_form.html", status, title=definition.title, token=token,
        action=str(request.url.path), questions=definition.questions,
        expires=_day(crm, invitation.expires_at),
        values=dict(values or {}), errors=dict(errors or {}), text_limit=_TEXT_LIMIT)


def _raw_answers(definition: SurveyDefinition,
                 fields: list[tuple[str, str]]) -> dict[str, Any]:
    """The form's answers by question: a list for a multiple choice, else the text
    sent (the last, if sent twice); other fields (the token) are left out."""
    raw: dict[str, Any] = {}
    for q in definition.questions:
        sent = [v for k, v in fields if k == q.id]
        if q.type == "multiple_choice":
            raw[q.id] = sent
        elif sent:
            raw[q.id] = sent[-1]
    return raw


def _message(definition: SurveyDefinition, qid: str, exc: InvalidInput) -> str:
    """What to tell the person about ``exc`` at question ``qid``, in Chinese."""
    question = next((q for q in definition.questions if q.id == qid), None)
    why = str(exc)
    if question is None:
        return "提交的内容有误，请检查后重新提交。"
    if "required question not answered" in why:
        return "这道题必须回答。"
    if question.type in SCALES:
        low, high = SCALES[question.type]
        return f"请选择 {low}–{high} 之间的分数。"
    if question.type in ("single_choice", "multiple_choice"):
        return "请从给出的选项中选择。"
    if "longer than" in why:
        return f"内容不能超过 {_TEXT_LIMIT} 个字。"
    return "内容含有无法保存的字符，请修改后再提交。"


def _errors(definition: SurveyDefinition, raw: Mapping[str, Any],
            first: InvalidInput) -> dict[str, str]:
    """A message for every question the answers fail, not only the first: each
    question checked alone by the same :func:`validate_answers`."""
    found: dict[str, str] = {}
    for q in definition.questions:
        alone = definition.model_copy(update={"questions": (q,)})
        try:
            validate_answers(alone, {q.id: raw[q.id]} if q.id in raw else {})
        except InvalidInput as exc:
            found[q.id] = _message(definition, q.id, exc)
    if not found:  # cannot happen; still say something where the SDK said it
        found[first.field or ""] = _message(definition, first.field or "", first)
    return found


def add_pages(crm: CRM, routes: ApiRoutes) -> None:
    """Add ``GET`` and ``POST /s/{token}`` to ``routes.public``."""
    public = routes.public

    @public.get("/s/{token}", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request, token: str, _limit: ByAddress) -> HTMLResponse:
        """The survey form of the invitation ``token``."""
        invitation, definition = _find(crm, token)
        state = link_state(invitation, utcnow())
        if state != "open":
            return _closed(crm, invitation, state, posted=False)
        return _form(crm, request, token, invitation, definition)

    @public.post("/s/{token}", response_class=HTMLResponse, include_in_schema=False)
    async def submit(request: Request, token: str, _limit: ByAddress) -> HTMLResponse:
        """Record the form's answers to the invitation ``token``."""
        invitation, definition = await run_in_threadpool(_find, crm, token)
        fields = await form_fields(request)
        if ("token", token) not in fields:
            raise PageError(400, "请求无效", "请通过问卷页面提交您的回答。")
        raw = _raw_answers(definition, fields)
        try:
            # By id: the token led to this invitation, and an all-digit token must
            # never be read as another invitation's id.
            await run_in_threadpool(answer, crm, invitation.id, raw)
        except InvalidInput as exc:
            return _form(crm, request, token, invitation, definition, raw,
                         _errors(definition, raw, exc), status=422)
        except NotFound:  # the person was erased meanwhile
            raise not_found() from None
        except Refused:
            fresh, _ = await run_in_threadpool(_find, crm, token)
            state = link_state(fresh, utcnow())
            if state == "open":  # refused for a reason the page does not know
                raise PageError(409, "暂时无法提交", "请稍后再试。") from None
            return _closed(crm, fresh, state, posted=True)
        return message_page(200, "提交成功", "感谢您的宝贵意见！",
                            "我们会认真阅读每一条反馈，持续改进服务。")


__all__ = ["add_pages", "pages"]
