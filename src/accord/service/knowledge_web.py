"""Knowledge-base pages.

Staff (`/service/kb`, session login, CSRF on every post): the article list with filters and a
full-text search, the editor with its version history (view and restore a version), status
moves, and categories. Every write goes through `accord.service.knowledge`.

Public self-service (`/help`, no login, own minimal layout without staff navigation): search,
categories, an article by locale and slug, "was this helpful?" and the assistant panel. These
pages read only published public articles (the service's `public_*` functions and
`search(public_only=True)`), so drafts, archived and internal articles cannot appear; their
posts carry no CSRF token (there is no session to ride) and are rate-limited per address.
Article bodies are plain text: paragraphs split on blank lines, everything escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from accord.access.policy import can
from accord.core.errors import Forbidden, NotFound, Problem, ValidationProblem
from accord.core.ratelimit import client_address, throttle, throttle_client
from accord.core.settings import get_settings
from accord.core.validation import whole_number
from accord.models.service import KB_STATUSES, KB_VISIBILITIES, AssistantConversation
from accord.service import assistant, knowledge
from accord.service.assistant_api import public_session
from accord.service.knowledge_schemas import (
    MAX_QUESTION,
    ArticleCreate,
    ArticleUpdate,
    CategoryCreate,
)
from accord.web.admin import form_errors
from accord.web.context import WebCtx, is_htmx, wants_partial, web_ctx
from accord.web.rendering import PageRoute, label, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

STAFF = "/service/kb"
LIST_KEYS = ("q", "status", "visibility", "locale", "category_id", "cursor")
EDIT_FIELDS = ("title", "body", "locale", "slug", "category_id", "visibility", "note")
NOTICES = {"created": "Article created.", "saved": "Changes saved.",
           "published": "Article published.", "draft": "Article moved back to draft.",
           "archived": "Article archived.", "restored": "Version restored as the current one.",
           "category": "Category created."}
MOVES = {"published": "Publish", "draft": "Back to draft", "archived": "Archive"}  # buttons
STALE = ("Someone else changed this article while you were editing it, so your changes were not "
         "saved. Reload the page to see the current text, then make your changes again.")
MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def paragraphs(text: str) -> list[list[str]]:
    """Plain text → paragraphs (blank-line separated) of lines, for escaped display."""
    blocks = [b.strip("\n") for b in text.replace("\r\n", "\n").split("\n\n")]
    return [[line for line in b.split("\n")] for b in blocks if b.strip()]


# --- staff: list and search ----------------------------------------------------------------------

def _values(request: Request) -> dict[str, str]:
    return {k: v.strip() for k, v in request.query_params.items()
            if k in LIST_KEYS and v.strip()}


@router.get(STAFF)
def kb_list(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    values = _values(request)
    query = {k: v for k, v in values.items() if k != "q"}
    error: str = ""
    rows: list[Any] = []
    hits: list[knowledge.SearchHit] = []
    next_cursor = None
    try:
        if values.get("q"):
            hits = knowledge.search(ctx.session, values["q"], locale=values.get("locale"),
                                    limit=20)
            query["q"] = values["q"]
        rows, next_cursor = knowledge.list_articles(ctx.session, ctx.principal,
                                                    knowledge.list_params(query))
    except ValidationProblem as exc:
        error = exc.detail
    categories = {c.id: c.name for c in knowledge.list_categories(ctx.session, ctx.principal)}
    context = {
        "rows": rows, "hits": hits, "values": values, "error": error,
        "categories": categories,
        "status_choices": [(s, label(s)) for s in KB_STATUSES],
        "visibility_choices": [(v, label(v)) for v in KB_VISIBILITIES],
        "next_link": (STAFF + "?" + urlencode({**values, "cursor": next_cursor})
                      if next_cursor else None),
        "can_create": can(ctx.principal, knowledge.RESOURCE, "create"),
    }
    status = 422 if error else 200
    if wants_partial(request):
        return render(request, "service/kb/_results.html", context, status_code=status)
    return render(request, "service/kb/list.html", context, status_code=status)


# --- staff: categories ---------------------------------------------------------------------------

def _categories_page(request: Request, ctx: WebCtx, values: dict[str, str],
                     errors: dict[str, str] | None = None, notice: str = "",
                     status_code: int = 200) -> Response:
    categories = knowledge.list_categories(ctx.session, ctx.principal)
    return render(request, "service/kb/categories.html", {
        "categories": categories, "names": {c.id: c.name for c in categories},
        "values": values,
        "errors": errors or {}, "notice": notice,
        "can_create": can(ctx.principal, knowledge.RESOURCE, "create")},
        status_code=status_code)


@router.get(STAFF + "/categories")
def categories_page(request: Request, done: Annotated[str, Query(max_length=20)] = "",
                    ctx: WebCtx = Depends(web_ctx)) -> Response:
    return _categories_page(request, ctx, {"name": "", "parent_id": ""},
                            notice=NOTICES.get(done, ""))


@router.post(STAFF + "/categories")
def create_category(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    values = {"name": ctx.field("name"), "parent_id": ctx.field("parent_id")}
    try:
        parent = values["parent_id"]
        if parent and not (parent.isascii() and parent.isdigit() and len(parent) <= 18):
            raise ValidationProblem("Choose a parent from the list.", field="parent_id")
        knowledge.create_category(ctx.session, ctx.principal, CategoryCreate(
            name=values["name"], parent_id=int(parent) if parent else None))
        ctx.commit()
    except (ValidationError, Problem) as exc:
        if isinstance(exc, Forbidden):
            raise
        ctx.session.rollback()
        errors = form_errors(exc, "name") if isinstance(exc, ValidationError) else {
            (exc.field or "name"): exc.detail}
        return _categories_page(request, ctx, values, errors, status_code=422)
    return RedirectResponse(f"{STAFF}/categories?done=category", status_code=303)


# --- staff: editor -------------------------------------------------------------------------------

def _editor(request: Request, ctx: WebCtx, values: dict[str, str], *, article: Any = None,
            errors: dict[str, str] | None = None, alert: str = "", notice: str = "",
            stale: bool = False, status_code: int = 200) -> Response:
    versions = (knowledge.list_versions(ctx.session, ctx.principal, article)
                if article is not None else [])
    return render(request, "service/kb/editor.html", {
        "article": article, "values": values, "errors": errors or {}, "alert": alert,
        "notice": notice, "stale": stale, "versions": versions,
        "categories": knowledge.list_categories(ctx.session, ctx.principal),
        "visibilities": KB_VISIBILITIES,
        "moves": [(m, MOVES[m]) for m in sorted(knowledge.TRANSITIONS[article.status])]
        if article is not None else [],
        "can_update": can(ctx.principal, knowledge.RESOURCE, "update"),
        "public_url": (knowledge.public_url(article.locale, article.slug)
                       if article is not None and article.status == "published"
                       and article.visibility == "public" else None),
    }, status_code=status_code)


def _form_values(ctx: WebCtx) -> dict[str, str]:
    return {name: ctx.field(name) for name in EDIT_FIELDS}


def _payload(values: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {k: v for k, v in values.items() if v != "" and k != "category_id"}
    out["body"] = values.get("body", "")
    category = values.get("category_id", "")
    if category:
        if not (category.isascii() and category.isdigit() and len(category) <= 18):
            raise ValidationProblem("Choose a category from the list.", field="category_id")
        out["category_id"] = int(category)
    else:
        out["category_id"] = None
    return out


def _errors_of(exc: Exception) -> dict[str, str]:
    if isinstance(exc, ValidationError):
        return form_errors(exc, "title")
    assert isinstance(exc, Problem)
    return {(exc.field or "title").partition(".")[0]: exc.detail}


@router.get(STAFF + "/new")
def new_article(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    if not can(ctx.principal, knowledge.RESOURCE, "create"):
        raise Forbidden("Your role may not write articles.")
    locale = knowledge.normalise_locale(get_settings().default_locale) \
        if get_settings().default_locale else "en"
    return _editor(request, ctx, {**dict.fromkeys(EDIT_FIELDS, ""), "locale": locale,
                                  "visibility": "internal"})


@router.post(STAFF)
def create_article(request: Request, ctx: WebCtx = Depends(web_ctx)) -> Response:
    if not can(ctx.principal, knowledge.RESOURCE, "create"):
        raise Forbidden("Your role may not write articles.")
    values = _form_values(ctx)
    try:
        article = knowledge.create_article(ctx.session, ctx.principal,
                                           ArticleCreate(**_payload(values)))
        article_id = article.id
        ctx.commit()
        return RedirectResponse(f"{STAFF}/{article_id}?done=created", status_code=303)
    except (ValidationError, ValidationProblem, Problem) as exc:
        if isinstance(exc, Forbidden):
            raise
        ctx.session.rollback()
        return _editor(request, ctx, values, errors=_errors_of(exc), status_code=422,
                       alert="The article was not saved: please correct the highlighted fields.")


def _article_values(article: Any) -> dict[str, str]:
    return {"title": article.title, "body": article.body, "locale": article.locale,
            "slug": article.slug, "category_id": str(article.category_id or ""),
            "visibility": article.visibility, "note": ""}


@router.get(STAFF + "/{article_id}")
def article_page(request: Request, article_id: Id,
                 done: Annotated[str, Query(max_length=20)] = "",
                 ctx: WebCtx = Depends(web_ctx)) -> Response:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id)
    return _editor(request, ctx, _article_values(article), article=article,
                   notice=NOTICES.get(done, ""))


def _check_version(ctx: WebCtx, article: Any) -> bool:
    return whole_number(ctx.field("version")) == article.version


@router.post(STAFF + "/{article_id}")
def save_article(request: Request, article_id: Id, ctx: WebCtx = Depends(web_ctx)) -> Response:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id, "update")
    values = _form_values(ctx)
    if not _check_version(ctx, article):
        return _editor(request, ctx, values, article=article, alert=STALE, stale=True,
                       status_code=409)
    try:
        data = ArticleUpdate(**_payload(values))
        knowledge.update_article(ctx.session, ctx.principal, article, data)
        ctx.commit()
        return RedirectResponse(f"{STAFF}/{article_id}?done=saved", status_code=303)
    except (ValidationError, Problem) as exc:
        if isinstance(exc, Forbidden):
            raise
        ctx.session.rollback()
        article = knowledge.get_article(ctx.session, ctx.principal, article_id)
        return _editor(request, ctx, values, article=article, errors=_errors_of(exc),
                       alert="The changes were not saved: please correct the highlighted "
                       "fields.", status_code=422)


@router.post(STAFF + "/{article_id}/status")
def move_article(request: Request, article_id: Id, ctx: WebCtx = Depends(web_ctx)) -> Response:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id, "update")
    status = ctx.field("status")
    if not _check_version(ctx, article):
        return _editor(request, ctx, _article_values(article), article=article, alert=STALE,
                       stale=True, status_code=409)
    try:
        knowledge.set_status(ctx.session, ctx.principal, article, status)
        ctx.commit()
    except (ValidationProblem, Problem) as exc:
        if isinstance(exc, Forbidden):
            raise
        ctx.session.rollback()
        article = knowledge.get_article(ctx.session, ctx.principal, article_id)
        return _editor(request, ctx, _article_values(article), article=article,
                       alert=exc.detail, status_code=exc.status)
    return RedirectResponse(f"{STAFF}/{article_id}?done={status}", status_code=303)


@router.get(STAFF + "/{article_id}/versions/{number}")
def version_page(request: Request, article_id: Id,
                 number: Annotated[int, Path(ge=1, le=1_000_000)],
                 ctx: WebCtx = Depends(web_ctx)) -> Response:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id)
    version = knowledge.get_version(ctx.session, ctx.principal, article, number)
    return render(request, "service/kb/version.html", {
        "article": article, "version": version, "paragraphs": paragraphs(version.body),
        "can_update": can(ctx.principal, knowledge.RESOURCE, "update")})


@router.post(STAFF + "/{article_id}/versions/{number}/restore")
def restore_version(request: Request, article_id: Id,
                    number: Annotated[int, Path(ge=1, le=1_000_000)],
                    ctx: WebCtx = Depends(web_ctx)) -> Response:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id, "update")
    if not _check_version(ctx, article):
        return _editor(request, ctx, _article_values(article), article=article, alert=STALE,
                       stale=True, status_code=409)
    knowledge.restore_version(ctx.session, ctx.principal, article, number)
    ctx.commit()
    return RedirectResponse(f"{STAFF}/{article_id}?done=restored", status_code=303)


# --- public self-service ---------------------------------------------------------------------

HELP = "/help"


def _reader_locale(raw: str | None) -> str:
    """The reader's locale from `?locale=`, else the deployment's default language."""
    for candidate in (raw, get_settings().default_locale, "en"):
        if candidate:
            try:
                return knowledge.normalise_locale(candidate)
            except ValidationProblem:
                continue
    return "en"


def _public_page(request: Request, template: str, locale: str, context: dict[str, Any],
                 status_code: int = 200) -> Response:
    response = render(request, template, {"lang": knowledge.language_of(locale),
                                          "locale": locale, **context}, status_code=status_code)
    response.headers["Vary"] = "HX-Request"
    return response


Locale = Annotated[str | None, Query(max_length=16)]


@router.get(HELP)
def help_home(request: Request, locale: Locale = None) -> Response:
    throttle_client(knowledge.PUBLIC_READS_PER_CLIENT, request)
    loc = _reader_locale(locale)
    with public_session() as session:
        return _public_page(request, "help/home.html", loc, {
            "categories": knowledge.public_categories(session, loc),
            "popular": knowledge.public_articles(session, locale=loc, limit=10,
                                                 order="popular"),
            "q": "", "conversation": None, "turns": [], "panel_error": "", "panel_notice": "",
            "values": {}, "live": ""})


@router.get(HELP + "/search")
def help_search(request: Request, q: Annotated[str, Query(max_length=500)] = "",
                locale: Locale = None,
                category: Annotated[str, Query(max_length=120)] = "") -> Response:
    throttle_client(knowledge.PUBLIC_READS_PER_CLIENT, request)
    loc = _reader_locale(locale)
    with public_session() as session:
        category_id = knowledge.public_category_by_slug(session, category).id if category else None
        hits = knowledge.search(session, q, locale=loc, public_only=True,
                                category=category_id, limit=20) if q.strip() else []
        context = {"q": q, "hits": hits, "category": category}
        if wants_partial(request):
            return _public_page(request, "help/_results.html", loc, context)
        return _public_page(request, "help/search.html", loc, context)


@router.get(HELP + "/categories/{slug}")
def help_category(request: Request, slug: Annotated[str, Path(max_length=120)],
                  locale: Locale = None) -> Response:
    throttle_client(knowledge.PUBLIC_READS_PER_CLIENT, request)
    loc = _reader_locale(locale)
    with public_session() as session:
        category = knowledge.public_category_by_slug(session, slug)
        articles = knowledge.public_articles(session, locale=loc, category_id=category.id,
                                             limit=200)
        if not articles:
            raise NotFound("There is no such category.")
        return _public_page(request, "help/category.html", loc,
                            {"category": category, "articles": articles})


@router.get(HELP + "/assistant")
def help_assistant(request: Request, c: Annotated[str, Query(max_length=64)] = "",
                   locale: Locale = None) -> Response:
    """The assistant as a page of its own (the panel without JavaScript posts here)."""
    throttle_client(knowledge.PUBLIC_READS_PER_CLIENT, request)
    with public_session() as session:
        conversation = assistant.get(session, c) if c else None
        loc = conversation.locale if conversation else _reader_locale(locale)
        return _panel(request, session, conversation, loc)


@router.get(HELP + "/{locale}/{slug}")
def help_article(request: Request, locale: Annotated[str, Path(max_length=16)],
                 slug: Annotated[str, Path(max_length=160)],
                 feedback: Annotated[str, Query(max_length=10)] = "") -> Response:
    throttle_client(knowledge.PUBLIC_READS_PER_CLIENT, request)
    with public_session(write=True) as session:
        article = knowledge.public_article(session, locale, slug)
        knowledge.record_view(session, article)
        session.commit()
        category = (session.get(knowledge.KbCategory, article.category_id)
                    if article.category_id else None)
        return _public_page(request, "help/article.html", article.locale, {
            "article": article, "paragraphs": paragraphs(article.body), "category": category,
            "feedback": feedback == "thanks"})


@router.post(HELP + "/{locale}/{slug}/feedback")
def help_feedback(request: Request, locale: Annotated[str, Path(max_length=16)],
                  slug: Annotated[str, Path(max_length=160)],
                  helpful: Annotated[str, Form(max_length=3)] = "") -> Response:
    """"Was this helpful?": no CSRF token (nothing to protect but a counter), rate-limited per
    address and once per address and article."""
    if helpful not in ("yes", "no"):
        raise ValidationProblem("Answer yes or no.", field="helpful")
    client = client_address(request)
    throttle(knowledge.FEEDBACK_PER_CLIENT, client)
    with public_session(write=True) as session:
        article = knowledge.public_article(session, locale, slug)
        throttle(knowledge.FEEDBACK_PER_ARTICLE, f"{client}|{article.id}")
        knowledge.record_feedback(session, article, helpful == "yes")
        url = knowledge.public_url(article.locale, article.slug)
        session.commit()
    if is_htmx(request):
        return _public_page(request, "help/_feedback.html", locale, {"thanks": True})
    return RedirectResponse(f"{url}?feedback=thanks", status_code=303)


# --- public: the assistant panel -----------------------------------------------------------------

def _turns(session: Session, conversation: AssistantConversation | None) -> list[dict[str, Any]]:
    if conversation is None:
        return []
    found = assistant.turns(session, conversation)
    cited = assistant.citations_by_turn(session, found)
    return [{"role": t.role, "lines": t.text.split("\n"), "answered": t.answered,
             "citations": cited.get(t.id, [])}
            for t in found]


def _live_text(turns: list[dict[str, Any]], error: str, notice: str) -> str:
    """What a screen reader should hear after an HTMX exchange: the refusal, the notice, or the
    assistant's latest answer."""
    if error or notice:
        return error or notice
    latest = next((t for t in reversed(turns) if t["role"] == "assistant"), None)
    return " ".join(" ".join(latest["lines"]).split()) if latest else ""


def _panel(request: Request, session: Session, conversation: AssistantConversation | None,
           locale: str, *, error: str = "", notice: str = "", status_code: int = 200,
           values: dict[str, str] | None = None) -> Response:
    turns = _turns(session, conversation)
    context = {"conversation": conversation, "turns": turns,
               "panel_error": error, "panel_notice": notice, "values": values or {},
               "live": ""}
    if is_htmx(request):  # HTMX swaps 2xx and 422 only: a refusal is shown inside the panel
        # The panel is replaced whole, so it cannot be its own live region (a node swapped in
        # is not announced): the news goes out of band into the layout's `#assistant-live`.
        context["live"] = _live_text(turns, error, notice)
        return _public_page(request, "help/_assistant.html", locale, context,
                            status_code=status_code if status_code in (200, 422) else 200)
    return _public_page(request, "help/assistant.html", locale, context,
                        status_code=status_code)


def _conversation(session: Session, public_id: str) -> AssistantConversation | None:
    return assistant.get(session, public_id) if public_id else None


Text = Annotated[str, Form(max_length=64)]


@router.post(HELP + "/assistant/ask")
def assistant_ask(request: Request, conversation: Text = "",
                  question: Annotated[str, Form(max_length=20_000)] = "",
                  locale: Annotated[str, Form(max_length=16)] = "") -> Response:
    throttle_client(assistant.QUESTIONS_PER_CLIENT, request)
    with public_session(write=True) as session:
        convo = _conversation(session, conversation)
        loc = convo.locale if convo else _reader_locale(locale)
        if not question.strip():
            return _panel(request, session, convo, loc, error="Type a question first.",
                          status_code=422)
        if len(question) > MAX_QUESTION:
            return _panel(request, session, convo, loc, status_code=422,
                          error=f"Please keep your question under {MAX_QUESTION} characters.")
        if convo is None:
            throttle_client(assistant.STARTS_PER_CLIENT, request)
            convo = assistant.start(session, locale=loc)
        try:
            assistant.ask(session, convo, question)
        except Problem as exc:
            session.rollback()
            return _panel(request, session, _conversation(session, conversation), loc,
                          error=exc.detail, status_code=exc.status)
        session.commit()
        return _panel(request, session, convo, loc)


def _panel_action(request: Request, session: Session, public_id: str,
                  act: Callable[[Session, AssistantConversation], str],
                  values: dict[str, str] | None = None) -> Response:
    """Run `act` on the conversation and show the panel with the notice it returns; a refusal
    is rolled back and shown inside the panel, with what the customer typed kept."""
    convo = assistant.get(session, public_id)
    try:
        notice = act(session, convo)
    except Problem as exc:
        session.rollback()
        convo = assistant.get(session, public_id)
        return _panel(request, session, convo, convo.locale, error=exc.detail,
                      status_code=exc.status, values=values)
    session.commit()
    return _panel(request, session, convo, convo.locale, notice=notice)


@router.post(HELP + "/assistant/resolved")
def assistant_resolved(request: Request, conversation: Text = "") -> Response:
    throttle_client(assistant.QUESTIONS_PER_CLIENT, request)

    def resolve(session: Session, convo: AssistantConversation) -> str:
        assistant.mark_resolved(session, convo)
        return "Glad we could help. Thank you!"

    with public_session(write=True) as session:
        return _panel_action(request, session, conversation, resolve)


@router.post(HELP + "/assistant/handoff")
def assistant_handoff(request: Request, conversation: Text = "",
                      name: Annotated[str, Form(max_length=200)] = "",
                      email: Annotated[str, Form(max_length=320)] = "") -> Response:
    throttle_client(assistant.HANDOFFS_PER_CLIENT, request)

    def hand_off(session: Session, convo: AssistantConversation) -> str:
        ticket = assistant.hand_off(session, convo, name=name, email=email)
        return (f"Thank you. Our team has your question as T-{ticket.id} and will reply by "
                "e-mail.")

    with public_session(write=True) as session:
        return _panel_action(request, session, conversation, hand_off,
                             values={"name": name, "email": email})
