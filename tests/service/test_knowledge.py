"""Knowledge-base write path: versions and restore, slugs unique per locale, locales, status
moves, categories, permissions, audit and events."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from accord.access.policy import SYSTEM, Principal
from accord.core.errors import Conflict, Forbidden, NotFound, ValidationProblem
from accord.models import AuditEntry, OutboxEvent
from accord.models.service import KbArticle, KbArticleVersion, KbCategory
from accord.service import knowledge
from accord.service.knowledge_schemas import (
    ArticleCreate,
    ArticleUpdate,
    CategoryCreate,
    CategoryUpdate,
)

SUPPORT = Principal(user_id=None, email="agent@example.com", role="support")
SALES = Principal(user_id=None, email="rep@example.com", role="sales")


def create(session, title="Reset your password", body="Open settings.", **kw) -> KbArticle:
    return knowledge.create_article(session, SYSTEM, ArticleCreate(title=title, body=body, **kw))


def test_every_text_change_is_a_version_and_restore_makes_a_new_one(session):
    article = create(session, note="first")
    assert (article.current_version, article.status, article.visibility) == (1, "draft",
                                                                            "internal")
    knowledge.update_article(session, SYSTEM, article, ArticleUpdate(body="Open the settings.",
                                                                     note="wording"))
    knowledge.update_article(session, SYSTEM, article, ArticleUpdate(title="Password reset"))
    knowledge.update_article(session, SYSTEM, article, ArticleUpdate(visibility="public"))
    assert article.current_version == 3  # visibility is not a text change
    versions = knowledge.list_versions(session, SYSTEM, article)
    assert [(v.number, v.title, v.body, v.note) for v in versions] == [
        (3, "Password reset", "Open the settings.", None),
        (2, "Reset your password", "Open the settings.", "wording"),
        (1, "Reset your password", "Open settings.", "first")]
    knowledge.restore_version(session, SYSTEM, article, 1)
    assert (article.title, article.body, article.current_version) == (
        "Reset your password", "Open settings.", 4)
    latest = knowledge.get_version(session, SYSTEM, article, 4)
    assert latest.note == "Restored from version 1" and latest.body == "Open settings."
    # restoring what is already current changes nothing
    knowledge.restore_version(session, SYSTEM, article, 4)
    assert article.current_version == 4
    with pytest.raises(NotFound):
        knowledge.get_version(session, SYSTEM, article, 9)
    # the slug does not follow the title (links stay valid)
    assert article.slug == "reset-your-password"


def test_unchanged_update_writes_nothing(session):
    article = create(session)
    session.flush()
    row_version = article.version
    knowledge.update_article(session, SYSTEM, article, ArticleUpdate(title=article.title))
    session.flush()
    assert (article.current_version, article.version) == (1, row_version)


def test_slugs_are_unique_per_locale_and_collision_safe(session):
    a = create(session, "Reset your password!")
    b = create(session, "Reset your password?")
    c = create(session, "Reset: your password")
    de = create(session, "Reset your password", locale="de")
    assert [a.slug, b.slug, c.slug, de.slug] == [
        "reset-your-password", "reset-your-password-2", "reset-your-password-3",
        "reset-your-password"]
    assert create(session, "Réinitialiser le mot de passe", locale="fr").slug == \
        "reinitialiser-le-mot-de-passe"
    assert create(session, "Сброс пароля", locale="ru").slug == "article"
    assert create(session, "!!!", locale="ru").slug == "article-2"
    with pytest.raises(Conflict) as taken:
        create(session, "Other", slug="reset-your-password")
    assert taken.value.field == "slug"
    # moving an article into a locale where its slug is taken is refused
    with pytest.raises(Conflict) as moved:
        knowledge.update_article(session, SYSTEM, b, ArticleUpdate(locale="de",
                                                                   slug="reset-your-password"))
    assert moved.value.field == "slug"
    knowledge.update_article(session, SYSTEM, b, ArticleUpdate(slug="forgot-password"))
    assert b.slug == "forgot-password"
    assert create(session, "Reset your password").slug == "reset-your-password-2"


@pytest.mark.parametrize(("raw", "norm"), [("en", "en"), ("EN_gb", "en-GB"), ("pt-br", "pt-BR"),
                                           ("zh-hant-tw", "zh-Hant-TW"), ("es-419", "es-419")])
def test_locales_are_normalised(raw, norm):
    assert knowledge.normalise_locale(raw) == norm


@pytest.mark.parametrize("raw", ["", "e", "english", "xx", "en-", "en-GBR-x", "en GB", "12"])
def test_bad_locales_are_refused(raw):
    with pytest.raises(ValidationProblem) as exc:
        knowledge.normalise_locale(raw)
    assert exc.value.field == "locale"


def test_status_moves(session):
    article = create(session, body="  ")
    with pytest.raises(ValidationProblem) as empty:
        knowledge.publish(session, SYSTEM, article)
    assert empty.value.field == "body"
    knowledge.update_article(session, SYSTEM, article, ArticleUpdate(body="Now with text."))
    knowledge.publish(session, SYSTEM, article)
    assert article.status == "published" and article.published_at is not None
    knowledge.archive(session, SYSTEM, article)
    assert article.status == "archived"
    with pytest.raises(ValidationProblem):
        knowledge.set_status(session, SYSTEM, article, "deleted")
    knowledge.set_status(session, SYSTEM, article, "draft")
    assert article.status == "draft"


def test_categories(session):
    billing = knowledge.create_category(session, SYSTEM, CategoryCreate(name="Billing & Pay"))
    assert billing.slug == "billing-pay"
    twin = knowledge.create_category(session, SYSTEM, CategoryCreate(name="Billing: pay"))
    assert twin.slug == "billing-pay-2"
    child = knowledge.create_category(session, SYSTEM, CategoryCreate(
        name="Invoices", parent_id=billing.id))
    with pytest.raises(ValidationProblem) as loop:
        knowledge.update_category(session, SYSTEM, billing, CategoryUpdate(parent_id=child.id))
    assert loop.value.field == "parent_id"
    with pytest.raises(Conflict):
        knowledge.update_category(session, SYSTEM, twin, CategoryUpdate(slug="billing-pay"))
    with pytest.raises(ValidationProblem) as missing:
        create(session, category_id=999_999)
    assert missing.value.field == "category_id"
    article = create(session, category_id=child.id)
    knowledge.delete_category(session, SYSTEM, child)
    session.refresh(article)
    assert article.category_id is None
    assert [c.slug for c in knowledge.list_categories(session, SYSTEM)] == [
        "billing-pay", "billing-pay-2"]


def test_permissions(session):
    article = create(session)
    # support writes articles but may not delete them; sales only reads
    knowledge.update_article(session, SUPPORT, article, ArticleUpdate(body="Agent edit."))
    with pytest.raises(Forbidden):
        knowledge.delete_article(session, SUPPORT, article)
    assert knowledge.get_article(session, SALES, article.id).id == article.id
    with pytest.raises(Forbidden):
        knowledge.create_article(session, SALES, ArticleCreate(title="No"))
    with pytest.raises(Forbidden):
        knowledge.publish(session, SALES, article)
    privacy = Principal(user_id=None, email="dpo@example.com", role="privacy_officer")
    with pytest.raises(Forbidden):
        knowledge.get_article(session, privacy, article.id)


def test_writes_are_audited_and_emit_events(session):
    article = create(session)
    knowledge.update_article(session, SYSTEM, article, ArticleUpdate(body="Changed."))
    knowledge.publish(session, SYSTEM, article)
    article_id = article.id
    knowledge.delete_article(session, SYSTEM, article)
    session.flush()
    assert session.get(KbArticle, article_id) is None
    assert session.scalar(select(KbArticleVersion.id)) is None  # versions go with it
    audited = [(e.action, e.fields) for e in session.scalars(
        select(AuditEntry).where(AuditEntry.resource == "kb_articles").order_by(AuditEntry.id))]
    assert [a for a, _ in audited] == ["create", "update", "update", "delete"]
    assert audited[1][1] == ["body"] and audited[2][1] == ["status"]
    events = list(session.scalars(select(OutboxEvent.type).where(
        OutboxEvent.aggregate == "kb_article").order_by(OutboxEvent.id)))
    assert events == ["kb_article.created", "kb_article.updated", "kb_article.published",
                      "kb_article.deleted"]


def test_counters_do_not_touch_the_row_version(session):
    article = create(session)
    knowledge.publish(session, SYSTEM, article)
    session.flush()
    version, updated = article.version, article.updated_at
    knowledge.record_view(session, article)
    knowledge.record_feedback(session, article, True)
    knowledge.record_feedback(session, article, False)
    knowledge.record_feedback(session, article, False)
    session.refresh(article)
    assert (article.views, article.helpful_yes, article.helpful_no) == (1, 1, 2)
    assert (article.version, article.updated_at) == (version, updated)


def test_public_reading_shows_only_published_public(session):
    public = create(session, "Public one", visibility="public")
    internal = create(session, "Internal one", visibility="internal")
    draft = create(session, "Draft one", visibility="public")
    for a in (public, internal):
        knowledge.publish(session, SYSTEM, a)
    session.flush()
    assert knowledge.public_article(session, "EN", "public-one").id == public.id
    for slug in ("internal-one", "draft-one", "nope"):
        with pytest.raises(NotFound):
            knowledge.public_article(session, "en", slug)
    with pytest.raises(NotFound):
        knowledge.public_article(session, "../etc", "public-one")
    assert [a.id for a in knowledge.public_articles(session, locale="en")] == [public.id]
    assert draft.status == "draft"
    assert session.scalar(select(KbCategory.id)) is None
