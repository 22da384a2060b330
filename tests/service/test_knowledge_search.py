"""Knowledge-base full-text search on both engines: ranking, what each engine matches (SQLite
prefixes, PostgreSQL stemming), locale and category filters, drafts and internal articles never
leaking into public results, and hostile query text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from accord.access.policy import SYSTEM
from accord.core.db import is_postgres
from accord.service import knowledge
from accord.service.knowledge_schemas import ArticleCreate, CategoryCreate

MIGRATION = (Path(knowledge.__file__).parents[1] / "migrations" / "versions"
             / "0007_service.py")


def add(session, title: str, body: str, *, locale: str = "en", visibility: str = "public",
        publish: bool = True, category_id: int | None = None) -> int:
    article = knowledge.create_article(session, SYSTEM, ArticleCreate(
        title=title, body=body, locale=locale, visibility=visibility, category_id=category_id))
    if publish:
        knowledge.publish(session, SYSTEM, article)
    session.flush()
    return article.id


def ids(hits) -> list[int]:
    return [h.id for h in hits]


def test_pg_config_mapping_is_the_migrations():
    spec = importlib.util.spec_from_file_location("m0007", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = ("CASE split_part(locale, '-', 1) " + " ".join(
        f"WHEN '{c}' THEN '{n}'::regconfig" for c, n in knowledge.PG_CONFIGS.items())
        + " ELSE 'simple'::regconfig END")
    assert expected == module._PG_CONFIG


def test_title_match_ranks_above_body_match(session):
    body_only = add(session, "Shipping times", "You can ask for a refund on the order page.")
    title = add(session, "Refund policy", "Our rules for returning goods and money back.")
    hits = knowledge.search(session, "refund")
    assert ids(hits) == [title, body_only]
    assert hits[0].rank > hits[1].rank
    assert "<mark>" in hits[1].snippet and "refund" in hits[1].snippet.lower()


def test_all_words_needed_by_default_any_word_on_request(session):
    both = add(session, "Reset your password", "Open settings and choose reset password.")
    one = add(session, "Password rules", "A password needs twelve characters.")
    assert ids(knowledge.search(session, "reset password")) == [both]
    assert set(ids(knowledge.search(session, "reset password", match="any"))) == {both, one}


def test_what_each_engine_matches(session):
    """SQLite (unicode61, no stemmer): prefixes of 3+ letters; PostgreSQL (english): stems."""
    plural = add(session, "Refunds", "Refunds are paid within five days.")
    singular = add(session, "Money back", "Each refund is paid to the original card.")
    if is_postgres(session):
        assert set(ids(knowledge.search(session, "refunds", locale="en"))) == {plural, singular}
        assert set(ids(knowledge.search(session, "refund", locale="en"))) == {plural, singular}
        # no locale: exact words in any language OR the default language's stems
        assert set(ids(knowledge.search(session, "refunding"))) == {plural, singular}
    else:
        assert set(ids(knowledge.search(session, "refund"))) == {plural, singular}
        assert ids(knowledge.search(session, "refunds")) == [plural]
        assert ids(knowledge.search(session, "refunding")) == []
    # both fold case; only SQLite's unicode61 folds accents (PostgreSQL has no unaccent here)
    cafe = add(session, "Café opening hours", "The café opens at nine.")
    assert ids(knowledge.search(session, "CAFÉ")) == [cafe]
    assert ids(knowledge.search(session, "cafe")) == ([] if is_postgres(session) else [cafe])


def test_locale_filter(session):
    en = add(session, "Delivery", "Delivery takes three days.", locale="en")
    gb = add(session, "Delivery in Britain", "Delivery takes two days.", locale="en-GB")
    us = add(session, "Delivery in America", "Delivery takes four days.", locale="en-US")
    de = add(session, "Lieferung", "Delivery dauert drei Tage.", locale="de")
    assert set(ids(knowledge.search(session, "delivery", locale="en"))) == {en, gb, us}
    assert set(ids(knowledge.search(session, "delivery", locale="en-gb"))) == {en, gb}
    assert ids(knowledge.search(session, "delivery", locale="de")) == [de]
    assert set(ids(knowledge.search(session, "delivery"))) == {en, gb, us, de}


def test_category_filter(session):
    cat = knowledge.create_category(session, SYSTEM, CategoryCreate(name="Billing"))
    billed = add(session, "Invoices", "Where to find your invoice.", category_id=cat.id)
    add(session, "Invoice address", "Change the invoice address.")
    assert ids(knowledge.search(session, "invoice", category=cat.id)) == [billed]


def test_drafts_archived_and_internal(session):
    public = add(session, "Warranty", "Two years of warranty on everything.")
    internal = add(session, "Warranty exceptions", "Warranty abuse: refuse politely.",
                   visibility="internal")
    add(session, "Warranty draft", "Warranty changes coming.", publish=False)
    archived = add(session, "Old warranty", "Warranty was one year.")
    knowledge.archive(session, SYSTEM, session.get(knowledge.KbArticle, archived))
    assert set(ids(knowledge.search(session, "warranty"))) == {public, internal}
    assert ids(knowledge.search(session, "warranty", public_only=True)) == [public]


HOSTILE = ['"', '""', '"unbalanced', "*", "pass*", "NEAR(a b)", "a NEAR b", "-", "-password",
           "password -reset", "AND", "OR", "NOT", "a OR", "(", ")", "title:password",
           "body:password", "{title}: x", "^password", "password:*", "' OR 1=1 --",
           "'; DROP TABLE kb_articles; --", "\\", "%", "_", "<script>alert(1)</script>",
           "!!", "&|!", "a & b | !c", "a <-> b", "x" * 2000, "password " * 100]


@pytest.mark.parametrize("match", ["all", "any"])
def test_hostile_queries_never_error(session, match):
    pwd = add(session, "Reset your password", "Click <b>Forgot password</b> & follow the mail.")
    for query in HOSTILE:
        hits = knowledge.search(session, query, match=match)
        assert all(h.id == pwd for h in hits), query
    # operators are searched as words: "-password" still finds the article
    assert ids(knowledge.search(session, "-password", match=match)) == [pwd]
    assert ids(knowledge.search(session, '"password', match=match)) == [pwd]
    assert knowledge.search(session, "!!! ***") == []


def test_snippets_are_escaped(session):
    add(session, "Script tags", "Never paste <script>alert('x')</script> into the password box.")
    (hit,) = knowledge.search(session, "password")
    assert "<script" not in hit.snippet and "<mark>password</mark>" in hit.snippet.lower()
    # SQLite quotes the text as it is (escaped); PostgreSQL's parser drops tag-like tokens
    assert ("&lt;script&gt;" in hit.snippet) is not is_postgres(session)
    add(session, "Comparisons", "Use a < b & c > d in the search box.")
    (hit,) = knowledge.search(session, "search box")
    assert "&lt;" in hit.snippet or "&amp;" in hit.snippet


def test_limit_and_bad_locale(session):
    for n in range(5):
        add(session, f"Topic {n}", "common words here")
    assert len(knowledge.search(session, "common", limit=3)) == 3
    assert len(knowledge.search(session, "common", limit=0)) == 1
    with pytest.raises(knowledge.ValidationProblem):
        knowledge.search(session, "common", locale="not a locale")


def test_search_follows_edits(session):
    art = add(session, "Gift cards", "Gift cards never expire.")
    assert ids(knowledge.search(session, "expire")) == [art]
    article = session.get(knowledge.KbArticle, art)
    knowledge.update_article(session, SYSTEM, article,
                             knowledge.ArticleUpdate(body="Gift cards last three years."))
    session.flush()
    assert knowledge.search(session, "expire") == []
    assert ids(knowledge.search(session, "years")) == [art]
