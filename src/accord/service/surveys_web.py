"""Survey pages: the public answer page behind a survey link (`/s/<token>`, no login, no staff
navigation) and the staff results page (`/service/surveys`).

The public page needs no CSRF token: the link's secret is the capability, and a third-party
page cannot post an answer without knowing it. Refusals (not valid 422, already answered 409,
expired 410, rate limit 429) are rendered on the same minimal layout and never name the person.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from accord.access import audit
from accord.access.policy import can
from accord.core.clock import utcnow
from accord.core.errors import Forbidden, Problem, ValidationProblem
from accord.core.query import parse_list_params
from accord.core.ratelimit import client_address
from accord.service import surveys
from accord.service.assistant_api import public_session
from accord.service.surveys_schemas import COMMENT_MAX
from accord.web.context import WebCtx, web_ctx
from accord.web.rendering import PageRoute, label, render

public = APIRouter(include_in_schema=False)
staff = APIRouter(prefix="/service/surveys", route_class=PageRoute, include_in_schema=False)
router = APIRouter(include_in_schema=False)

QUESTIONS = {
    "nps": "How likely are you to recommend us to a friend or colleague?",
    "csat": "How satisfied are you with the help you received?",
}
ENDS = {"nps": ("Not at all likely", "Extremely likely"),
        "csat": ("Very dissatisfied", "Very satisfied")}


def _refusal(request: Request, exc: Problem) -> HTMLResponse:
    headers = {k: v for k, v in exc.headers.items() if k == "Retry-After"}
    return render(request, "survey/refused.html",
                  {"status": exc.status, "title": exc.title, "detail": exc.detail},
                  status_code=exc.status, headers=headers or None)


def _form(request: Request, token: str, kind: str, error: str = "",
          score: Any = None, comment: str = "", status_code: int = 200) -> HTMLResponse:
    lo, hi = surveys.SCALES[kind]
    return render(request, "survey/answer.html", {
        "token": token, "kind": kind, "question": QUESTIONS[kind], "ends": ENDS[kind],
        "scale": list(range(lo, hi + 1)), "error": error, "score": str(score or ""),
        "comment": comment, "comment_max": COMMENT_MAX}, status_code=status_code)


def _kind_of(token: str) -> str:
    with public_session() as session:
        return surveys.check_link(session, token).kind


@public.get("/s/{token}")
async def answer_page(token: str, request: Request) -> Response:
    try:
        surveys.rate_limit(client_address(request))
        kind = await run_in_threadpool(_kind_of, token)
    except Problem as exc:
        return _refusal(request, exc)
    return _form(request, token, kind)


@public.post("/s/{token}")
async def answer_post(token: str, request: Request) -> Response:
    from accord.service.surveys_api import store_answer

    try:
        surveys.rate_limit(client_address(request))
        try:
            form = await request.form(max_fields=10, max_files=0)
        except Exception:  # malformed or oversized form data: a plain refusal, never a 500
            raise ValidationProblem("The answer could not be read.", field="body") from None
        score, comment = form.get("score"), form.get("comment")
        score = score if isinstance(score, str) else None
        comment = comment if isinstance(comment, str) else None
        try:
            await run_in_threadpool(store_answer, token, score, comment)
        except ValidationProblem as exc:
            if exc.field not in ("score", "comment"):
                raise
            kind = await run_in_threadpool(_kind_of, token)
            return _form(request, token, kind, exc.detail, score, comment or "", 422)
    except Problem as exc:
        return _refusal(request, exc)
    return render(request, "survey/thanks.html", {})


# --- staff results --------------------------------------------------------------------------------

def _day(raw: str, default: date, field: str) -> date:
    try:
        return date.fromisoformat(raw) if raw else default
    except ValueError:
        raise ValidationProblem(f"{raw[:20]!r} is not a date (YYYY-MM-DD)", field=field) from None


@staff.get("")
def results_page(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    if not can(ctx.principal, surveys.RESOURCE, "read"):
        raise Forbidden("Your role may not read survey results.")
    q = request.query_params
    kind = q.get("kind", "nps") if q.get("kind") in surveys.SCALES else "nps"
    group_by = q.get("group_by", "month") if q.get("group_by") in surveys.GROUPS else "month"
    today = utcnow().date()
    error = ""
    errors: dict[str, str] = {}
    try:
        start = _day(q.get("start", ""), today.replace(day=1) - timedelta(days=335), "start")
        end = _day(q.get("end", ""), today, "end")
        res = surveys.results(ctx.session, ctx.principal, kind,
                              datetime.combine(start, time.min, tzinfo=UTC),
                              datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
                              group_by)
    except ValidationProblem as exc:
        error = exc.detail
        errors[exc.field or "start"] = exc.detail
        start, end = today.replace(day=1) - timedelta(days=335), today
        res = surveys.results(ctx.session, ctx.principal, kind,
                              datetime.combine(start, time.min, tzinfo=UTC),
                              datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
                              group_by)
    params = parse_list_params({"kind": kind}, surveys.response_spec(), hidden=set(),
                               default_limit=20, max_limit=20)
    recent, _ = surveys.list_responses(ctx.session, ctx.principal, params)
    audit.record_read(ctx.principal, "survey_responses", [r.id for r in recent],
                      ["score", "comment"], {"via": "web"})
    return render(request, "service/surveys/results.html", {
        "res": res, "kind": kind, "group_by": group_by, "start": start, "end": end,
        "group_choices": [(g, label(g)) for g in surveys.GROUPS],
        "kind_choices": [(k, k.upper()) for k in surveys.SCALES], "error": error,
        "errors": errors,
        "recent": recent}, status_code=422 if error else 200)


router.include_router(public)
router.include_router(staff)
