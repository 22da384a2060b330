"""`Idempotency-Key` on POST: same key and body → the saved response (one row, replay header);
same key with another body → 422; keys belong to one principal."""

from __future__ import annotations

from tests.access.helpers import assert_problem, count, snapshot

URL = "/api/v1/customers"
BODY = {"first_name": "Ida", "last_name": "Potent", "emails": [{"email": "ida@example.com"}]}


def test_replay_returns_the_saved_response(db, client, admin):
    h = {**admin.headers, "Idempotency-Key": "k-1"}
    first = client.post(URL, json=BODY, headers=h)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    outbox, audit = count(db, "outbox_events"), count(db, "audit_log")
    second = client.post(URL, json=BODY, headers=h)
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["ETag"] == first.headers["ETag"]
    assert second.headers["Location"] == first.headers["Location"]
    assert count(db, "customers") == 1
    assert count(db, "outbox_events") == outbox and count(db, "audit_log") == audit


def test_same_key_other_body_is_refused(db, client, admin):
    h = {**admin.headers, "Idempotency-Key": "k-2"}
    assert client.post(URL, json=BODY, headers=h).status_code == 201
    before = snapshot(db)
    r = client.post(URL, json={**BODY, "first_name": "Other"}, headers=h)
    assert_problem(r, 422, "Idempotency-Key")
    assert snapshot(db) == before


def test_same_key_other_path_is_refused(db, client, admin):
    h = {**admin.headers, "Idempotency-Key": "k-3"}
    assert client.post(URL, json=BODY, headers=h).status_code == 201
    r = client.post("/api/v1/teams", json={"name": "T"}, headers=h)
    assert_problem(r, 422, "Idempotency-Key")


def test_keys_are_per_principal(db, client, make_actor):
    a, b = make_actor("admin"), make_actor("admin")
    ra = client.post(URL, json=BODY, headers={**a.headers, "Idempotency-Key": "shared"})
    rb = client.post(URL, json=BODY, headers={**b.headers, "Idempotency-Key": "shared"})
    assert ra.status_code == rb.status_code == 201
    assert "Idempotent-Replayed" not in rb.headers
    assert ra.json()["id"] != rb.json()["id"]
    assert rb.json()["owner_id"] == b.id
    assert count(db, "customers") == 2


def test_failed_request_does_not_burn_the_key(db, client, admin):
    h = {**admin.headers, "Idempotency-Key": "k-4"}
    r = client.post(URL, json={**BODY, "country": "XX"}, headers=h)
    assert_problem(r, 422, "country")
    assert count(db, "idempotency_keys") == 0
    assert client.post(URL, json=BODY, headers=h).status_code == 201


def test_key_length_bounds(db, client, admin):
    assert_problem(
        client.post(URL, json=BODY, headers={**admin.headers, "Idempotency-Key": "x" * 201}),
        422,
        "Idempotency-Key",
    )
    assert count(db, "customers") == 0


def test_without_key_each_post_creates(db, client, admin):
    client.post(URL, json=BODY, headers=admin.headers)
    client.post(URL, json=BODY, headers=admin.headers)
    assert count(db, "customers") == 2
