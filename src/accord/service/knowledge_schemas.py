"""Knowledge-base and assistant payloads.

Input models forbid unknown and read-only fields (`id`, `status`, `current_version`, `views`
...): a body carrying one is a 422 naming it. Status moves through the publish/archive
endpoints, never through PATCH, so a draft cannot be published by accident in an edit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from accord.core.validation import RowId, StrictIn
from accord.models.service import KB_STATUSES, KB_VISIBILITIES

Visibility = Literal["internal", "public"]
Status = Literal["draft", "published", "archived"]
assert set(Visibility.__args__) == set(KB_VISIBILITIES)  # type: ignore[attr-defined]
assert set(Status.__args__) == set(KB_STATUSES)  # type: ignore[attr-defined]

SLUG = r"^[a-z0-9][a-z0-9-]{0,119}$"
ARTICLE_SLUG = r"^[a-z0-9][a-z0-9-]{0,159}$"
MAX_BODY = 200_000


# --- categories ----------------------------------------------------------------------------------

class CategoryCreate(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(default=None, pattern=SLUG)  # generated from the name when absent
    parent_id: RowId | None = None
    position: int = Field(default=0, ge=0, le=1_000_000)


class CategoryUpdate(StrictIn):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    slug: str | None = Field(default=None, pattern=SLUG)
    parent_id: RowId | None = None
    position: int | None = Field(default=None, ge=0, le=1_000_000)


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    slug: str
    name: str
    parent_id: int | None
    position: int
    created_at: datetime
    updated_at: datetime


# --- articles ------------------------------------------------------------------------------------

class ArticleCreate(StrictIn):
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(default="", max_length=MAX_BODY)
    locale: str = Field(default="en", min_length=2, max_length=16)
    slug: str | None = Field(default=None, pattern=ARTICLE_SLUG)  # from the title when absent
    category_id: RowId | None = None
    visibility: Visibility = "internal"
    note: str | None = Field(default=None, max_length=300)  # the first version's note


class ArticleUpdate(StrictIn):
    """PATCH: a changed title or body makes a new version (with `note`); the other fields change
    the article in place."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    body: str | None = Field(default=None, max_length=MAX_BODY)
    locale: str | None = Field(default=None, min_length=2, max_length=16)
    slug: str | None = Field(default=None, pattern=ARTICLE_SLUG)
    category_id: RowId | None = None
    visibility: Visibility | None = None
    note: str | None = Field(default=None, max_length=300)


class RestoreIn(StrictIn):
    note: str | None = Field(default=None, max_length=300)


class ArticleSummaryOut(BaseModel):
    """A list row: everything but the body and the counters."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    version: int
    slug: str
    locale: str
    category_id: int | None
    visibility: str
    status: str
    title: str
    current_version: int
    published_at: datetime | None
    updated_at: datetime


class ArticleOut(ArticleSummaryOut):
    """One article: the summary plus its body, author and reader counters."""

    body: str
    author_id: int | None
    views: int
    helpful_yes: int
    helpful_no: int
    created_at: datetime


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: int
    title: str
    body: str
    note: str | None
    author_id: int | None
    created_at: datetime


class SearchHitOut(BaseModel):
    """`snippet` is HTML: the article's text escaped, matches wrapped in `<mark>`."""

    id: int
    title: str
    slug: str
    locale: str
    category_id: int | None
    visibility: str
    snippet: str
    rank: float
    url: str


class PublicArticleOut(BaseModel):
    slug: str
    locale: str
    title: str
    body: str
    category: str | None
    url: str
    published_at: datetime | None
    updated_at: datetime


class PublicArticleSummaryOut(BaseModel):
    slug: str
    locale: str
    title: str
    category: str | None
    url: str


class PublicHitOut(BaseModel):
    slug: str
    locale: str
    title: str
    snippet: str
    rank: float
    url: str


# --- assistant -----------------------------------------------------------------------------------

MAX_QUESTION = 1000


class ConversationStart(StrictIn):
    locale: str = Field(default="en", min_length=2, max_length=16)


class MessageIn(StrictIn):
    text: str = Field(min_length=1, max_length=MAX_QUESTION)


class HandoffIn(StrictIn):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)


class CitationOut(BaseModel):
    article_id: int
    title: str
    url: str
    quote: str


class TurnOut(BaseModel):
    role: str
    text: str
    answered: bool | None
    citations: list[CitationOut] = Field(default_factory=list)
    created_at: datetime


class ConversationOut(BaseModel):
    public_id: str
    locale: str
    status: str
    ticket_reference: str | None
    turns: list[TurnOut]


class AnswerOut(BaseModel):
    answered: bool
    text: str
    citations: list[CitationOut]
    status: str


class HandoffOut(BaseModel):
    status: str
    ticket_reference: str


class DeflectionOut(BaseModel):
    start: datetime
    end: datetime
    conversations: int
    with_question: int
    answered: int
    handed_off: int
    resolved: int
    deflected: int
    deflection_rate: float | None
