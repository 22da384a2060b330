"""REST endpoints for the knowledge base: staff management under /kb (policy resource
`knowledge`), and the public, read-only help centre under /help (no login, published public
articles only, rate-limited per client address). Parse, call the service, serialise.

The assistant's endpoints (`assistant_api`) are included here, so the service domain mounts one
router for this part.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sqlalchemy.orm import Session

from accord.access.deps import Ctx, api_ctx
from accord.access.service import require
from accord.core.clock import utcnow
from accord.core.concurrency import etag
from accord.core.errors import ValidationProblem
from accord.core.ratelimit import client_address, throttle, throttle_client
from accord.core.validation import StrictIn
from accord.service import assistant, knowledge
from accord.service.assistant_api import public_session
from accord.service.assistant_api import router as assistant_router
from accord.service.knowledge_schemas import (
    ArticleCreate,
    ArticleOut,
    ArticleSummaryOut,
    ArticleUpdate,
    CategoryCreate,
    CategoryOut,
    CategoryUpdate,
    DeflectionOut,
    PublicArticleOut,
    PublicArticleSummaryOut,
    PublicHitOut,
    RestoreIn,
    SearchHitOut,
    VersionOut,
)

router = APIRouter()
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Number = Annotated[int, Path(ge=1, le=1_000_000)]
LIST_HELP = (
    "Every article whatever its status. Filters: `status`, `visibility`, `locale` (`__prefix`), "
    "`category_id` (`__isnull`), `updated_at` (`__gte` ...), `id`; `q` is a title substring. "
    "`sort=-updated_at` (default), `id`, `title`; keyset pagination with `cursor` and `limit`."
)
SEARCH_HELP = (
    "Full-text search over published articles, best first: SQLite FTS5 (bm25, title 10:1 over "
    "body, words of 3+ letters also match as prefixes) or PostgreSQL tsvector (ts_rank_cd, "
    "stemming in the article's language). `match=all` needs every word, `any` one of them. "
    "Query syntax is never interpreted: quotes, `*`, `-`, `NEAR`, `OR` are plain text. "
    "`snippet` is HTML (escaped text, matches in `<mark>`)."
)


# --- staff: articles ---------------------------------------------------------------------------

def _summary(article: Any) -> ArticleSummaryOut:
    return ArticleSummaryOut.model_validate(article)


@router.get("/kb/articles", tags=["knowledge base"], summary="List articles",
            description=LIST_HELP)
def list_articles(request: Request, ctx: Ctx = Depends(api_ctx)) -> dict[str, Any]:
    rows, cursor = knowledge.list_articles(ctx.session, ctx.principal,
                                           knowledge.list_params(dict(request.query_params)))
    return {"items": [_summary(a) for a in rows], "next_cursor": cursor}


@router.post("/kb/articles", tags=["knowledge base"], status_code=201, response_model=ArticleOut,
             summary="Create an article (a draft, version 1)",
             description="Without `slug`, one is made from the title and made unique in its "
             "locale (`-2`, `-3` ...); a `slug` given and already taken is a 409.")
def create_article(body: ArticleCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: knowledge.to_out(knowledge.create_article(ctx.session, ctx.principal, body)),
        body, headers=lambda out: {"ETag": etag(out.version),
                                   "Location": f"/api/v1/kb/articles/{out.id}"})


@router.get("/kb/articles/{article_id}", tags=["knowledge base"], response_model=ArticleOut)
def get_article(article_id: Id, response: Response, ctx: Ctx = Depends(api_ctx)) -> ArticleOut:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id)
    response.headers["ETag"] = etag(article.version)
    return knowledge.to_out(article)


@router.patch("/kb/articles/{article_id}", tags=["knowledge base"], response_model=ArticleOut,
              description="Needs `If-Match`. A changed `title` or `body` is a new version "
              "(`note` describes it); other fields change in place. Status moves through "
              "/publish, /unpublish and /archive.")
def update_article(article_id: Id, body: ArticleUpdate, response: Response,
                   if_match: str | None = Header(default=None),
                   ctx: Ctx = Depends(api_ctx)) -> ArticleOut:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id, "update")
    return ctx.updated(article, if_match, response,
                       lambda: knowledge.update_article(ctx.session, ctx.principal, article,
                                                        body),
                       lambda: knowledge.to_out(article))


def _status_endpoint(status: str, summary: str) -> Any:
    def move(article_id: Id, response: Response, if_match: str | None = Header(default=None),
             ctx: Ctx = Depends(api_ctx)) -> ArticleOut:
        article = knowledge.get_article(ctx.session, ctx.principal, article_id, "update")
        return ctx.updated(article, if_match, response,
                           lambda: knowledge.set_status(ctx.session, ctx.principal, article,
                                                        status),
                           lambda: knowledge.to_out(article))

    move.__name__ = f"article_{status}"
    return move


for _path, _status, _summary_text in (
        ("publish", "published", "Publish an article (needs a body; If-Match)"),
        ("unpublish", "draft", "Back to draft (If-Match)"),
        ("archive", "archived", "Archive an article (If-Match)")):
    router.add_api_route(f"/kb/articles/{{article_id}}/{_path}",
                         _status_endpoint(_status, _summary_text), methods=["POST"],
                         tags=["knowledge base"], response_model=ArticleOut,
                         summary=_summary_text)


@router.delete("/kb/articles/{article_id}", tags=["knowledge base"], status_code=204)
def delete_article(article_id: Id, if_match: str | None = Header(default=None),
                   ctx: Ctx = Depends(api_ctx)) -> Response:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id, "delete")
    return ctx.deleted(article, if_match,
                       lambda: knowledge.delete_article(ctx.session, ctx.principal, article))


@router.get("/kb/articles/{article_id}/versions", tags=["knowledge base"],
            response_model=list[VersionOut], summary="An article's versions, newest first")
def list_versions(article_id: Id, ctx: Ctx = Depends(api_ctx)) -> list[VersionOut]:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id)
    return [VersionOut.model_validate(v)
            for v in knowledge.list_versions(ctx.session, ctx.principal, article)]


@router.get("/kb/articles/{article_id}/versions/{number}", tags=["knowledge base"],
            response_model=VersionOut)
def get_version(article_id: Id, number: Number, ctx: Ctx = Depends(api_ctx)) -> VersionOut:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id)
    return VersionOut.model_validate(knowledge.get_version(ctx.session, ctx.principal, article,
                                                           number))


@router.post("/kb/articles/{article_id}/versions/{number}/restore", tags=["knowledge base"],
             response_model=ArticleOut,
             summary="Make an old version current again (as a new version; If-Match)")
def restore_version(article_id: Id, number: Number, response: Response,
                    body: RestoreIn | None = None,
                    if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> ArticleOut:
    article = knowledge.get_article(ctx.session, ctx.principal, article_id, "update")
    note = body.note if body is not None else None
    return ctx.updated(article, if_match, response,
                       lambda: knowledge.restore_version(ctx.session, ctx.principal, article,
                                                         number, note),
                       lambda: knowledge.to_out(article))


# --- staff: categories -------------------------------------------------------------------------

@router.get("/kb/categories", tags=["knowledge base"], response_model=list[CategoryOut])
def list_categories(ctx: Ctx = Depends(api_ctx)) -> list[CategoryOut]:
    return [CategoryOut.model_validate(c)
            for c in knowledge.list_categories(ctx.session, ctx.principal)]


@router.post("/kb/categories", tags=["knowledge base"], status_code=201,
             response_model=CategoryOut)
def create_category(body: CategoryCreate, ctx: Ctx = Depends(api_ctx)) -> Response:
    return ctx.created(
        lambda: CategoryOut.model_validate(
            knowledge.create_category(ctx.session, ctx.principal, body)),
        body, headers=lambda out: {"ETag": etag(out.version),
                                   "Location": f"/api/v1/kb/categories/{out.id}"})


@router.get("/kb/categories/{category_id}", tags=["knowledge base"], response_model=CategoryOut)
def get_category(category_id: Id, response: Response,
                 ctx: Ctx = Depends(api_ctx)) -> CategoryOut:
    category = knowledge.get_category(ctx.session, ctx.principal, category_id)
    response.headers["ETag"] = etag(category.version)
    return CategoryOut.model_validate(category)


@router.patch("/kb/categories/{category_id}", tags=["knowledge base"],
              response_model=CategoryOut)
def update_category(category_id: Id, body: CategoryUpdate, response: Response,
                    if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> CategoryOut:
    category = knowledge.get_category(ctx.session, ctx.principal, category_id, "update")
    return ctx.updated(category, if_match, response,
                       lambda: knowledge.update_category(ctx.session, ctx.principal, category,
                                                         body),
                       lambda: CategoryOut.model_validate(category))


@router.delete("/kb/categories/{category_id}", tags=["knowledge base"], status_code=204)
def delete_category(category_id: Id, if_match: str | None = Header(default=None),
                    ctx: Ctx = Depends(api_ctx)) -> Response:
    category = knowledge.get_category(ctx.session, ctx.principal, category_id, "delete")
    return ctx.deleted(category, if_match,
                       lambda: knowledge.delete_category(ctx.session, ctx.principal, category))


# --- staff: search and assistant figures -------------------------------------------------------

def _hit_out(hit: knowledge.SearchHit) -> SearchHitOut:
    return SearchHitOut(**asdict(hit), url=f"/service/kb/{hit.id}")


@router.get("/kb/search", tags=["knowledge base"], response_model=list[SearchHitOut],
            summary="Search published articles (internal and public)", description=SEARCH_HELP)
def search(q: Annotated[str, Query(max_length=knowledge.MAX_QUERY)],
           locale: Annotated[str | None, Query(max_length=16)] = None,
           category_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
           public_only: bool = False,
           match: Literal["all", "any"] = "all",
           limit: Annotated[int, Query(ge=1, le=knowledge.MAX_LIMIT)] = 10,
           ctx: Ctx = Depends(api_ctx)) -> list[SearchHitOut]:
    require(ctx.principal, knowledge.RESOURCE, "read")
    hits = knowledge.search(ctx.session, q, locale=locale, public_only=public_only,
                            category=category_id, limit=limit, match=match)
    return [_hit_out(h) for h in hits]


@router.get("/kb/assistant/stats", tags=["knowledge base"], response_model=DeflectionOut,
            summary="Assistant deflection rate over a period",
            description="Conversations started in [`start`, `end`) (default: the last 30 days). "
            "`deflection_rate` = conversations with at least one answered question and no "
            "hand-off / conversations with at least one question (null when there were none).")
def assistant_stats(start: datetime | None = None, end: datetime | None = None,
                    ctx: Ctx = Depends(api_ctx)) -> DeflectionOut:
    end = end or utcnow()
    start = start or end - timedelta(days=30)
    if start.tzinfo is None or end.tzinfo is None:
        raise ValidationProblem("give start and end with a time zone (e.g. Z)",
                                          field="start" if start.tzinfo is None else "end")
    s = assistant.stats(ctx.session, ctx.principal, start, end)
    return DeflectionOut(start=s.start, end=s.end, conversations=s.conversations,
                         with_question=s.with_question, answered=s.answered,
                         handed_off=s.handed_off, resolved=s.resolved, deflected=s.deflected,
                         deflection_rate=s.rate)


# --- public help centre (no login) -------------------------------------------------------------

def public_reads(request: Request) -> None:
    """Dependency: the per-address read limit, checked before anything else."""
    throttle_client(knowledge.PUBLIC_READS_PER_CLIENT, request)


def _category_id(session: Session, slug: str | None) -> int | None:
    return knowledge.public_category_by_slug(session, slug).id if slug else None


def _public_summary(article: Any, categories: dict[int, str]) -> PublicArticleSummaryOut:
    return PublicArticleSummaryOut(
        slug=article.slug, locale=article.locale, title=article.title,
        category=categories.get(article.category_id or 0),
        url=knowledge.public_url(article.locale, article.slug))


@router.get("/help/articles", tags=["help centre"], dependencies=[Depends(public_reads)],
            response_model=list[PublicArticleSummaryOut],
            summary="Public articles (no login)",
            description="Published public articles only, by title. `category` is a category "
            "slug. Rate-limited per client address (429 with Retry-After).")
def public_articles(locale: Annotated[str | None, Query(max_length=16)] = None,
                    category: Annotated[str | None, Query(max_length=120)] = None,
                    limit: Annotated[int, Query(ge=1, le=200)] = 50
                    ) -> list[PublicArticleSummaryOut]:
    with public_session() as session:
        loc = knowledge.normalise_locale(locale) if locale else None
        rows = knowledge.public_articles(session, locale=loc,
                                         category_id=_category_id(session, category),
                                         limit=limit)
        names = {c.id: c.name for c, _ in knowledge.public_categories(session)}
        return [_public_summary(a, names) for a in rows]


@router.get("/help/articles/{locale}/{slug}", tags=["help centre"],
            dependencies=[Depends(public_reads)], response_model=PublicArticleOut,
            summary="One public article (no login)")
def public_article(locale: Annotated[str, Path(max_length=16)],
                   slug: Annotated[str, Path(max_length=160)]) -> PublicArticleOut:
    with public_session() as session:
        article = knowledge.public_article(session, locale, slug)
        names = {c.id: c.name for c, _ in knowledge.public_categories(session)}
        return PublicArticleOut(
            slug=article.slug, locale=article.locale, title=article.title, body=article.body,
            category=names.get(article.category_id or 0),
            url=knowledge.public_url(article.locale, article.slug),
            published_at=article.published_at, updated_at=article.updated_at)


@router.get("/help/search", tags=["help centre"], dependencies=[Depends(public_reads)],
            response_model=list[PublicHitOut], summary="Search public articles (no login)",
            description=SEARCH_HELP)
def public_search(q: Annotated[str, Query(max_length=knowledge.MAX_QUERY)],
                  locale: Annotated[str | None, Query(max_length=16)] = None,
                  category: Annotated[str | None, Query(max_length=120)] = None,
                  limit: Annotated[int, Query(ge=1, le=knowledge.MAX_LIMIT)] = 10
                  ) -> list[PublicHitOut]:
    with public_session() as session:
        hits = knowledge.search(session, q, locale=locale, public_only=True,
                                category=_category_id(session, category), limit=limit)
        return [PublicHitOut(slug=h.slug, locale=h.locale, title=h.title, snippet=h.snippet,
                             rank=h.rank, url=knowledge.public_url(h.locale, h.slug))
                for h in hits]


class FeedbackIn(StrictIn):
    helpful: bool


@router.post("/help/articles/{locale}/{slug}/feedback", tags=["help centre"],
             status_code=204, summary="\"Was this helpful?\" (no login)",
             description="Counts one yes or no. Rate-limited per client address, and one "
             "answer per address and article every 6 hours (429 with Retry-After).")
def public_feedback(locale: Annotated[str, Path(max_length=16)],
                    slug: Annotated[str, Path(max_length=160)], body: FeedbackIn,
                    request: Request) -> Response:
    client = client_address(request)
    throttle(knowledge.FEEDBACK_PER_CLIENT, client)
    with public_session(write=True) as session:
        article = knowledge.public_article(session, locale, slug)
        throttle(knowledge.FEEDBACK_PER_ARTICLE, f"{client}|{article.id}")
        knowledge.record_feedback(session, article, body.helpful)
        session.commit()
    return Response(status_code=204)


router.include_router(assistant_router)
