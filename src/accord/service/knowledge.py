"""Knowledge base: categories, articles with every version kept, publishing, and full-text search.

The one write path for `kb_categories`, `kb_articles` and `kb_article_versions` (policy
resource `knowledge`, audit, outbox events). An article is one locale's text; a change of title
or body is a new `KbArticleVersion` and bumps `current_version` (restoring an old version is
itself a new version, so history is never rewritten). Slugs are unique per locale: generated
from the title (ASCII, collision-safe with `-2`, `-3` ...) or chosen by the author (a taken one
is a 409). A slug does not follow later title edits, so published links stay valid.

Search (`search`) runs on the objects the migration made: SQLite's FTS5 table
`kb_articles_fts` (bm25, title weighted 10:1 over body) or PostgreSQL's generated
`kb_articles.search_vector` (title weight A, body B, in the article's language). The user's text
never reaches either query language: it is cut into words (`\\w+`) and each word is quoted
(FTS5) or handed to `websearch_to_tsquery` as plain words, so `"`, `*`, `NEAR`, `-`, `OR`,
parentheses and the like are only ever searched for as text, never interpreted.

What each engine matches (the tests assert exactly this):
- SQLite: case- and accent-insensitive words; a word of 3+ letters also matches as a prefix
  (`refund` finds "refunds", "refunded"), because the migration's tokenizer has no stemmer;
  the longer form does not find the shorter one (`refunds` does not find "refund").
- PostgreSQL: the article's language stems both ways (`refunds` finds "refund" in English) and
  drops stop words. With `locale` the query is parsed in that locale's configuration; without
  one it is parsed twice, OR-ed: as typed (`simple`) and in the deployment's default language
  (`ACCORD_DEFAULT_LOCALE`), so exact words match in every language and inflections in the
  default one.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from babel import localedata
from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.access.service import require
from accord.core.clock import utcnow
from accord.core.db import is_postgres
from accord.core.errors import Conflict, NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.query import (
    Filter,
    ListParams,
    ListSpec,
    Sort,
    page_of,
    paginate,
    request_params,
)
from accord.core.ratelimit import SlidingWindow
from accord.core.settings import get_settings
from accord.models.service import (
    KB_STATUSES,
    KB_VISIBILITIES,
    KbArticle,
    KbArticleVersion,
    KbCategory,
)
from accord.service.knowledge_schemas import (
    ArticleCreate,
    ArticleOut,
    ArticleUpdate,
    CategoryCreate,
    CategoryUpdate,
)

RESOURCE = "knowledge"
ARTICLES = "kb_articles"  # audit resource names
CATEGORIES = "kb_categories"
# Status moves; `published_at` is set on every move to published.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"published", "archived"}),
    "published": frozenset({"draft", "archived"}),
    "archived": frozenset({"draft", "published"}),
}
assert set(TRANSITIONS) == set(KB_STATUSES)
STATUS_EVENTS = {"published": "kb_article.published", "archived": "kb_article.archived",
                 "draft": "kb_article.unpublished"}

# --- locales ---------------------------------------------------------------------------------

# BCP 47-ish: language (2-3 letters, known to CLDR), optional script, optional region.
_LOCALE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|\d{3}))?$")
# The locale → text-search configuration table of migration 0007 (`_PG_CONFIG`); a test holds
# the two equal, because a query parsed in another configuration than the stored vector misses.
PG_CONFIGS: dict[str, str] = {
    "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
    "nl": "dutch", "pt": "portuguese", "sv": "swedish", "da": "danish", "fi": "finnish",
    "no": "norwegian", "ru": "russian",
}


def normalise_locale(value: str, field: str = "locale") -> str:
    """`EN_gb` → `en-GB`, `zh-hant-tw` → `zh-Hant-TW`; a 422 naming `field` otherwise."""
    match = _LOCALE.match(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValidationProblem(
            f"{str(value)[:20]!r} is not a locale such as en, en-GB or pt-BR", field=field)
    lang, script, region = match.group(1).lower(), match.group(2), match.group(3)
    if not localedata.exists(lang):
        raise ValidationProblem(f"unknown language {lang!r}", field=field)
    parts = [lang] + ([script.title()] if script else []) + ([region.upper()] if region else [])
    return "-".join(parts)


def language_of(locale: str) -> str:
    return locale.split("-", 1)[0].lower()


def pg_config(locale: str | None) -> str:
    """The regconfig name the migration uses for an article in `locale` ('simple' otherwise)."""
    return PG_CONFIGS.get(language_of(locale), "simple") if locale else "simple"


def _default_locale() -> str:
    try:
        return normalise_locale(get_settings().default_locale)
    except ValidationProblem:
        return "en"


def locale_clause(locale: str) -> ColumnElement[bool]:
    """Articles for a reader in `locale`: `en` reads en, en-GB, en-US ...; `en-GB` reads en-GB
    and plain en (the language's generic text), never en-US."""
    lang = language_of(locale)
    if locale == lang:
        return or_(KbArticle.locale == lang, KbArticle.locale.startswith(lang + "-"))
    return KbArticle.locale.in_((locale, lang))


# --- slugs -----------------------------------------------------------------------------------

def slugify(text_: str, max_length: int = 150) -> str:
    """ASCII, lower case, words joined by '-' ('Réinitialiser le mot de passe' →
    'reinitialiser-le-mot-de-passe'); 'article' when nothing is left."""
    ascii_ = unicodedata.normalize("NFKD", text_).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")[:max_length].rstrip("-")
    return slug or "article"


def _free_slug(session: Session, base: str, taken_in: Select[Any]) -> str:
    """`base`, else the first free `base-N` among the slugs `taken_in` selects."""
    taken = set(session.scalars(taken_in))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _article_slug(session: Session, base: str, locale: str, exclude_id: int | None) -> str:
    stmt = select(KbArticle.slug).where(
        KbArticle.locale == locale,
        or_(KbArticle.slug == base, KbArticle.slug.startswith(base + "-", autoescape=True)))
    if exclude_id is not None:
        stmt = stmt.where(KbArticle.id != exclude_id)
    return _free_slug(session, base, stmt)


def _slug_taken(session: Session, slug: str, locale: str, exclude_id: int | None) -> bool:
    stmt = select(KbArticle.id).where(KbArticle.slug == slug, KbArticle.locale == locale)
    if exclude_id is not None:
        stmt = stmt.where(KbArticle.id != exclude_id)
    return session.scalar(stmt.limit(1)) is not None


# --- categories ------------------------------------------------------------------------------

def list_categories(session: Session, principal: Principal) -> list[KbCategory]:
    require(principal, RESOURCE, "read")
    return list(session.scalars(select(KbCategory).order_by(KbCategory.position,
                                                             KbCategory.name, KbCategory.id)))


def get_category(session: Session, principal: Principal, category_id: int,
                 action: str = "read") -> KbCategory:
    require(principal, RESOURCE, action)
    category = session.get(KbCategory, category_id)
    if category is None:
        raise NotFound(f"category {category_id} does not exist")
    return category


def _check_parent(session: Session, category: KbCategory, parent_id: int | None) -> None:
    """The parent exists and is not the category itself or one of its descendants."""
    seen: set[int] = set()
    current = parent_id
    while current is not None:
        if category.id is not None and current == category.id:
            raise ValidationProblem("a category cannot be inside itself", field="parent_id")
        if current in seen:
            break
        seen.add(current)
        parent = session.get(KbCategory, current)
        if parent is None:
            raise ValidationProblem(f"category {current} does not exist", field="parent_id")
        current = parent.parent_id


def create_category(session: Session, principal: Principal, data: CategoryCreate) -> KbCategory:
    require(principal, RESOURCE, "create")
    if data.slug is not None:
        if session.scalar(select(KbCategory.id).where(KbCategory.slug == data.slug)):
            raise Conflict(f"a category with slug {data.slug!r} already exists", field="slug")
        slug = data.slug
    else:
        base = slugify(data.name, 110)
        slug = _free_slug(session, base, select(KbCategory.slug).where(or_(
            KbCategory.slug == base, KbCategory.slug.startswith(base + "-", autoescape=True))))
    category = KbCategory(name=data.name, slug=slug, parent_id=data.parent_id,
                          position=data.position)
    _check_parent(session, category, data.parent_id)
    session.add(category)
    session.flush()
    audit.record(session, principal, "create", CATEGORIES, category.id,
                 data.model_dump(exclude_unset=True).keys())
    emit(session, "kb_category.created", "kb_category", category.id, {"slug": slug},
         principal.user_id)
    return category


def update_category(session: Session, principal: Principal, category: KbCategory,
                    data: CategoryUpdate) -> KbCategory:
    require(principal, RESOURCE, "update")
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "slug", "position"):
        if key in changes and changes[key] is None:
            raise ValidationProblem(f"{key} cannot be null", field=key)
    changed = [k for k, v in changes.items() if getattr(category, k) != v]
    if not changed:
        return category
    if "slug" in changed and session.scalar(select(KbCategory.id).where(
            KbCategory.slug == changes["slug"], KbCategory.id != category.id)):
        raise Conflict(f"a category with slug {changes['slug']!r} already exists", field="slug")
    if "parent_id" in changed:
        _check_parent(session, category, changes["parent_id"])
    for key in changed:
        setattr(category, key, changes[key])
    session.flush()
    audit.record(session, principal, "update", CATEGORIES, category.id, changed)
    emit(session, "kb_category.updated", "kb_category", category.id,
         {"fields": sorted(changed)}, principal.user_id)
    return category


def delete_category(session: Session, principal: Principal, category: KbCategory) -> None:
    """Its articles and subcategories stay, uncategorised / at the top (ON DELETE SET NULL)."""
    require(principal, RESOURCE, "delete")
    audit.record(session, principal, "delete", CATEGORIES, category.id, (),
                 {"slug": category.slug})
    emit(session, "kb_category.deleted", "kb_category", category.id, {"slug": category.slug},
         principal.user_id)
    session.delete(category)
    session.flush()


# --- articles: reading -------------------------------------------------------------------------

FILTERS: dict[str, Filter] = {
    "id": Filter(KbArticle.id, int, frozenset({"eq", "in", "lt", "gt"})),
    "status": Filter(KbArticle.status, choices=KB_STATUSES, ops=frozenset({"eq", "ne", "in"})),
    "visibility": Filter(KbArticle.visibility, choices=KB_VISIBILITIES,
                         ops=frozenset({"eq", "in"})),
    "locale": Filter(KbArticle.locale, ops=frozenset({"eq", "in", "prefix"})),
    "category_id": Filter(KbArticle.category_id, int, frozenset({"eq", "in", "isnull"})),
    "updated_at": Filter(KbArticle.updated_at, datetime,
                         frozenset({"eq", "lt", "lte", "gt", "gte"})),
}
SORTS: dict[str, Sort] = {
    "id": Sort(KbArticle.id, int),
    "updated_at": Sort(KbArticle.updated_at, datetime),
    "title": Sort(KbArticle.title, str),
}


def list_spec() -> ListSpec:
    return ListSpec(resource=RESOURCE, id_column=KbArticle.id, filters=FILTERS, sorts=SORTS,
                    default_sort="-updated_at")


def list_params(query: dict[str, str]) -> ListParams:
    return request_params(query, list_spec())


def list_articles(session: Session, principal: Principal, params: ListParams
                  ) -> tuple[list[KbArticle], str | None]:
    """Every article whatever its status (staff); `q` is a case-insensitive title substring."""
    require(principal, RESOURCE, "read")
    spec = list_spec()
    stmt = select(KbArticle)
    if params.q:
        stmt = stmt.where(func.lower(KbArticle.title).contains(params.q.lower(),
                                                               autoescape=True))
    rows = list(session.scalars(paginate(stmt, spec, params)))
    return page_of(rows, spec, params)


def get_article(session: Session, principal: Principal, article_id: int,
                action: str = "read") -> KbArticle:
    require(principal, RESOURCE, action)
    article = session.get(KbArticle, article_id)
    if article is None:
        raise NotFound(f"article {article_id} does not exist")
    return article


def list_versions(session: Session, principal: Principal, article: KbArticle
                  ) -> list[KbArticleVersion]:
    """Newest first."""
    require(principal, RESOURCE, "read")
    return list(session.scalars(select(KbArticleVersion)
                                .where(KbArticleVersion.article_id == article.id)
                                .order_by(KbArticleVersion.number.desc())))


def get_version(session: Session, principal: Principal, article: KbArticle,
                number: int) -> KbArticleVersion:
    require(principal, RESOURCE, "read")
    version = session.scalar(select(KbArticleVersion).where(
        KbArticleVersion.article_id == article.id, KbArticleVersion.number == number))
    if version is None:
        raise NotFound(f"article {article.id} has no version {number}")
    return version


def to_out(article: KbArticle) -> ArticleOut:
    return ArticleOut.model_validate(article)


# --- articles: writing -------------------------------------------------------------------------

def _check_category(session: Session, category_id: int | None) -> None:
    if category_id is not None and session.get(KbCategory, category_id) is None:
        raise ValidationProblem(f"category {category_id} does not exist", field="category_id")


def _add_version(session: Session, principal: Principal, article: KbArticle,
                 note: str | None) -> KbArticleVersion:
    version = KbArticleVersion(article_id=article.id, number=article.current_version,
                               title=article.title, body=article.body, note=note,
                               author_id=principal.user_id)
    session.add(version)
    return version


def create_article(session: Session, principal: Principal, data: ArticleCreate) -> KbArticle:
    """A draft with version 1. Without `slug`, one is made from the title, free in its locale."""
    require(principal, RESOURCE, "create")
    locale = normalise_locale(data.locale)
    _check_category(session, data.category_id)
    if data.slug is not None and _slug_taken(session, data.slug, locale, None):
        raise Conflict(f"the slug {data.slug!r} is taken in locale {locale}", field="slug")
    article: KbArticle | None = None
    for _attempt in range(5):
        # A generated slug is checked, then inserted; a concurrent writer taking it in between
        # makes the insert fail (PostgreSQL; SQLite serialises writers) and the next read sees
        # that writer's row, so the next free suffix is taken.
        slug = data.slug or _article_slug(session, slugify(data.title), locale, None)
        candidate = KbArticle(title=data.title, body=data.body, locale=locale, slug=slug,
                              category_id=data.category_id, visibility=data.visibility,
                              status="draft", current_version=1, author_id=principal.user_id)
        try:
            with session.begin_nested():
                session.add(candidate)
                session.flush()
        except IntegrityError:
            if data.slug is not None:
                break
            continue
        article = candidate
        break
    if article is None:
        raise Conflict(f"the slug is taken in locale {locale}; try again", field="slug")
    _add_version(session, principal, article, data.note)
    session.flush()
    audit.record(session, principal, "create", ARTICLES, article.id,
                 data.model_dump(exclude_unset=True).keys(), {"version": 1, "locale": locale})
    emit(session, "kb_article.created", "kb_article", article.id,
         {"locale": locale, "slug": article.slug, "visibility": article.visibility},
         principal.user_id)
    return article


def update_article(session: Session, principal: Principal, article: KbArticle,
                   data: ArticleUpdate) -> KbArticle:
    """One PATCH, one row version. A changed title or body is a new article version."""
    require(principal, RESOURCE, "update")
    sent = data.model_dump(exclude_unset=True)
    note = sent.pop("note", None)
    for key in ("title", "body", "locale", "slug", "visibility"):
        if key in sent and sent[key] is None:
            raise ValidationProblem(f"{key} cannot be null", field=key)
    if "locale" in sent:
        sent["locale"] = normalise_locale(sent["locale"])
    changed = [k for k, v in sent.items() if getattr(article, k) != v]
    if not changed:
        return article
    if "category_id" in changed:
        _check_category(session, sent["category_id"])
    if "slug" in changed or "locale" in changed:
        slug, locale = sent.get("slug", article.slug), sent.get("locale", article.locale)
        if _slug_taken(session, slug, locale, article.id):
            raise Conflict(f"the slug {slug!r} is taken in locale {locale}",
                           field="slug" if "slug" in changed else "locale")
    new_text = any(k in changed for k in ("title", "body"))
    with session.no_autoflush:
        for key in changed:
            setattr(article, key, sent[key])
        if new_text:
            article.current_version += 1
    session.flush()
    if new_text:
        _add_version(session, principal, article, note)
        session.flush()
    audit.record(session, principal, "update", ARTICLES, article.id, changed,
                 {"version": article.current_version} if new_text else None)
    emit(session, "kb_article.updated", "kb_article", article.id,
         {"fields": sorted(changed), "version": article.current_version}, principal.user_id)
    return article


def restore_version(session: Session, principal: Principal, article: KbArticle, number: int,
                    note: str | None = None) -> KbArticle:
    """Version `number`'s title and body become a new current version (history is kept)."""
    require(principal, RESOURCE, "update")
    old = get_version(session, principal, article, number)
    if (old.title, old.body) == (article.title, article.body):
        return article
    article.title, article.body = old.title, old.body
    article.current_version += 1
    session.flush()
    _add_version(session, principal, article, note or f"Restored from version {number}")
    session.flush()
    audit.record(session, principal, "update", ARTICLES, article.id, ["title", "body"],
                 {"restored_from": number, "version": article.current_version})
    emit(session, "kb_article.updated", "kb_article", article.id,
         {"fields": ["body", "title"], "version": article.current_version,
          "restored_from": number}, principal.user_id)
    return article


def set_status(session: Session, principal: Principal, article: KbArticle,
               status: str) -> KbArticle:
    """draft ⇄ published ⇄ archived; publishing needs a body."""
    require(principal, RESOURCE, "update")
    if status not in TRANSITIONS:
        raise ValidationProblem(f"status must be one of {', '.join(KB_STATUSES)}",
                                field="status")
    old = article.status
    if status == old:
        return article
    if status not in TRANSITIONS[old]:
        raise Conflict(f"an article cannot go from {old} to {status}", field="status")
    if status == "published" and not article.body.strip():
        raise ValidationProblem("an article needs a body to be published", field="body")
    article.status = status
    if status == "published":
        article.published_at = utcnow()
    session.flush()
    audit.record(session, principal, "update", ARTICLES, article.id, ["status"],
                 {"from": old, "to": status})
    emit(session, STATUS_EVENTS[status], "kb_article", article.id,
         {"from": old, "to": status, "visibility": article.visibility}, principal.user_id)
    return article


def publish(session: Session, principal: Principal, article: KbArticle) -> KbArticle:
    return set_status(session, principal, article, "published")


def archive(session: Session, principal: Principal, article: KbArticle) -> KbArticle:
    return set_status(session, principal, article, "archived")


def delete_article(session: Session, principal: Principal, article: KbArticle) -> None:
    require(principal, RESOURCE, "delete")
    audit.record(session, principal, "delete", ARTICLES, article.id, (),
                 {"slug": article.slug, "locale": article.locale})
    emit(session, "kb_article.deleted", "kb_article", article.id,
         {"slug": article.slug, "locale": article.locale}, principal.user_id)
    session.delete(article)
    session.flush()


# --- public reading (self-service pages, public API, assistant) ------------------------------

def public_url(locale: str, slug: str) -> str:
    return f"/help/{locale}/{slug}"


def _public() -> list[ColumnElement[bool]]:
    return [KbArticle.status == "published", KbArticle.visibility == "public"]


def public_article(session: Session, locale: str, slug: str) -> KbArticle:
    """A published public article, else 404 (drafts, archived and internal ones alike)."""
    try:
        loc = normalise_locale(locale)
    except ValidationProblem:
        raise NotFound("there is no such article") from None
    article = None
    if len(slug) <= 160:
        article = session.scalar(select(KbArticle).where(
            KbArticle.locale == loc, KbArticle.slug == slug, *_public()))
    if article is None:
        raise NotFound("there is no such article")
    return article


def public_articles(session: Session, *, locale: str | None = None,
                    category_id: int | None = None, limit: int = 50,
                    order: Literal["recent", "popular", "title"] = "title") -> list[KbArticle]:
    stmt = select(KbArticle).where(*_public())
    if locale:
        stmt = stmt.where(locale_clause(locale))
    if category_id is not None:
        stmt = stmt.where(KbArticle.category_id == category_id)
    orders = {"recent": (KbArticle.published_at.desc(), KbArticle.id.desc()),
              "popular": (KbArticle.views.desc(), KbArticle.id.desc()),
              "title": (KbArticle.title, KbArticle.id)}
    return list(session.scalars(stmt.order_by(*orders[order]).limit(max(1, min(limit, 200)))))


def public_categories(session: Session, locale: str | None = None) -> list[tuple[KbCategory, int]]:
    """Categories holding at least one public article (in `locale`), with the count."""
    count = func.count(KbArticle.id)
    stmt = (select(KbCategory, count).join(KbArticle, KbArticle.category_id == KbCategory.id)
            .where(*_public()))
    if locale:
        stmt = stmt.where(locale_clause(locale))
    stmt = stmt.group_by(KbCategory.id).order_by(KbCategory.position, KbCategory.name)
    return [(c, n) for c, n in session.execute(stmt).all()]


def public_category_by_slug(session: Session, slug: str) -> KbCategory:
    """A category holding at least one published public article, else the same 404 as for an
    unknown slug: a category used only by internal or draft articles is not disclosed on the
    public pages and API (its name, or even its existence)."""
    category = session.scalar(select(KbCategory).where(
        KbCategory.slug == slug[:120],
        exists().where(KbArticle.category_id == KbCategory.id, *_public())))
    if category is None:
        raise NotFound("there is no such category")
    return category


# Public (no login) limits per client address; each `accord serve` process counts on its own.
PUBLIC_READS_PER_CLIENT = SlidingWindow(limit=300, window_seconds=60)
FEEDBACK_PER_CLIENT = SlidingWindow(limit=20, window_seconds=600)
FEEDBACK_PER_ARTICLE = SlidingWindow(limit=1, window_seconds=6 * 3600)  # key: client + article


def _bump(session: Session, article_id: int, column: str) -> None:
    """Counters change without touching `version` or `updated_at` (an editor's ETag stays)."""
    table = KbArticle.__table__
    session.execute(update(table).where(table.c.id == article_id).values(
        {column: table.c[column] + 1, "updated_at": table.c.updated_at}))


def record_view(session: Session, article: KbArticle) -> None:
    _bump(session, article.id, "views")


def record_feedback(session: Session, article: KbArticle, helpful: bool) -> None:
    """A "was this helpful?" answer (anonymous; the caller rate-limits)."""
    _bump(session, article.id, "helpful_yes" if helpful else "helpful_no")


# --- search ----------------------------------------------------------------------------------

MAX_QUERY = 500
MAX_TERMS = 32
MAX_LIMIT = 50
_WORD = re.compile(r"\w+")
# Highlight markers (Unicode private use): the snippet is HTML-escaped, then they become <mark>.
_START, _END = "\ue000", "\ue001"


@dataclass(frozen=True)
class SearchHit:
    id: int
    title: str
    slug: str
    locale: str
    category_id: int | None
    visibility: str
    snippet: str  # HTML: escaped text, matches in <mark>
    rank: float  # higher is better; comparable within one result list only


def query_terms(query: str) -> list[str]:
    """The words of a user's query (lower case, distinct, at most MAX_TERMS); every operator
    character of FTS5 or tsquery syntax is a separator here."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query[:MAX_QUERY].casefold()):
        word = word.strip("_")
        if word and word not in seen:
            seen[word] = None
        if len(seen) >= MAX_TERMS:
            break
    return list(seen)


def fts5_query(terms: list[str], match: Literal["all", "any"] = "all") -> str:
    """Each term a quoted FTS5 string (so never an operator); 3+ characters also as a prefix."""
    quoted = ['"' + t.replace('"', '""') + '"' + ("*" if len(t) >= 3 else "") for t in terms]
    return (" OR " if match == "any" else " ").join(quoted)


def highlight(raw: str) -> str:
    """Escape a snippet and turn the markers into balanced <mark> elements."""
    out: list[str] = []
    open_ = False
    for piece in re.split(f"([{_START}{_END}])", raw):
        if piece == _START:
            if not open_:
                out.append("<mark>")
                open_ = True
        elif piece == _END:
            if open_:
                out.append("</mark>")
                open_ = False
        else:
            out.append(html.escape(piece, quote=False))
    if open_:
        out.append("</mark>")
    return "".join(out)


def _filters(locale: str | None, public_only: bool, category: int | None,
             params: dict[str, Any]) -> str:
    """SQL conditions on `a` (kb_articles) from fixed fragments; values are bound. Status,
    visibility and locale are the columns of `ix_kb_articles_visible`, so SQLite can answer
    them from that index without reading the (large) article rows."""
    where = ["a.status = 'published'"]
    if public_only:
        where.append("a.visibility = 'public'")
    if locale:
        lang = language_of(locale)
        params["loc_lang"] = lang
        if locale == lang:
            params["loc_prefix"] = lang + "-%"
            where.append("(a.locale = :loc_lang OR a.locale LIKE :loc_prefix)")
        else:
            params["loc_exact"] = locale
            where.append("(a.locale = :loc_exact OR a.locale = :loc_lang)")
    if category is not None:
        params["category"] = category
        where.append("a.category_id = :category")
    return " AND ".join(where)


def search(session: Session, query: str, *, locale: str | None = None,
           public_only: bool = False, category: int | None = None, limit: int = 10,
           match: Literal["all", "any"] = "all") -> list[SearchHit]:
    """Published articles matching `query`, best first, at most `limit` (1..50).

    `match="all"` needs every word (the search box); `"any"` needs one (the assistant's
    retrieval, ranking does the rest). `public_only` for public pages and the assistant.
    An invalid `locale` is a 422; a query without words returns nothing."""
    if locale is not None:
        locale = normalise_locale(locale)
    terms = query_terms(query or "")
    if not terms:
        return []
    limit = max(1, min(int(limit), MAX_LIMIT))
    if is_postgres(session):
        return _search_pg(session, terms, locale, public_only, category, limit, match)
    return _search_sqlite(session, terms, locale, public_only, category, limit, match)


def _search_sqlite(session: Session, terms: list[str], locale: str | None, public_only: bool,
                   category: int | None, limit: int, match: Literal["all", "any"]
                   ) -> list[SearchHit]:
    """Rank inside FTS5 against the set of eligible ids (built once from the covering index),
    then read titles and snippets for the few rows returned only: joining the article rows
    before ranking would read every matching article's body. The unary `+` keeps SQLite from
    handing the id list to FTS5 as rowid lookups (one full-text query per eligible id)."""
    params: dict[str, Any] = {"q": fts5_query(terms, match), "limit": limit}
    where = _filters(locale, public_only, category, params)
    # `where` is built from fixed fragments; every value is a bound parameter
    sql = " ".join((
        "SELECT rowid AS id, bm25(kb_articles_fts, 10.0, 1.0) AS score FROM kb_articles_fts",
        "WHERE kb_articles_fts MATCH :q AND +rowid IN (SELECT a.id FROM kb_articles a WHERE",
        where, ") ORDER BY score, id LIMIT :limit"))
    ranked = session.execute(text(sql), params).all()
    if not ranked:
        return []
    ids = [r.id for r in ranked]
    rows = {r.id: r for r in session.execute(
        select(KbArticle.id, KbArticle.title, KbArticle.slug, KbArticle.locale,
               KbArticle.category_id, KbArticle.visibility).where(KbArticle.id.in_(ids)))}
    snippets = dict(session.execute(text(
        "SELECT rowid, snippet(kb_articles_fts, 1, :s, :e, '…', 24) FROM kb_articles_fts "
        "WHERE kb_articles_fts MATCH :q AND rowid IN :ids").bindparams(
            bindparam("ids", expanding=True)),
        {"q": params["q"], "s": _START, "e": _END, "ids": ids}).all())
    return [SearchHit(r.id, r.title, r.slug, r.locale, r.category_id, r.visibility,
                      highlight(snippets.get(r.id) or ""), round(-float(score), 6))
            for rid, score in ranked if (r := rows.get(rid)) is not None]


# The article's text-search configuration, as in the migration (for ts_headline).
_ROW_CONFIG = ("CASE split_part(a.locale, '-', 1) "
               + " ".join(f"WHEN '{code}' THEN '{name}'::regconfig"
                          for code, name in PG_CONFIGS.items())
               + " ELSE 'simple'::regconfig END")
_HEADLINE = (f"StartSel={_START}, StopSel={_END}, MaxWords=35, MinWords=12, ShortWord=2, "
             "MaxFragments=2, FragmentDelimiter=\" … \"")


def _search_pg(session: Session, terms: list[str], locale: str | None, public_only: bool,
               category: int | None, limit: int, match: Literal["all", "any"]
               ) -> list[SearchHit]:
    words = [t for t in terms if t != "or"] if match == "any" else terms
    if not words:
        return []
    params: dict[str, Any] = {"q": (" or " if match == "any" else " ").join(words),
                              "limit": limit}
    if locale:
        params["cfg"] = pg_config(locale)
        tsquery = "websearch_to_tsquery(CAST(:cfg AS regconfig), :q)"
    else:
        params["cfg"] = pg_config(_default_locale())
        tsquery = ("(websearch_to_tsquery('simple'::regconfig, :q) || "
                   "websearch_to_tsquery(CAST(:cfg AS regconfig), :q))")
    where = _filters(locale, public_only, category, params)
    # `tsquery` and `where` are fixed fragments; every value is a bound parameter
    sql = " ".join((
        "WITH q AS (SELECT", tsquery, "AS query),",
        "hits AS (SELECT a.id, a.title, a.slug, a.locale, a.category_id, a.visibility, a.body,",
        "ts_rank_cd(a.search_vector, q.query) AS score",
        "FROM kb_articles a, q WHERE a.search_vector @@ q.query AND", where,
        "ORDER BY score DESC, a.id LIMIT :limit)",
        "SELECT a.id, a.title, a.slug, a.locale, a.category_id, a.visibility, a.score,",
        "ts_headline(", _ROW_CONFIG, ", a.body, q.query, :opts) AS snippet",
        "FROM hits a, q ORDER BY a.score DESC, a.id"))
    rows = session.execute(text(sql), {**params, "opts": _HEADLINE}).all()
    return [SearchHit(r.id, r.title, r.slug, r.locale, r.category_id, r.visibility,
                      highlight(r.snippet or ""), round(float(r.score), 6)) for r in rows]
