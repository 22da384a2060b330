"""Knowledge-base pages: the staff editor with versions (login, CSRF), and the public help centre
(no login, no staff navigation, never internal or draft articles, feedback, the assistant
panel)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from accord.access.policy import SYSTEM
from accord.core.db import session_scope
from accord.models.service import AssistantConversation, KbArticle, Ticket
from accord.service import assistant, knowledge
from accord.service.knowledge_schemas import ArticleCreate, CategoryCreate
from tests.web.seed import csrf_of

PUBLIC = ("Reset your password",
          "To reset your password, open Settings and click Forgot password.\n\n"
          "The e-mail link works for one hour. <script>alert(1)</script>")


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    windows = (knowledge.PUBLIC_READS_PER_CLIENT, knowledge.FEEDBACK_PER_CLIENT,
               knowledge.FEEDBACK_PER_ARTICLE, assistant.STARTS_PER_CLIENT,
               assistant.QUESTIONS_PER_CLIENT, assistant.HANDOFFS_PER_CLIENT)
    for w in windows:
        w.clear()
    yield
    for w in windows:
        w.clear()


def seed(db) -> dict[str, int]:
    """A public, an internal, a draft and an archived article, one category."""
    out: dict[str, int] = {}
    with session_scope(db) as s:
        cat = knowledge.create_category(s, SYSTEM, CategoryCreate(name="Account"))
        for key, title, body, visibility, status in (
                ("public", *PUBLIC, "public", "published"),
                ("internal", "Password reset for agents (internal)",
                 "Agents reset a password in the console. Secret agent note.", "internal",
                 "published"),
                ("draft", "Password policy draft", "Draft password text.", "public", "draft"),
                ("archived", "Old password article", "Archived password text.", "public",
                 "archived")):
            article = knowledge.create_article(s, SYSTEM, ArticleCreate(
                title=title, body=body, visibility=visibility, category_id=cat.id))
            if status != "draft":
                knowledge.set_status(s, SYSTEM, article, "published")
            if status == "archived":
                knowledge.set_status(s, SYSTEM, article, "archived")
            out[key] = article.id
        out["category"] = cat.id
    return out


HIDDEN = ("agents", "Secret agent note", "Password policy draft", "Draft password text",
          "Old password article", "Archived password text")


def assert_public_only(html: str) -> None:
    for text in HIDDEN:
        assert text not in html, text
    assert "Log out" not in html and 'class="mainnav"' not in html  # no staff navigation


def test_public_pages_never_show_internal_or_drafts(client, db):
    ids = seed(db)
    home = client.get("/help")
    assert home.status_code == 200 and "How can we help?" in home.text
    assert "/help/en/reset-your-password" in home.text and "Account" in home.text
    assert_public_only(home.text)
    found = client.get("/help/search", params={"q": "password"})
    assert found.status_code == 200 and "<mark>" in found.text
    assert "/help/en/reset-your-password" in found.text
    assert_public_only(found.text)
    category = client.get("/help/categories/account")
    assert "Reset your password" in category.text
    assert_public_only(category.text)
    page = client.get("/help/en/reset-your-password")
    assert page.status_code == 200 and "Forgot password" in page.text
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert_public_only(page.text)
    with session_scope(db) as s:
        internal = s.get(KbArticle, ids["internal"])
        draft = s.get(KbArticle, ids["draft"])
        archived = s.get(KbArticle, ids["archived"])
        slugs = [internal.slug, draft.slug, archived.slug]
        assert s.get(KbArticle, ids["public"]).views == 1
    for slug in slugs:
        r = client.get(f"/help/en/{slug}")
        assert r.status_code == 404, slug
        assert_public_only(r.text)
    assert client.get("/help/xx-invalid-!/reset-your-password").status_code == 404
    assert client.get("/help/categories/nope").status_code == 404
    partial = client.get("/help/search", params={"q": "password"}, headers={"HX-Request": "true"})
    assert partial.status_code == 200 and "<html" not in partial.text


def test_hostile_public_search(client, db):
    seed(db)
    for q in ('"', "NEAR(", "-password", "*", "<script>alert(1)</script>", "' OR 1=1 --"):
        r = client.get("/help/search", params={"q": q})
        assert r.status_code == 200, q
        assert "<script>alert(1)</script>" not in r.text


def test_feedback_without_csrf_but_rate_limited(client, db):
    ids = seed(db)
    url = "/help/en/reset-your-password/feedback"
    r = client.post(url, data={"helpful": "yes"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?feedback=thanks")
    assert client.post(url, data={"helpful": "no"}).status_code == 429  # once per address
    knowledge.FEEDBACK_PER_ARTICLE.clear()
    r = client.post(url, data={"helpful": "no"}, headers={"HX-Request": "true"})
    assert r.status_code == 200 and "Thank you" in r.text
    assert client.post(url, data={"helpful": "maybe"}).status_code == 422
    with session_scope(db) as s:
        article = s.get(KbArticle, ids["public"])
        assert (article.helpful_yes, article.helpful_no) == (1, 1)
        internal_slug = s.get(KbArticle, ids["internal"]).slug
    knowledge.FEEDBACK_PER_ARTICLE.clear()
    assert client.post(f"/help/en/{internal_slug}/feedback",
                       data={"helpful": "yes"}).status_code == 404


def test_assistant_panel(client, db):
    seed(db)
    hx = {"HX-Request": "true"}
    r = client.post("/help/assistant/ask", data={"question": "How do I reset my password?",
                                                  "locale": "en"}, headers=hx)
    assert r.status_code == 200 and 'id="assistant"' in r.text and "<html" not in r.text
    assert "To reset your password, open Settings" in r.text
    assert "Secret agent note" not in r.text
    with session_scope(db) as s:
        public_id = s.scalar(select(AssistantConversation.public_id))
    assert f'value="{public_id}"' in r.text
    r = client.post("/help/assistant/ask", data={"conversation": public_id,
                                                  "question": "Do you sell boats?"}, headers=hx)
    assert "don&#39;t know" in r.text or "don't know" in r.text
    r = client.post("/help/assistant/ask", data={"conversation": public_id, "question": " "},
                    headers=hx)
    assert r.status_code == 422 and "Type a question first" in r.text
    r = client.post("/help/assistant/handoff", data={"conversation": public_id, "name": "Ada",
                                                      "email": "bad"}, headers=hx)
    assert r.status_code == 422 and "invalid e-mail address" in r.text
    r = client.post("/help/assistant/handoff", data={"conversation": public_id, "name": "Ada",
                                                      "email": "ada@example.com"}, headers=hx)
    assert r.status_code == 200 and "T-" in r.text and "Your question" not in r.text
    with session_scope(db) as s:
        ticket = s.scalar(select(Ticket))
        assert ticket.channel == "assistant" and ticket.requester_email == "ada@example.com"
    # asking in a handed-off conversation is refused inside the panel
    r = client.post("/help/assistant/ask", data={"conversation": public_id, "question": "hi"},
                    headers=hx)
    assert r.status_code == 200 and "support team" in r.text
    # without JavaScript the same forms render full pages
    r = client.post("/help/assistant/ask", data={"question": "reset password"})
    assert r.status_code == 200 and "<html" in r.text and "Help centre" in r.text
    assert client.get(f"/help/assistant?c={public_id}").status_code == 200
    assert client.get("/help/assistant?c=unknown").status_code == 404


def test_staff_editor_and_versions(signed_in_as, db):
    ids = seed(db)
    web = signed_in_as("support")
    listing = web.get("/service/kb")
    assert listing.status_code == 200 and "Password policy draft" in listing.text
    found = web.get("/service/kb", params={"q": "password"})
    assert "Password reset for agents" in found.text  # staff search includes internal
    new = web.get("/service/kb/new")
    token = csrf_of(new.text)
    r = web.post("/service/kb", data={"csrf_token": token, "title": "Shipping times",
                                       "body": "Parcels take 3 days.", "locale": "en",
                                       "visibility": "public", "category_id": ""},
                 follow_redirects=False)
    assert r.status_code == 303
    url = r.headers["location"].split("?")[0]
    page = web.get(r.headers["location"])
    assert "Article created." in page.text and "Version history" in page.text
    with session_scope(db) as s:
        article = s.scalar(select(KbArticle).where(KbArticle.title == "Shipping times"))
        row_version = article.version
    edit = {"csrf_token": token, "title": "Shipping times", "body": "Parcels take 2 days.",
            "locale": "en", "slug": "shipping-times", "visibility": "public",
            "category_id": str(ids["category"]), "note": "faster", "version": str(row_version)}
    assert web.post(url, data=edit, follow_redirects=False).status_code == 303
    stale = web.post(url, data={**edit, "body": "Lost update"})
    assert stale.status_code == 409 and "Someone else changed" in stale.text
    bad = web.post(url, data={**edit, "version": str(row_version + 1), "locale": "zz-!!"})
    assert bad.status_code == 422 and "locale" in bad.text
    assert web.get(url + "/versions/1").text.count("Parcels take 3 days.") == 1
    restore = web.post(url + "/versions/1/restore",
                       data={"csrf_token": token, "version": str(row_version + 1)},
                       follow_redirects=False)
    assert restore.status_code == 303
    with session_scope(db) as s:
        article = s.scalar(select(KbArticle).where(KbArticle.title == "Shipping times"))
        assert (article.body, article.current_version) == ("Parcels take 3 days.", 3)
        version = article.version
    r = web.post(url + "/status", data={"csrf_token": token, "status": "published",
                                         "version": str(version)}, follow_redirects=False)
    assert r.status_code == 303
    assert web.get("/help/en/shipping-times").status_code == 200
    # no CSRF token: refused, nothing changed
    assert web.post(url + "/status", data={"status": "archived",
                                           "version": str(version + 1)}).status_code == 403


def test_staff_pages_need_login_and_permission(client, signed_in_as, db):
    seed(db)
    r = client.get("/service/kb", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    rep = signed_in_as("sales")
    assert rep.get("/service/kb").status_code == 200  # sales reads the knowledge base
    assert rep.get("/service/kb/new").status_code == 403
    dpo = signed_in_as("privacy_officer")
    assert dpo.get("/service/kb").status_code == 403


def test_categories_page(signed_in_as, db):
    web = signed_in_as("manager")
    page = web.get("/service/kb/categories")
    token = csrf_of(page.text)
    r = web.post("/service/kb/categories", data={"csrf_token": token, "name": "Billing"},
                 follow_redirects=False)
    assert r.status_code == 303
    assert "billing" in web.get("/service/kb/categories").text
    assert web.post("/service/kb/categories", data={"csrf_token": token,
                                                    "name": ""}).status_code == 422


def _live(html: str) -> str:
    """The out-of-band text for the layout's `#assistant-live` region ('' when absent)."""
    marker = '<div id="assistant-live" hx-swap-oob="innerHTML">'
    return html.split(marker, 1)[1].split("</div>", 1)[0] if marker in html else ""


def test_assistant_answers_reach_a_live_region(client, db):
    """Review fix: HTMX replaces the panel whole, so the news must go out of band into the
    layout's persistent live region; full pages carry the empty region (no duplicate id)."""
    seed(db)
    page = client.get("/help/assistant")
    assert page.text.count('id="assistant-live"') == 1
    assert 'role="status" aria-live="polite"' in page.text
    assert "<h1" in page.text  # the assistant page has a top heading, like every page
    hx = {"HX-Request": "true"}
    r = client.post("/help/assistant/ask", data={"question": "How do I reset my password?"},
                    headers=hx)
    assert "To reset your password, open Settings" in _live(r.text)
    assert "<script>" not in r.text
    r = client.post("/help/assistant/ask", data={"question": " "}, headers=hx)
    assert r.status_code == 422 and _live(r.text) == "Type a question first."
    full = client.post("/help/assistant/ask", data={"question": "reset password"})
    assert full.text.count('id="assistant-live"') == 1 and "hx-swap-oob" not in full.text


def test_internal_only_category_is_not_disclosed(client, db):
    """Review fix: a category used only by internal articles answered 200 [] on the public API
    (404 for an unknown one), so its slug could be probed; now both are the same 404."""
    seed(db)
    with session_scope(db) as s:
        hidden = knowledge.create_category(s, SYSTEM, CategoryCreate(name="Escalations"))
        knowledge.set_status(s, SYSTEM, knowledge.create_article(s, SYSTEM, ArticleCreate(
            title="Escalation matrix", body="Call the duty manager.", visibility="internal",
            category_id=hidden.id)), "published")
    for slug in ("escalations", "no-such-category"):
        api = client.get("/api/v1/help/articles", params={"category": slug})
        assert api.status_code == 404, slug
        assert client.get("/api/v1/help/search",
                          params={"q": "manager", "category": slug}).status_code == 404
        assert client.get("/help/search",
                          params={"q": "manager", "category": slug}).status_code == 404
        assert client.get(f"/help/categories/{slug}").status_code == 404
    shown = client.get("/api/v1/help/articles", params={"category": "account"})
    assert shown.status_code == 200 and [a["slug"] for a in shown.json()] == \
        ["reset-your-password"]


def test_conversation_citations_read_in_one_query(db):
    """Review fix: a conversation's citations were read with one query per turn."""
    from sqlalchemy import event

    seed(db)
    with session_scope(db) as s:
        convo = assistant.start(s)
        for _ in range(3):
            assistant.ask(s, convo, "How do I reset my password?")
        found = assistant.turns(s, convo)
        statements: list[str] = []
        listen = lambda *a: statements.append(a[2])  # noqa: E731
        event.listen(s.get_bind(), "before_cursor_execute", listen)
        try:
            cited = assistant.citations_by_turn(s, found)
        finally:
            event.remove(s.get_bind(), "before_cursor_execute", listen)
        assert len(statements) == 1
        answers = [t for t in found if t.role == "assistant"]
        assert len(answers) == 3 and all(
            [c.title for c in cited[t.id]] == ["Reset your password"] for t in answers)
        assert assistant.citations_of(s, answers[0]) == cited[answers[0].id]


def test_feedback_thanks_land_in_a_persistent_live_region(client, db):
    """Review fix: the thanks replaced the section's heading (leaving `aria-labelledby`
    dangling) and appeared as a new status node; the section is now the live region."""
    seed(db)
    page = client.get("/help/en/reset-your-password")
    assert '<section id="feedback" class="card" aria-labelledby="h-feedback" ' \
        'aria-live="polite">' in page.text
    r = client.post("/help/en/reset-your-password/feedback", data={"helpful": "yes"},
                    headers={"HX-Request": "true"})
    assert r.status_code == 200 and 'id="h-feedback"' in r.text
    assert "Thank you for your feedback." in r.text
