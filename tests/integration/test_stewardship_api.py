"""Data stewardship over HTTP on SQLite and PostgreSQL: the /api/v1/identity endpoints
(problem+json errors naming the field, If-Match, idempotent POSTs) and the steward's pages
(review queue side by side, the 360 page's sources panel, merge / unmerge / unlink forms)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.integration.ingest import Incoming, ingest_batch
from accord.integration.resolution import resolve_pending
from accord.integration.sources import create_source
from accord.models import AuditEntry, Customer, IdentityChange, MatchReview, Order, SourceProfile
from tests.web.conftest import inline_code
from tests.web.seed import csrf_of

PROBLEM = "application/problem+json"


def profile(ext: str, **fields: Any) -> Incoming:
    return Incoming("profile", {"id": ext, **fields}, dict(fields), ext)


@pytest.fixture
def world(db: str) -> dict[str, Any]:
    """Maria in billing (with an order) and in the shop (two records): one pending review."""
    with dbmod.session_scope(db) as s:
        billing = create_source(s, SYSTEM, name="billing", kind="billing", trust_rank=10,
                                default_country="DE")
        shop = create_source(s, SYSTEM, name="webshop", kind="webshop", trust_rank=30,
                             default_country="DE")
        ingest_batch(s, SYSTEM, billing, [
            profile("B1", first_name="Maria", last_name="Müller", email="maria@example.de",
                    phone="+49 30 1234567", date_of_birth="1984-03-05"),
            Incoming("order", {"n": 1}, {"order.number": "INV-1", "order.total": "19.90",
                                          "order.currency": "EUR"}, "INV-1", None, "B1")])
        ingest_batch(s, SYSTEM, shop, [
            profile("S1", first_name="Maria", last_name="Mueller", email="mm@shop.example",
                    phone="030 1234567", country="DE"),
            profile("S2", first_name="Maria", last_name="Mueller", email="mm@shop.example",
                    address_line1="Hauptstr. 5", city="Berlin", postcode="10115",
                    country="DE")])
        resolve_pending(s)
        s.flush()
        ids = dict(s.execute(select(SourceProfile.external_id, SourceProfile.id)).all())
        customers = dict(s.execute(select(SourceProfile.external_id,
                                          SourceProfile.customer_id)).all())
        review = s.scalar(select(MatchReview))
        return {"a": customers["B1"], "b": customers["S1"], "profiles": ids,
                "review": review.id}


def read(db: str, fn: Any) -> Any:
    with dbmod.session_scope(db, write=False) as s:
        return fn(s)


# --- API -------------------------------------------------------------------------------------


def test_review_queue_accept_over_the_api(client, make_actor, world, db) -> None:
    steward = make_actor("manager")
    listed = client.get("/api/v1/identity/reviews?status=pending", headers=steward.headers)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["items"]
    assert item["id"] == world["review"] and item["left"]["source"] == "billing"
    got = client.get(f"/api/v1/identity/reviews/{item['id']}", headers=steward.headers)
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'
    body = got.json()
    assert body["left"]["source"] == {"id": body["left"]["source"]["id"], "name": "billing",
                                      "kind": "billing", "trust_rank": 10}
    assert {f["field"] for f in body["fields"]} >= {"first_name", "email", "phone"}
    assert all("match_weight" in f for f in body["fields"])
    url = f"/api/v1/identity/reviews/{item['id']}/accept"

    missing = client.post(url, headers=steward.headers)
    assert missing.status_code == 428 and missing.headers["content-type"] == PROBLEM
    assert missing.json()["field"] == "If-Match"
    stale = client.post(url, headers={**steward.headers, "If-Match": '"7"'})
    assert stale.status_code == 412 and stale.json()["field"] == "If-Match"
    ok = client.post(url, json={"reason": "same phone"},
                     headers={**steward.headers, "If-Match": got.headers["ETag"]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "accepted" and ok.json()["decided_by"] == steward.id
    again = client.post(url, headers={**steward.headers, "If-Match": ok.headers["ETag"]})
    assert again.status_code == 409 and again.json()["field"] == "status"
    assert client.get("/api/v1/identity/reviews?status=pending",
                      headers=steward.headers).json()["items"] == []
    # B had two records, so A was merged into B; A's sources answer with B's
    sources = client.get(f"/api/v1/identity/customers/{world['b']}/sources",
                         headers=steward.headers)
    assert sources.status_code == 200
    rows = sources.json()["sources"]
    assert {r["external_id"] for r in rows} == {"B1", "S1", "S2"}
    b1 = next(r for r in rows if r["external_id"] == "B1")
    assert b1["link_method"] == "review" and b1["review_id"] == world["review"]
    assert b1["trust_rank"] == 10 and b1["supplied"]
    moved = client.get(f"/api/v1/identity/customers/{world['a']}/sources",
                       headers=steward.headers, follow_redirects=False)
    assert moved.status_code == 307
    assert moved.headers["Location"] == f"/api/v1/identity/customers/{world['b']}/sources"
    assert read(db, lambda s: s.scalar(select(Order.customer_id))) == world["b"]


def test_reject_over_the_api_and_roles(client, make_actor, world) -> None:
    analyst, steward = make_actor("analyst"), make_actor("manager")
    url = f"/api/v1/identity/reviews/{world['review']}"
    assert client.get(url, headers=analyst.headers).status_code == 200  # analysts may look
    refused = client.post(url + "/reject", headers={**analyst.headers, "If-Match": '"1"'})
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    sales = make_actor("sales")
    assert client.get(url, headers=sales.headers).status_code == 403
    ok = client.post(url + "/reject", json={"reason": "twins"},
                     headers={**steward.headers, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["status"] == "rejected"
    rejected = client.get("/api/v1/identity/reviews?status=rejected", headers=steward.headers)
    assert [i["id"] for i in rejected.json()["items"]] == [world["review"]]
    bad = client.get("/api/v1/identity/reviews?status=maybe", headers=steward.headers)
    assert bad.status_code == 422 and bad.json()["field"] == "status"

    # a rejection can be taken back: pending again, audited; twice is a conflict
    version = ok.headers["ETag"]
    refused = client.post(url + "/reopen", headers={**analyst.headers, "If-Match": version})
    assert refused.status_code == 403
    stale = client.post(url + "/reopen", headers={**steward.headers, "If-Match": '"1"'})
    assert stale.status_code == 412
    reopened = client.post(url + "/reopen", json={"reason": "not twins after all"},
                           headers={**steward.headers, "If-Match": version})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "pending" and reopened.json()["decided_by"] is None
    again = client.post(url + "/reopen", headers={**steward.headers,
                                                  "If-Match": reopened.headers["ETag"]})
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM
    assert again.json()["field"] == "status"


def test_merge_and_revert_over_the_api(client, make_actor, world, db) -> None:
    steward = make_actor("manager")
    a, b = world["a"], world["b"]
    # a steward may not see every customer through the customers API (managers: their team),
    # the sources endpoint gives the survivor's ETag
    etag = client.get(f"/api/v1/identity/customers/{a}/sources",
                      headers=steward.headers).headers["ETag"]
    merge = {"survivor_id": a, "merged_id": b, "reason": "duplicate"}
    headers = {**steward.headers, "If-Match": etag}

    assert client.post("/api/v1/identity/merges", json=merge,
                       headers=steward.headers).status_code == 428
    itself = client.post("/api/v1/identity/merges", headers=headers,
                         json={**merge, "merged_id": a})
    assert itself.status_code == 409 and itself.json()["field"] == "merged_id"
    missing = client.post("/api/v1/identity/merges", headers=headers,
                          json={**merge, "merged_id": 999999})
    assert missing.status_code == 404 and missing.json()["field"] == "merged_id"
    no_reason = client.post("/api/v1/identity/merges", headers=headers,
                            json={**merge, "reason": ""})
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "reason"
    extra = client.post("/api/v1/identity/merges", headers=headers, json={**merge, "x": 1})
    assert extra.status_code == 422

    keyed = {**headers, "Idempotency-Key": "merge-1"}
    done = client.post("/api/v1/identity/merges", json=merge, headers=keyed)
    assert done.status_code == 201, done.text
    change = done.json()
    assert change["kind"] == "merge" and change["revertible"] is True
    assert change["moved"]["customer_emails.customer_id"] == 1
    assert change["kept"] == {"customer_phones.customer_id": 1}  # A has the same phone
    assert done.headers["Location"] == f"/api/v1/identity/identity-changes/{change['id']}"
    replay = client.post("/api/v1/identity/merges", json=merge, headers=keyed)
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == change["id"]
    etag = client.get(f"/api/v1/identity/customers/{a}/sources",
                      headers=steward.headers).headers["ETag"]
    twice = client.post("/api/v1/identity/merges", json=merge,
                        headers={**steward.headers, "If-Match": etag})
    assert twice.status_code == 409 and twice.json()["field"] == "merged_id"
    assert read(db, lambda s: s.get(Customer, b).merged_into_id) == a

    revert = f"/api/v1/identity/identity-changes/{change['id']}/revert"
    undone = client.post(revert, json={"reason": "not the same"}, headers=steward.headers)
    assert undone.status_code == 201, undone.text
    assert undone.json()["kind"] == "unmerge" and undone.json()["reverts"] == change["id"]
    again = client.post(revert, json={"reason": "again"}, headers=steward.headers)
    assert again.status_code == 409 and again.json()["field"] == "change_id"
    not_a_merge = client.post(f"/api/v1/identity/identity-changes/{undone.json()['id']}/revert",
                              json={"reason": "?"}, headers=steward.headers)
    assert not_a_merge.status_code == 409
    got = client.get(f"/api/v1/identity/identity-changes/{change['id']}", headers=steward.headers)
    assert got.json()["reverted_by"] == undone.json()["id"] and got.json()["revertible"] is False
    assert read(db, lambda s: s.get(Customer, b).merged_into_id) is None
    analyst = make_actor("analyst")
    denied = client.post("/api/v1/identity/merges", json=merge,
                         headers={**analyst.headers, "If-Match": etag})
    assert denied.status_code == 403
    assert read(db, lambda s: s.scalar(select(AuditEntry.id).where(
        AuditEntry.action == "denied", AuditEntry.actor_id == analyst.id))) is not None


def test_unlink_over_the_api(client, make_actor, world, db) -> None:
    steward = make_actor("admin")
    s2 = world["profiles"]["S2"]
    url = f"/api/v1/identity/profiles/{s2}/unlink"
    assert client.post(url, json={"reason": "x"}, headers=steward.headers).status_code == 428
    version = read(db, lambda s: s.get(SourceProfile, s2).version)
    done = client.post(url, json={"reason": "a different Maria"},
                       headers={**steward.headers, "If-Match": f'"{version}"'})
    assert done.status_code == 201, done.text
    assert done.json()["kind"] == "unlink" and done.json()["profile_id"] == s2
    new_customer = done.json()["other_customer_id"]
    assert read(db, lambda s: s.get(SourceProfile, s2).customer_id) == new_customer
    version = read(db, lambda s: s.get(SourceProfile, s2).version)
    alone = client.post(url, json={"reason": "again"},
                        headers={**steward.headers, "If-Match": f'"{version}"'})
    assert alone.status_code == 409 and alone.json()["field"] == "profile_id"
    assert client.post("/api/v1/identity/profiles/999999/unlink", json={"reason": "x"},
                       headers={**steward.headers, "If-Match": '"1"'}).status_code == 404


# --- pages -----------------------------------------------------------------------------------


def test_steward_accepts_a_match_side_by_side(signed_in_as, world, db) -> None:
    web = signed_in_as("manager")
    queue = web.get("/identity/reviews")
    assert queue.status_code == 200 and inline_code(queue.text) == []
    assert f'href="/identity/reviews/{world["review"]}"' in queue.text
    page = web.get(f"/identity/reviews/{world['review']}")
    assert page.status_code == 200 and inline_code(page.text) == []
    assert "billing" in page.text and "webshop" in page.text and "trust rank 10" in page.text
    assert re.search(r'data-compare="phone"[^>]*>', page.text)
    assert re.search(r'class="w-[a-z-]+" data-compare="last_name"', page.text)
    csrf = csrf_of(page.text)
    refused = web.post(f"/identity/reviews/{world['review']}/accept", data={"version": "1"},
                       follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token
    stale = web.post(f"/identity/reviews/{world['review']}/accept",
                     data={"version": "5", "csrf_token": csrf})
    assert stale.status_code == 412 and "decided or changed" in stale.text
    done = web.post(f"/identity/reviews/{world['review']}/accept",
                    data={"version": "1", "csrf_token": csrf, "reason": "same phone"},
                    follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/identity/reviews?done=accepted"
    after = web.get(done.headers["location"])
    assert "Match accepted" in after.text and "no possible matches" in after.text
    assert read(db, lambda s: s.get(MatchReview, world["review"]).status) == "accepted"


def test_a_steward_reopens_a_rejected_match_from_its_page(signed_in_as, world, db) -> None:
    web = signed_in_as("manager")
    page = web.get(f"/identity/reviews/{world['review']}")
    assert "/reopen" not in page.text  # pending: accept or reject
    csrf = csrf_of(page.text)
    web.post(f"/identity/reviews/{world['review']}/reject",
             data={"version": "1", "csrf_token": csrf}, follow_redirects=False)
    page = web.get(f"/identity/reviews/{world['review']}")
    assert f'action="/identity/reviews/{world["review"]}/reopen"' in page.text
    assert "/accept" not in page.text
    done = web.post(f"/identity/reviews/{world['review']}/reopen",
                    data={"version": "2", "csrf_token": csrf_of(page.text), "reason": "look"},
                    follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("done=reopened")
    assert "pending again" in web.get(done.headers["location"]).text
    assert read(db, lambda s: s.get(MatchReview, world["review"]).status) == "pending"
    entry = read(db, lambda s: s.scalar(select(AuditEntry.reason)
                                        .where(AuditEntry.action == "reopen")))
    assert entry == "look"


def test_a_review_shows_what_each_sides_customer_already_says(client, make_actor,
                                                             signed_in_as, world) -> None:
    """The pair alone hides evidence: the shop record lacks an address that its customer's
    other shop record gives. The steward sees it beside the record, and missing values neither
    agree nor disagree."""
    steward = make_actor("manager")
    got = client.get(f"/api/v1/identity/reviews/{world['review']}",
                     headers=steward.headers).json()
    shop = got["left"] if got["left"]["external_id"] == "S1" else got["right"]
    billing = got["right"] if shop is got["left"] else got["left"]
    assert shop["customer_values"]["city"] == ["Berlin"]
    assert shop["customer_values"]["address_line1"] == ["Hauptstr. 5"]
    assert "email" not in shop["customer_values"]  # the other record says the same
    assert billing["customer_values"] == {}  # nobody else on Maria's billing customer
    city = next(f for f in got["fields"] if f["field"] == "city")
    assert city["agrees"] is None  # one side has no city: nothing to compare
    page = signed_in_as("manager").get(f"/identity/reviews/{world['review']}")
    assert re.search(r'data-also="(left|right)">its customer.s other records: Berlin<',
                     page.text)


def test_queue_needs_identity_read(signed_in_as, world) -> None:
    web = signed_in_as("support")
    assert web.get("/identity/reviews").status_code == 403
    page = web.get(f"/customers/{world['a']}")
    assert page.status_code == 200 and 'id="sources"' not in page.text  # no panel either


def test_sources_panel_merge_unmerge_and_unlink_from_the_360_page(signed_in_as, world,
                                                                  db) -> None:
    web = signed_in_as("admin")
    a, b = world["a"], world["b"]
    page = web.get(f"/customers/{b}")
    assert page.status_code == 200 and inline_code(page.text) == []
    assert 'id="sources"' in page.text and "trust rank 30" in page.text
    assert "Why is this record linked?" in page.text and "same e-mail and surname" in page.text
    csrf = csrf_of(page.text)
    version = read(db, lambda s: s.get(Customer, a).version)

    wrong = web.post(f"/customers/{a}/identity/merge",
                     data={"csrf_token": csrf, "version": str(version), "other_id": str(a),
                           "reason": "x"})
    assert wrong.status_code == 409 and "cannot be merged into itself" in wrong.text
    merged = web.post(f"/customers/{a}/identity/merge",
                      data={"csrf_token": csrf, "version": str(version), "other_id": str(b),
                            "reason": "same person"}, follow_redirects=False)
    assert merged.status_code == 303
    survivor = web.get(merged.headers["location"])
    assert "Customers merged" in survivor.text and "S2" in survivor.text
    gone = web.get(f"/customers/{b}", follow_redirects=False)
    assert gone.status_code == 303
    assert gone.headers["location"] == f"/customers/{a}?identity=merged-away"

    change = read(db, lambda s: s.scalar(select(IdentityChange.id)
                                         .where(IdentityChange.kind == "merge")))
    assert f'action="/identity/changes/{change}/revert"' in survivor.text
    undone = web.post(f"/identity/changes/{change}/revert",
                      data={"csrf_token": csrf, "reason": "different people"},
                      follow_redirects=False)
    assert undone.status_code == 303
    assert "Merge undone" in web.get(undone.headers["location"]).text
    assert read(db, lambda s: s.get(Customer, b).merged_into_id) is None

    s2 = world["profiles"]["S2"]
    version = read(db, lambda s: s.get(SourceProfile, s2).version)
    unlinked = web.post(f"/identity/profiles/{s2}/unlink",
                        data={"csrf_token": csrf, "version": str(version),
                              "reason": "another Maria"}, follow_redirects=False)
    assert unlinked.status_code == 303 and unlinked.headers["location"].startswith(
        f"/customers/{b}?identity=unlinked")
    assert read(db, lambda s: s.get(SourceProfile, s2).customer_id) not in (a, b)
