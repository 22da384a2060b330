"""Survey pages: the public answer page (minimal layout, refusals that name nobody, escaping)
and the staff results page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accord.core.ratelimit import SlidingWindow
from accord.models import SurveyResponse
from accord.service import surveys
from tests.access.helpers import seed_customer
from tests.service.test_surveys import invite, rows, world

XSS = "<script>alert('x')</script>"


@pytest.fixture(autouse=True)
def _fresh_limits() -> None:
    surveys.HITS_PER_CLIENT.clear()


def test_public_page_shows_the_scale_without_staff_navigation(db, client):
    w = world(db)
    _, token = invite(db, w.customer_id, "nps")
    r = client.get(f"/s/{token}")
    assert r.status_code == 200, r.text
    page = r.text
    assert "How likely are you to recommend us" in page
    assert all(f'id="score-{n}"' in page for n in range(11))
    assert f'action="/s/{token}"' in page
    assert "mainnav" not in page and 'href="/customers"' not in page
    assert "Ada" not in page and "ada@example.com" not in page
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"

    _, csat = invite(db, seed_customer(db, first_name="Bo"), "csat")
    page = client.get(f"/s/{csat}").text
    assert 'id="score-1"' in page and 'id="score-5"' in page and 'id="score-0"' not in page


def test_answer_through_the_page_then_already_answered(db, client):
    w = world(db)
    _, token = invite(db, w.customer_id, "csat")
    r = client.post(f"/s/{token}", data={"score": "5", "comment": XSS})
    assert r.status_code == 200, r.text
    assert "Thank you" in r.text
    (resp,) = rows(db, SurveyResponse)
    assert (resp.score, resp.comment) == (5, XSS)  # stored as given, escaped on output

    again = client.get(f"/s/{token}")
    assert again.status_code == 409 and "already been answered" in again.text
    assert "<form" not in again.text
    assert client.post(f"/s/{token}", data={"score": "1"}).status_code == 409
    assert len(rows(db, SurveyResponse)) == 1


def test_forged_and_expired_links_get_a_clear_refusal(db, client):
    w = world(db)
    invite(db, w.customer_id)
    for forged in ("C" * 43, "nope"):
        r = client.get(f"/s/{forged}")
        assert r.status_code == 422 and "This survey link is not valid" in r.text
        assert "Ada" not in r.text and "<form" not in r.text
    assert client.post("/s/" + "C" * 43, data={"score": "3"}).status_code == 422

    _, old = invite(db, w.customer_id, now=datetime.now(UTC) - timedelta(days=20))
    r = client.get(f"/s/{old}")
    assert r.status_code == 410 and "expired" in r.text
    assert client.post(f"/s/{old}", data={"score": "3"}).status_code == 410
    assert rows(db, SurveyResponse) == []


def test_a_missing_score_redisplays_the_form_with_the_comment_escaped(db, client):
    w = world(db)
    _, token = invite(db, w.customer_id, "nps")
    r = client.post(f"/s/{token}", data={"comment": XSS})
    assert r.status_code == 422
    assert "choose a score from 0 to 10" in r.text
    assert XSS not in r.text and "&lt;script&gt;" in r.text
    assert client.post(f"/s/{token}", data={"score": "10"}).status_code == 200


def test_public_page_is_rate_limited(db, client, monkeypatch):
    monkeypatch.setattr(surveys, "HITS_PER_CLIENT", SlidingWindow(limit=2, window_seconds=600))
    assert client.get("/s/" + "D" * 43).status_code == 422
    assert client.get("/s/" + "E" * 43).status_code == 422
    r = client.get("/s/" + "F" * 43)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_staff_results_page_escapes_comments(db, client, signed_in_as):
    w = world(db)
    _, token = invite(db, w.customer_id, "nps", team_id=w.team_id, agent_id=w.agent_id)
    assert client.post(f"/s/{token}", data={"score": "3", "comment": XSS}).status_code == 200
    admin = signed_in_as("admin")
    r = admin.get("/service/surveys", params={"kind": "nps", "group_by": "team",
                                              "start": "2020-01-01", "end": "2035-01-01"})
    assert r.status_code == 200, r.text
    assert "Support EU" in r.text and 'id="survey-results"' in r.text
    assert "-100.0" in r.text  # one detractor: NPS −100
    assert XSS not in r.text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in r.text
    assert 'class="mainnav"' in r.text  # the staff layout

    bad = admin.get("/service/surveys", params={"start": "yesterday"})
    assert bad.status_code == 422 and "not a date" in bad.text
    assert 'id="f-start" type="date" name="start"' in bad.text and 'id="err-start"' in bad.text
    # review fix: a bad end date was reported against `start`; the field in error is marked
    bad_end = admin.get("/service/surveys", params={"end": "2026-13-40"})
    assert bad_end.status_code == 422 and 'id="err-end"' in bad_end.text
    assert 'id="err-start"' not in bad_end.text
    assert 'aria-invalid="true" aria-describedby="err-end"' in bad_end.text


def test_staff_page_needs_a_login(db, client):
    r = client.get("/service/surveys", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
