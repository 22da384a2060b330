"""Knowledge-base REST API: staff management (policy, If-Match, versions), search, the public
help-centre endpoints (never internal or drafts, rate limits) and the public assistant API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accord.service import assistant, knowledge
from tests.access.helpers import assert_problem

ARTICLE = {"title": "Reset your password", "locale": "en", "visibility": "public",
           "body": "To reset your password, open Settings and click Forgot password.\n\n"
                   "The link in the e-mail works for one hour."}
WINDOWS = (knowledge.PUBLIC_READS_PER_CLIENT, knowledge.FEEDBACK_PER_CLIENT,
           knowledge.FEEDBACK_PER_ARTICLE, assistant.STARTS_PER_CLIENT,
           assistant.QUESTIONS_PER_CLIENT, assistant.HANDOFFS_PER_CLIENT)


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    for window in WINDOWS:
        window.clear()
    yield
    for window in WINDOWS:
        window.clear()


def make(client, actor, body=None, publish=True) -> dict:
    r = client.post("/api/v1/kb/articles", json=body or ARTICLE, headers=actor.headers)
    assert r.status_code == 201, r.text
    out = r.json()
    if publish:
        r = client.post(f"/api/v1/kb/articles/{out['id']}/publish",
                        headers={**actor.headers, "If-Match": r.headers["ETag"]})
        assert r.status_code == 200, r.text
        out = r.json()
    return out


def test_article_lifecycle_with_versions(client, make_actor):
    agent = make_actor("support")
    r = client.post("/api/v1/kb/articles", json=ARTICLE, headers=agent.headers)
    assert r.status_code == 201 and r.headers["Location"].endswith(f"/{r.json()['id']}")
    art = r.json()
    assert (art["slug"], art["status"], art["current_version"]) == ("reset-your-password",
                                                                    "draft", 1)
    url = f"/api/v1/kb/articles/{art['id']}"
    assert_problem(client.patch(url, json={"body": "x"}, headers=agent.headers), 428, "If-Match")
    r = client.patch(url, json={"body": "New text.", "note": "shorter"},
                     headers={**agent.headers, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["current_version"] == 2
    etag = r.headers["ETag"]
    assert_problem(client.patch(url, json={"title": "Stale"},
                                headers={**agent.headers, "If-Match": '"1"'}), 412, "If-Match")
    assert_problem(client.patch(url, json={"status": "published"},
                                headers={**agent.headers, "If-Match": etag}), 422, "status")
    versions = client.get(url + "/versions", headers=agent.headers).json()
    assert [(v["number"], v["note"]) for v in versions] == [(2, "shorter"), (1, None)]
    r = client.post(url + "/versions/1/restore", json={"note": "undo"},
                    headers={**agent.headers, "If-Match": etag})
    assert r.status_code == 200 and r.json()["body"] == ARTICLE["body"]
    assert r.json()["current_version"] == 3
    assert client.get(url + "/versions/3", headers=agent.headers).json()["note"] == "undo"
    assert_problem(client.get(url + "/versions/99", headers=agent.headers), 404)
    r = client.post(url + "/publish", headers={**agent.headers, "If-Match": r.headers["ETag"]})
    assert r.json()["status"] == "published"
    # agents may not delete; a manager may
    assert_problem(client.delete(url, headers={**agent.headers, "If-Match": "*"}), 403)
    manager = make_actor("manager")
    assert client.delete(url, headers={**manager.headers, "If-Match": "*"}).status_code == 204
    assert_problem(client.get(url, headers=agent.headers), 404)


def test_validation_and_permissions(client, make_actor):
    agent, rep = make_actor("support"), make_actor("sales")
    assert_problem(client.post("/api/v1/kb/articles", json={**ARTICLE, "locale": "klingon"},
                               headers=agent.headers), 422, "locale")
    assert_problem(client.post("/api/v1/kb/articles", json={**ARTICLE, "views": 5},
                               headers=agent.headers), 422, "views")
    assert_problem(client.post("/api/v1/kb/articles", json={**ARTICLE, "slug": "Bad Slug"},
                               headers=agent.headers), 422, "slug")
    make(client, agent, publish=False)
    assert_problem(client.post("/api/v1/kb/articles",
                               json={**ARTICLE, "slug": "reset-your-password"},
                               headers=agent.headers), 409, "slug")
    assert client.post("/api/v1/kb/articles", json=ARTICLE,
                       headers=agent.headers).json()["slug"] == "reset-your-password-2"
    assert_problem(client.post("/api/v1/kb/articles", json=ARTICLE, headers=rep.headers), 403)
    listed = client.get("/api/v1/kb/articles?status=draft", headers=rep.headers).json()
    assert len(listed["items"]) == 2
    assert_problem(client.get("/api/v1/kb/articles?colour=red", headers=rep.headers), 422,
                   "colour")
    assert_problem(client.get("/api/v1/kb/articles"), 401)


def test_categories_api(client, make_actor):
    manager = make_actor("manager")
    r = client.post("/api/v1/kb/categories", json={"name": "Billing"}, headers=manager.headers)
    assert r.status_code == 201 and r.json()["slug"] == "billing"
    cid = r.json()["id"]
    r = client.patch(f"/api/v1/kb/categories/{cid}", json={"name": "Payments"},
                     headers={**manager.headers, "If-Match": r.headers["ETag"]})
    assert r.json()["name"] == "Payments"
    assert_problem(client.post("/api/v1/kb/articles", json={**ARTICLE, "category_id": 999},
                               headers=manager.headers), 422, "category_id")
    assert client.delete(f"/api/v1/kb/categories/{cid}",
                         headers={**manager.headers, "If-Match": "*"}).status_code == 204


def test_staff_search_sees_internal_public_search_does_not(client, make_actor):
    agent = make_actor("support")
    public = make(client, agent)
    internal = make(client, agent, {**ARTICLE, "title": "Password reset for agents",
                                    "visibility": "internal"})
    make(client, agent, {**ARTICLE, "title": "Password draft"}, publish=False)
    staff = client.get("/api/v1/kb/search", params={"q": "password"}, headers=agent.headers)
    assert {h["id"] for h in staff.json()} == {public["id"], internal["id"]}
    assert staff.json()[0]["url"].startswith("/service/kb/")
    anon = client.get("/api/v1/help/search", params={"q": "password"})
    assert anon.status_code == 200
    assert [h["url"] for h in anon.json()] == ["/help/en/reset-your-password"]
    assert "id" not in anon.json()[0] and "<mark>" in anon.json()[0]["snippet"]
    listed = client.get("/api/v1/help/articles").json()
    assert [a["slug"] for a in listed] == ["reset-your-password"]
    assert client.get("/api/v1/help/articles/en/reset-your-password").json()["title"] == \
        ARTICLE["title"]
    for slug in ("password-reset-for-agents", "password-draft"):
        assert_problem(client.get(f"/api/v1/help/articles/en/{slug}"), 404)
    for q in ('"', "NEAR(", "-", "*", "' OR 1=1 --", "password\"*"):
        assert client.get("/api/v1/help/search", params={"q": q}).status_code == 200, q
        assert client.get("/api/v1/kb/search", params={"q": q},
                          headers=agent.headers).status_code == 200, q
    assert_problem(client.get("/api/v1/help/search", params={"q": "x" * 501}), 422,
                   "query.q")
    assert_problem(client.get("/api/v1/help/search", params={"q": "a", "locale": "??"}), 422,
                   "locale")


def test_public_reads_are_rate_limited(client, make_actor, monkeypatch):
    monkeypatch.setattr(knowledge.PUBLIC_READS_PER_CLIENT, "limit", 3)
    for _ in range(3):
        assert client.get("/api/v1/help/search", params={"q": "x"}).status_code == 200
    r = client.get("/api/v1/help/search", params={"q": "x"})
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1


def test_public_feedback(client, make_actor):
    agent = make_actor("support")
    art = make(client, agent)
    url = "/api/v1/help/articles/en/reset-your-password/feedback"
    assert client.post(url, json={"helpful": True}).status_code == 204
    assert_problem(client.post(url, json={"helpful": False}), 429)  # once per address
    assert_problem(client.post(url, json={"helpful": "maybe"}), 422, "helpful")
    got = client.get(f"/api/v1/kb/articles/{art['id']}", headers=agent.headers).json()
    assert (got["helpful_yes"], got["helpful_no"]) == (1, 0)
    internal = make(client, agent, {**ARTICLE, "title": "Internal", "visibility": "internal"})
    assert_problem(client.post(f"/api/v1/help/articles/en/{internal['slug']}/feedback",
                               json={"helpful": True}), 404)


def test_public_assistant_flow(client, make_actor):
    agent = make_actor("support")
    make(client, agent)
    r = client.post("/api/v1/help/assistant/conversations", json={"locale": "en"})
    assert r.status_code == 201 and r.json()["status"] == "open"
    pid = r.json()["public_id"]
    base = f"/api/v1/help/assistant/conversations/{pid}"
    r = client.post(base + "/messages", json={"text": "How do I reset my password?"})
    assert r.status_code == 200 and r.json()["answered"] is True
    assert r.json()["citations"][0]["url"] == "/help/en/reset-your-password"
    r = client.post(base + "/messages", json={"text": "Do you ship to Mars?"})
    assert r.json()["answered"] is False and "don't know" in r.json()["text"]
    assert_problem(client.post(base + "/messages", json={"text": "x" * 1001}), 422, "text")
    assert_problem(client.post(base + "/messages", json={"text": "hi", "admin": True}), 422,
                   "admin")
    assert_problem(client.post(base + "/messages", json={"text": ""}), 422, "text")
    convo = client.get(base).json()
    assert [t["role"] for t in convo["turns"]] == ["customer", "assistant"] * 2
    assert convo["turns"][1]["citations"][0]["title"] == ARTICLE["title"]
    assert_problem(client.post(base + "/handoff", json={"name": "Ada", "email": "nope"}), 422,
                   "email")
    r = client.post(base + "/handoff", json={"name": "Ada", "email": "ada@example.com"})
    assert r.status_code == 200 and r.json()["ticket_reference"].startswith("T-")
    assert_problem(client.post(base + "/messages", json={"text": "hello again"}), 409)
    assert_problem(client.post(base + "/resolved"), 409)
    assert_problem(client.post("/api/v1/help/assistant/conversations/nope/messages",
                               json={"text": "hi"}), 404)
    stats = client.get("/api/v1/kb/assistant/stats", headers=agent.headers).json()
    assert (stats["with_question"], stats["answered"], stats["handed_off"],
            stats["deflected"], stats["deflection_rate"]) == (1, 1, 1, 0, 0.0)
    assert_problem(client.get("/api/v1/kb/assistant/stats"), 401)


def test_assistant_resolved_and_limits(client, monkeypatch):
    pid = client.post("/api/v1/help/assistant/conversations").json()["public_id"]
    r = client.post(f"/api/v1/help/assistant/conversations/{pid}/resolved")
    assert r.status_code == 200 and r.json()["status"] == "closed"
    monkeypatch.setattr(assistant.STARTS_PER_CLIENT, "limit", 1)
    assistant.STARTS_PER_CLIENT.clear()
    assert client.post("/api/v1/help/assistant/conversations").status_code == 201
    assert_problem(client.post("/api/v1/help/assistant/conversations"), 429)
    assert_problem(client.post("/api/v1/help/assistant/conversations/x/handoff",
                               json={"name": "A", "email": "a@example.com"}), 404)
