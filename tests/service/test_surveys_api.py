"""Surveys over HTTP: the public answer endpoint (refusals as problem+json that name nobody,
rate limit) and the staff API (manual send, lists in scope, results, schedules CRUD)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accord.core import mail
from accord.core.ratelimit import SlidingWindow
from accord.models import Job, SurveyInvitation, SurveyResponse
from accord.service import surveys
from tests.access.helpers import assert_problem, seed_customer
from tests.service.test_surveys import NOW, invite, rows, world

API = "/api/v1/surveys"


@pytest.fixture(autouse=True)
def _fresh_limits() -> None:
    surveys.HITS_PER_CLIENT.clear()


def post_answer(client, token: str, body: dict) -> object:
    return client.post(f"{API}/answer/{token}", json=body)


# --- the public answer ------------------------------------------------------------------------

def test_answer_once_then_409(db, client):
    w = world(db)
    _, token = invite(db, w.customer_id, "nps")
    r = post_answer(client, token, {"score": 9, "comment": "Great"})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "answered", "kind": "nps", "score": 9}
    again = assert_problem(post_answer(client, token, {"score": 10}), 409, "token")
    assert "already been answered" in again["detail"]
    (resp,) = rows(db, SurveyResponse)
    assert (resp.score, resp.comment) == (9, "Great")


def test_forged_link_is_refused_without_naming_anyone(db, client):
    w = world(db)
    invite(db, w.customer_id)
    body = assert_problem(post_answer(client, "A" * 43, {"score": 3}), 422, "token")
    assert body["detail"] == "This survey link is not valid."
    text = str(body)
    assert "Ada" not in text and "ada@example.com" not in text
    assert rows(db, SurveyResponse) == []


def test_expired_link_is_410(db, client):
    w = world(db)
    _, token = invite(db, w.customer_id, now=datetime.now(UTC) - timedelta(days=15))
    body = assert_problem(post_answer(client, token, {"score": 3}), 410, "token")
    assert "expired" in body["detail"]


def test_bad_answers_name_the_field(db, client):
    w = world(db)
    _, token = invite(db, w.customer_id, "csat")
    assert_problem(post_answer(client, token, {"score": 6}), 422, "score")
    assert_problem(post_answer(client, token, {"score": 4, "customer_id": 1}), 422, "customer_id")
    assert_problem(post_answer(client, token, {"score": 4, "comment": "x" * 2001}), 422,
                   "comment")
    r = client.post(f"{API}/answer/{token}", content=b"[1]",
                    headers={"Content-Type": "application/json"})
    assert_problem(r, 422, "body")
    assert rows(db, SurveyInvitation)[0].used_at is None
    assert post_answer(client, token, {"score": 4}).status_code == 200


def test_public_endpoint_is_rate_limited(db, client, monkeypatch):
    monkeypatch.setattr(surveys, "HITS_PER_CLIENT", SlidingWindow(limit=3, window_seconds=600))
    for _ in range(3):
        assert post_answer(client, "B" * 43, {"score": 1}).status_code == 422
    r = post_answer(client, "B" * 43, {"score": 1})
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) > 0


# --- staff: manual send ---------------------------------------------------------------------------

def test_manual_send(db, client, make_actor):
    w = world(db)
    boss = make_actor("manager", team="Support US")  # the customer's team
    r = client.post(f"{API}/invitations", headers=boss.headers,
                    json={"customer_id": w.customer_id, "kind": "nps"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert "token" not in str(out) and "token_hash" not in out
    assert (out["kind"], out["trigger"], out["customer_id"], out["agent_id"]) == (
        "nps", "manual", w.customer_id, boss.id)
    (job,) = rows(db, Job, Job.kind == mail.MAIL_SEND)
    assert job.payload["to"] == "ada@example.com"
    listed = client.get(r.headers["Location"], headers=boss.headers).json()["items"]
    assert [i["id"] for i in listed] == [out["id"]]

    # surveyed moments ago: the cooldown refuses a second one
    assert_problem(client.post(f"{API}/invitations", headers=boss.headers,
                               json={"customer_id": w.customer_id}), 409, "customer_id")
    nomail = seed_customer(db, w.owner_id, w.other_team_id, first_name="No", last_name="Mail")
    assert_problem(client.post(f"{API}/invitations", headers=boss.headers,
                               json={"customer_id": nomail}), 422, "customer_id")
    assert_problem(client.post(f"{API}/invitations", headers=boss.headers,
                               json={"customer_id": nomail, "token_hash": "x" * 64}), 422,
                   "token_hash")
    assert_problem(client.post(f"{API}/invitations", headers=boss.headers,
                               json={"customer_id": 999999}), 404, "customer_id")
    agent = make_actor("support", team="Support EU")
    assert_problem(client.post(f"{API}/invitations", headers=agent.headers,
                               json={"customer_id": nomail}), 403)
    assert len(rows(db, SurveyInvitation)) == 1


# --- staff: lists in scope, results ------------------------------------------------------------

def test_lists_follow_the_record_scope(db, client, make_actor):
    w = world(db)
    _, token = invite(db, w.customer_id, "csat", team_id=w.team_id, agent_id=w.agent_id)
    post_answer(client, token, {"score": 5, "comment": "<b>fine</b>"})
    mine = make_actor("support", team="Support EU")
    other = make_actor("sales", team="Support US")
    r = client.get(f"{API}/responses", headers=mine.headers)
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    assert (item["score"], item["comment"]) == (5, "<b>fine</b>")
    assert client.get(f"{API}/responses", headers=other.headers).json()["items"] == []
    assert len(client.get(f"{API}/invitations", headers=mine.headers).json()["items"]) == 1
    assert client.get(f"{API}/invitations", headers=other.headers).json()["items"] == []
    assert_problem(client.get(f"{API}/responses?password=1", headers=mine.headers), 422,
                   "password")


def test_results_endpoint(db, client, make_actor):
    w = world(db)
    for n, score in enumerate((10, 9, 2)):
        cid = seed_customer(db, first_name=f"R{n}")
        _, token = invite(db, cid, "nps", team_id=w.team_id, agent_id=w.agent_id, now=NOW)
        assert post_answer(client, token, {"score": score}).status_code == 200
    analyst = make_actor("analyst")
    r = client.get(f"{API}/results", headers=analyst.headers,
                   params={"kind": "nps", "group_by": "team",
                           "start": "2026-01-01T00:00:00Z", "end": "2031-01-01T00:00:00Z"})
    assert r.status_code == 200, r.text
    doc = r.json()
    (row,) = doc["rows"]
    # 10 9 2: promoters 2, detractors 1 of 3 → 33.3
    assert (row["label"], row["promoters"], row["detractors"], row["nps"]) == (
        "Support EU", 2, 1, 33.3)
    assert doc["total"]["responses"] == 3
    assert_problem(client.get(f"{API}/results", headers=analyst.headers,
                              params={"group_by": "customer"}), 422, "group_by")
    assert_problem(client.get(f"{API}/results", headers=analyst.headers,
                              params={"kind": "ces"}), 422, "kind")


# --- staff: schedules ---------------------------------------------------------------------------

def test_schedules_crud(db, client, make_actor):
    marketing = make_actor("marketing")
    body = {"name": "Quarterly NPS", "kind": "nps", "every_days": 90,
            "audience": {"lifecycle_stage": ["loyalty"]}}
    r = client.post(f"{API}/schedules", headers=marketing.headers, json=body)
    assert r.status_code == 201, r.text
    sid, etag = r.json()["id"], r.headers["ETag"]
    assert r.json()["next_run_at"] is not None and r.json()["last_run_at"] is None
    assert_problem(client.post(f"{API}/schedules", headers=marketing.headers, json=body), 409,
                   "name")
    assert_problem(client.post(f"{API}/schedules", headers=marketing.headers,
                               json={**body, "name": "X", "audience": {"country": ["DE"]}}),
                   422, "audience")
    assert_problem(client.post(f"{API}/schedules", headers=marketing.headers,
                               json={**body, "name": "X",
                                     "audience": {"lifecycle_stage": ["loyal"]}}),
                   422, "audience")
    assert_problem(client.post(f"{API}/schedules", headers=marketing.headers,
                               json={**body, "name": "X", "last_run_at": "2030-01-01T00:00:00Z"}),
                   422, "last_run_at")

    r = client.patch(f"{API}/schedules/{sid}", headers={**marketing.headers, "If-Match": etag},
                     json={"every_days": 30, "active": False})
    assert r.status_code == 200, r.text
    assert (r.json()["every_days"], r.json()["active"], r.json()["version"]) == (30, False, 2)
    stale = client.patch(f"{API}/schedules/{sid}", headers={**marketing.headers, "If-Match": etag},
                         json={"every_days": 7})
    assert_problem(stale, 412)
    assert_problem(client.patch(f"{API}/schedules/{sid}",
                                headers={**marketing.headers, "If-Match": r.headers["ETag"]},
                                json={"every_days": None}), 422, "every_days")

    support = make_actor("support")
    assert client.get(f"{API}/schedules", headers=support.headers).status_code == 200
    assert_problem(client.post(f"{API}/schedules", headers=support.headers,
                               json={**body, "name": "Mine"}), 403)
    assert_problem(client.delete(f"{API}/schedules/{sid}",
                                 headers={**marketing.headers, "If-Match": r.headers["ETag"]}),
                   403)  # marketing may create and update, not delete
    admin = make_actor("admin")
    assert client.delete(f"{API}/schedules/{sid}",
                         headers={**admin.headers, "If-Match": r.headers["ETag"]}
                         ).status_code == 204
    assert_problem(client.get(f"{API}/schedules/{sid}", headers=admin.headers), 404)
