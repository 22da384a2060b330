"""The Segment-compatible collection API, driven with the payloads of Segment's HTTP Tracking API
specification: every call, authentication, limits, idempotent delivery, anonymous visitors
becoming known customers, aliases, groups and batches with bad messages."""

from __future__ import annotations

import base64
import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.integration import collection
from accord.integration.sources import create_source, hash_key, mint_write_key
from accord.models import (
    Account,
    AuditEntry,
    Customer,
    IdentityAlias,
    Interaction,
    MatchReview,
    OutboxEvent,
    Source,
    SourceProfile,
    SourceRecord,
)

# --- the examples of Segment's HTTP Tracking API reference ---------------------------------------

IDENTIFY = {
    "userId": "019mr8mf4r",
    "traits": {"email": "pgibbons@example.com", "name": "Peter Gibbons",
               "industry": "Technology"},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:08.276Z",
}
TRACK = {
    "userId": "019mr8mf4r",
    "event": "Item Purchased",
    "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
    "context": {"ip": "24.5.68.47"},
    "timestamp": "2012-12-02T00:30:12.984Z",
}
PAGE = {"userId": "019mr8mf4r", "name": "Tracking HTTP API",
        "timestamp": "2012-12-02T00:31:29.738Z"}
SCREEN = {"userId": "019mr8mf4r", "name": "Tracking HTTP API",
          "timestamp": "2012-12-02T00:30:08.276Z"}
GROUP = {
    "userId": "019mr8mf4r",
    "groupId": "8e9df332ac",
    "traits": {"name": "Initech", "industry": "Technology", "employees": 420},
    "timestamp": "2012-12-02T00:30:08.276Z",
}
ALIAS = {"previousId": "39239-239239-239239-23923", "userId": "019mr8mf4r",
         "timestamp": "2012-12-02T00:30:08.276Z"}
BATCH = {
    "batch": [
        {"type": "identify", "userId": "019mr8mf4r",
         "traits": {"email": "jake@yahoo.com", "name": "Jake Peterson", "age": 26},
         "timestamp": "2012-12-02T00:30:12.984Z"},
        {"type": "track", "userId": "019mr8mf4r", "event": "Song Played",
         "properties": {"name": "Fallin for You", "artist": "Dierks Bentley"},
         "timestamp": "2012-12-02T00:30:08.276Z"},
        {"type": "track", "userId": "971mj8mk7p", "event": "Song Played",
         "properties": {"name": "Get Right", "artist": "Jennifer Lopez"},
         "timestamp": "2012-12-02T00:30:08.276Z"},
    ],
    "context": {"device": {"type": "phone", "name": "Apple iPhone 6"}},
}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def web(db: str) -> tuple[int, str]:
    """A tracking source with a write key: (source id, key)."""
    with dbmod.session_scope(db) as s:
        source = create_source(s, SYSTEM, name="web", kind="tracking", trust_rank=60)
        key = mint_write_key(s, SYSTEM, source)
        return source.id, key


def send(client, key: str, call: str, body: Any, **headers: str):
    return client.post(f"/v1/{call}", json=body, headers={**basic(key), **headers})


def count(db: str, model: Any, *where: Any) -> int:
    with dbmod.session_scope(db, write=False) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def resolve(db: str) -> None:
    from accord.integration.resolution import resolve_pending

    with dbmod.session_scope(db) as s:
        resolve_pending(s)


def work(db: str) -> None:
    """`accord worker --once`: relay the outbox and run every ready job, in queue order."""
    from accord.core import jobs
    from accord.tasks import register_all

    register_all()
    jobs.work(db, once=True)


def timeline(db: str, user_id: str = "019mr8mf4r") -> list[Interaction]:
    """The interactions of the golden customer the user's profile resolved to."""
    with dbmod.session_scope(db, write=False) as s:
        customer_id = s.scalar(select(SourceProfile.customer_id)
                               .where(SourceProfile.external_id == user_id))
        assert customer_id is not None, f"{user_id} has not resolved to a customer"
        return list(s.scalars(select(Interaction).where(Interaction.customer_id == customer_id)
                              .order_by(Interaction.occurred_at, Interaction.id)))


def assert_problem(response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body.get("field") == field, body
    return body


# --- every call of the spec -----------------------------------------------------------------------


def test_identify_creates_the_profile_and_lands_on_the_timeline(client, db, web) -> None:
    _, key = web
    r = send(client, key, "identify", IDENTIFY)
    assert r.status_code == 200 and r.json() == {"success": True}
    with dbmod.session_scope(db, write=False) as s:
        profile = s.scalar(select(SourceProfile))
        assert profile.external_id == "019mr8mf4r"
        assert (profile.first_name, profile.last_name, profile.email) == (
            "Peter", "Gibbons", "pgibbons@example.com")
        assert profile.extra == {"cf.industry": "Technology"}
        kinds = sorted(s.scalars(select(SourceRecord.kind)))
        assert kinds == ["event", "profile"]
        stored = s.scalar(select(SourceRecord.payload).where(SourceRecord.kind == "profile"))
        assert stored["traits"] == IDENTIFY["traits"] and stored["type"] == "identify"
    resolve(db)
    [event] = timeline(db)
    assert event.subject == "Identified (email, industry, name)"
    assert event.channel == "web" and event.direction == "inbound" and event.source == "web"
    assert event.occurred_at == datetime(2012, 12, 2, 0, 30, 8, 276000, tzinfo=UTC)
    assert event.meta["traits"] == ["email", "industry", "name"]  # names only, values on profile
    with dbmod.session_scope(db, write=False) as s:
        customer = s.scalar(select(Customer))
        assert (customer.first_name, customer.last_name) == ("Peter", "Gibbons")


def test_track_page_screen_group_alias_with_the_spec_payloads(client, db, web) -> None:
    _, key = web
    for call, body in (("identify", IDENTIFY), ("track", TRACK), ("page", PAGE),
                       ("screen", SCREEN), ("group", GROUP), ("alias", ALIAS)):
        r = send(client, key, call, body)
        assert r.status_code == 200 and r.json() == {"success": True}, (call, r.text)
    # nobody is resolved yet: every event waits for its person
    assert count(db, SourceRecord, SourceRecord.kind == "event") == 6
    assert count(db, SourceRecord, SourceRecord.status == "pending") == 6
    assert count(db, Interaction) == 0
    resolve(db)
    events = {e.meta["type"]: e for e in timeline(db)}
    assert set(events) == {"identify", "track", "page", "screen", "group", "alias"}
    track = events["track"]
    assert track.subject == "Item Purchased" and track.channel == "web"
    assert track.meta["properties"] == TRACK["properties"]
    assert track.occurred_at == datetime(2012, 12, 2, 0, 30, 12, 984000, tzinfo=UTC)
    assert "ip" not in json.dumps(track.meta)  # the IP stays in the raw record only
    assert events["page"].subject == "Viewed Tracking HTTP API page"
    assert events["page"].channel == "web"
    assert events["screen"].subject == "Viewed Tracking HTTP API screen"
    assert events["screen"].channel == "app"
    assert events["group"].subject == "Joined group Initech"
    assert events["group"].meta["group_id"] == "8e9df332ac"
    assert events["alias"].meta["previous_id"] == ALIAS["previousId"]
    with dbmod.session_scope(db, write=False) as s:
        alias = s.execute(select(IdentityAlias.alias, IdentityAlias.user_id)).all()
        assert [tuple(a) for a in alias] == [(ALIAS["previousId"], "019mr8mf4r")]


def test_batch_with_the_spec_payload_applies_batch_context(client, db, web) -> None:
    _, key = web
    r = send(client, key, "batch", BATCH)
    assert r.status_code == 200 and r.json() == {"success": True, "rejected": []}
    with dbmod.session_scope(db, write=False) as s:
        profile = s.scalar(select(SourceProfile))
        assert (profile.external_id, profile.email, profile.extra) == (
            "019mr8mf4r", "jake@yahoo.com", {"cf.age": 26})
        payloads = list(s.scalars(select(SourceRecord.payload)
                                  .where(SourceRecord.kind == "event")))
        assert len(payloads) == 3
        assert all(p["context"]["device"]["name"] == "Apple iPhone 6" for p in payloads)
    resolve(db)
    events = timeline(db)
    assert [e.subject for e in events] == ["Song Played", "Identified (age, email, name)"]
    assert {e.channel for e in events} == {"app"}  # the batch's device context says so
    # 971mj8mk7p never identified: their event waits
    assert count(db, SourceRecord, SourceRecord.subject_key == "971mj8mk7p",
                 SourceRecord.status == "pending") == 1


def test_import_is_the_batch_endpoint_and_write_key_may_be_in_the_body(client, db, web) -> None:
    _, key = web
    r = client.post("/v1/import", json={**BATCH, "writeKey": key})
    assert r.status_code == 200 and r.json()["success"] is True
    assert count(db, SourceRecord, SourceRecord.kind == "event") == 3
    with dbmod.session_scope(db, write=False) as s:  # the key is never stored
        assert key not in json.dumps(list(s.scalars(select(SourceRecord.payload))))


def test_gzip_bodies_are_accepted(client, db, web) -> None:
    _, key = web
    body = gzip.compress(json.dumps(TRACK).encode())
    r = client.post("/v1/track", content=body, headers={
        **basic(key), "Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert count(db, SourceRecord) == 1


# --- authentication and bad requests --------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic " + base64.b64encode(b"wk_not-a-real-key:").decode()},
    {"Authorization": "Basic not-base64!"},
    {"Authorization": "Bearer something"},
])
def test_a_missing_or_unknown_write_key_is_401_and_writes_nothing(client, db, web,
                                                                  headers) -> None:
    r = client.post("/v1/track", json=TRACK, headers=headers)
    assert_problem(r, 401, "Authorization")
    assert r.headers["www-authenticate"].startswith("Basic")
    assert count(db, SourceRecord) == 0


def test_a_deactivated_source_or_rotated_key_no_longer_works(client, db, web) -> None:
    source_id, key = web
    with dbmod.session_scope(db) as s:
        new_key = mint_write_key(s, SYSTEM, s.get(Source, source_id))
    assert_problem(send(client, key, "track", TRACK), 401, "Authorization")
    assert send(client, new_key, "track", TRACK).status_code == 200
    with dbmod.session_scope(db) as s:
        s.get(Source, source_id).active = False
    assert_problem(send(client, new_key, "page", PAGE), 401, "Authorization")
    assert count(db, SourceRecord) == 1


@pytest.mark.parametrize("call,body,field", [
    ("track", {"event": "Clicked"}, "userId"),
    ("identify", {"traits": {"email": "a@example.com"}}, "userId"),
    ("track", {"userId": "u1"}, "event"),
    ("track", {"userId": "u1", "event": "  "}, "event"),
    ("group", {"userId": "u1"}, "groupId"),
    ("alias", {"userId": "u1"}, "previousId"),
    ("alias", {"previousId": "p1", "anonymousId": "a1"}, "userId"),
    ("track", {"userId": {"id": 1}, "event": "X"}, "userId"),
    ("track", {"userId": "u1", "event": "X", "properties": [1, 2]}, "properties"),
    ("track", {"userId": "u1", "event": "X", "timestamp": "yesterday"}, "timestamp"),
    ("track", {"userId": "u" * 191, "event": "X"}, "userId"),
])
def test_an_invalid_call_is_400_naming_the_field(client, db, web, call, body, field) -> None:
    _, key = web
    assert_problem(send(client, key, call, body), 400, field)
    assert count(db, SourceRecord) == 0


def test_malformed_json_and_non_objects_are_400(client, db, web) -> None:
    _, key = web
    r = client.post("/v1/track", content=b'{"userId": "u1", "event": ',
                    headers={**basic(key), "Content-Type": "application/json"})
    assert assert_problem(r, 400, "body")["title"] == "Malformed JSON"
    assert_problem(send(client, key, "track", [TRACK]), 400, "body")
    assert_problem(send(client, key, "batch", {"batch": {"type": "track"}}), 400, "batch")
    r = client.post("/v1/track", content=b"\x1f\x8bnot gzip",
                    headers={**basic(key), "Content-Encoding": "gzip"})
    assert_problem(r, 400, "body")
    assert count(db, SourceRecord) == 0


def test_size_limits_follow_segment(client, db, web) -> None:
    _, key = web
    big = {**TRACK, "properties": {"blob": "x" * (33 * 1024)}}
    assert "32 KB" in assert_problem(send(client, key, "track", big), 400, "body")["detail"]
    # in a batch an oversized call is refused alone
    r = send(client, key, "batch", {"batch": [{**big, "type": "track"},
                                              {**TRACK, "type": "track"}]})
    assert r.status_code == 200
    assert r.json()["rejected"] == [{"index": 0, "field": "message",
                                     "reason": "larger than 32 KB"}]
    assert count(db, SourceRecord) == 1
    # the whole batch is limited to 500 KB
    calls = [{**TRACK, "type": "track", "messageId": f"m{i}",
              "properties": {"blob": "x" * 30_000}} for i in range(18)]
    assert_problem(send(client, key, "batch", {"batch": calls}), 400, "body")
    # beyond the server's request limit (1 MB by default) the body is not even read
    huge = {"batch": [{**TRACK, "type": "track", "properties": {"blob": "x" * 1_100_000}}]}
    assert_problem(send(client, key, "batch", huge), 413, "body")
    assert count(db, SourceRecord) == 1


# --- idempotency ----------------------------------------------------------------------------------


def test_a_replayed_message_id_writes_nothing_even_with_a_new_sent_at(client, db, web) -> None:
    _, key = web
    send(client, key, "identify", {**IDENTIFY, "messageId": "id-1"})
    resolve(db)
    body = {**TRACK, "messageId": "msg-1", "sentAt": "2012-12-02T00:30:13.000Z"}
    for sent_at in ("2012-12-02T00:30:13.000Z", "2012-12-02T00:30:13.000Z",
                    "2012-12-02T00:31:40.500Z"):  # a library retry re-stamps sentAt
        assert send(client, key, "track", {**body, "sentAt": sent_at}).status_code == 200
    twice = [{**body, "type": "track"}, {**body, "type": "track"}]
    r = send(client, key, "batch", {"batch": twice})
    assert r.json() == {"success": True, "rejected": []}
    assert count(db, SourceRecord, SourceRecord.external_id == "msg-1") == 1
    assert [e.subject for e in timeline(db)].count("Item Purchased") == 1


def test_calls_without_a_message_id_are_deduplicated_by_content(client, db, web) -> None:
    _, key = web
    assert send(client, key, "track", TRACK).status_code == 200
    assert send(client, key, "track", {**TRACK, "sentAt": "2012-12-02T00:31:00Z"}).status_code \
        == 200
    assert send(client, key, "track", {**TRACK, "event": "Item Returned"}).status_code == 200
    assert count(db, SourceRecord) == 2


def test_timestamps_are_corrected_for_the_clients_clock_skew() -> None:
    received = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    # the device clock runs an hour fast: it stamped the event 5 s before sending it
    m = collection.prepare({"userId": "u", "event": "E", "timestamp": "2024-05-01T13:00:00Z",
                            "sentAt": "2024-05-01T13:00:05Z"}, 0, received_at=received,
                           call="track")
    assert m.occurred_at == received - timedelta(seconds=5)
    assert "sentAt" not in m.payload
    # no sentAt: the timestamp is taken as given (historical imports); none at all: arrival
    m = collection.prepare({"userId": "u", "event": "E", "timestamp": "2020-01-01T00:00:00Z"},
                           0, received_at=received, call="track")
    assert m.occurred_at == datetime(2020, 1, 1, tzinfo=UTC)
    m = collection.prepare({"userId": "u", "event": "E"}, 0, received_at=received, call="track")
    assert m.occurred_at == received
    # a batch-level sentAt applies to its messages
    m = collection.prepare({"type": "track", "userId": "u", "event": "E",
                            "originalTimestamp": "2024-05-01T11:59:00Z"}, 0,
                           received_at=received, sent_at="2024-05-01T11:59:30Z")
    assert m.occurred_at == received - timedelta(seconds=30)


# --- anonymous visitors, aliases, groups ----------------------------------------------------------


def test_anonymous_events_wait_and_follow_the_person_once_identified(client, db, web) -> None:
    _, key = web
    anon = "507f191e810c19729de860ea"
    page = {"anonymousId": anon, "name": "Pricing", "messageId": "p-1",
            "context": {"page": {"url": "https://example.com/pricing", "path": "/pricing"},
                        "campaign": {"name": "spring", "source": "newsletter"},
                        "ip": "8.8.8.8"}}
    assert send(client, key, "page", page).status_code == 200
    assert count(db, SourceRecord, SourceRecord.subject_key == anon,
                 SourceRecord.status == "pending") == 1
    assert count(db, Interaction) == 0
    assert send(client, key, "identify", {**IDENTIFY, "anonymousId": anon}).status_code == 200
    with dbmod.session_scope(db, write=False) as s:
        assert s.scalar(select(IdentityAlias.user_id).where(IdentityAlias.alias == anon)) \
            == "019mr8mf4r"
    resolve(db)
    events = timeline(db)
    viewed = next(e for e in events if e.meta["type"] == "page")
    assert viewed.subject == "Viewed Pricing page" and viewed.channel == "web"
    assert viewed.meta["context"] == {
        "page": {"url": "https://example.com/pricing", "path": "/pricing"},
        "campaign": {"name": "spring", "source": "newsletter"}}
    assert count(db, SourceRecord, SourceRecord.status == "pending") == 0
    # later anonymous events of the same visitor go straight to the customer
    assert send(client, key, "track", {"anonymousId": anon, "event": "Clicked CTA"}) \
        .status_code == 200
    assert "Clicked CTA" in [e.subject for e in timeline(db)]


def test_an_anonymous_identify_is_a_profile_of_its_own(client, db, web) -> None:
    _, key = web
    body = {"anonymousId": "anon-7", "traits": {"email": "visitor@example.com"}}
    assert send(client, key, "identify", body).status_code == 200
    assert send(client, key, "track", {"anonymousId": "anon-7", "event": "Downloaded"}) \
        .status_code == 200
    resolve(db)
    assert [e.subject for e in timeline(db, "anon:anon-7")] == ["Identified (email)",
                                                                 "Downloaded"]


def test_alias_applies_the_previous_ids_pending_events(client, db, web) -> None:
    _, key = web
    assert send(client, key, "track", {"userId": ALIAS["previousId"], "event": "Trial Started",
                                       "messageId": "t-1"}).status_code == 200
    send(client, key, "identify", IDENTIFY)
    resolve(db)
    assert "Trial Started" not in [e.subject for e in timeline(db)]
    assert send(client, key, "alias", ALIAS).status_code == 200
    assert "Trial Started" in [e.subject for e in timeline(db)]


def test_identify_traits_merge_like_segment(client, db, web) -> None:
    _, key = web
    send(client, key, "identify", IDENTIFY)
    send(client, key, "identify", {"userId": "019mr8mf4r", "traits": {
        "phone": "+44 20 7946 0958", "address": {"street": "1 Main St", "city": "London",
                                                  "postalCode": "SW1A 1AA", "country": "GB"},
        "company": {"name": "Initech"}, "title": "Engineer", "createdAt": "2012-01-01"}})
    with dbmod.session_scope(db, write=False) as s:
        p = s.scalar(select(SourceProfile))
        assert (p.email, p.first_name, p.phone) == ("pgibbons@example.com", "Peter",
                                                    "+442079460958")
        assert (p.address_line1, p.city, p.postcode, p.country) == ("1 Main St", "London",
                                                                     "SW1A 1AA", "GB")
        assert (p.company, p.job_title) == ("Initech", "Engineer")
        assert p.extra == {"cf.industry": "Technology", "cf.created_at": "2012-01-01"}
        assert p.version == 2


def test_group_links_a_known_customer_to_the_named_account(client, db, web) -> None:
    _, key = web
    send(client, key, "identify", IDENTIFY)
    resolve(db)
    assert send(client, key, "group", GROUP).status_code == 200
    assert send(client, key, "group", {**GROUP, "timestamp": "2012-12-03T00:00:00Z"}) \
        .status_code == 200
    with dbmod.session_scope(db, write=False) as s:
        [account] = s.scalars(select(Account)).all()
        assert (account.name, account.industry, account.employees) == ("Initech", "Technology",
                                                                        420)
        assert s.scalar(select(Customer.account_id)) == account.id
    # an unknown person's group call only waits on their timeline
    send(client, key, "group", {**GROUP, "userId": "nobody-yet",
                                "traits": {"name": "Globex"}})
    assert count(db, Account) == 1


LISA_ANONYMOUS = {"type": "identify", "anonymousId": "A", "messageId": "lisa-anon",
                  "traits": {"email": "lisa@example.com"}}
LISA = {"type": "identify", "userId": "U", "anonymousId": "A", "messageId": "lisa-user",
        "traits": {"email": "lisa@example.com", "firstName": "Lisa", "lastName": "Kraus"}}


@pytest.mark.parametrize("timing", ["worker after both", "worker in between", "one batch"])
def test_the_identify_naming_an_anonymous_visitor_keeps_one_customer(client, db, web,
                                                                     timing) -> None:
    """identify(userId U, anonymousId A) says A is U: the anonymous profile and U's end on
    one golden customer, linked by that statement rather than by a score (no review)."""
    _, key = web
    if timing == "one batch":
        assert send(client, key, "batch", {"batch": [LISA_ANONYMOUS, LISA]}).status_code == 200
    else:
        assert send(client, key, "identify", LISA_ANONYMOUS).status_code == 200
        if timing == "worker in between":
            work(db)
        assert send(client, key, "identify", LISA).status_code == 200
    work(db)
    with dbmod.session_scope(db, write=False) as s:
        [customer] = s.scalars(select(Customer).where(Customer.merged_into_id.is_(None)))
        assert (customer.first_name, customer.last_name) == ("Lisa", "Kraus")
        profiles = {p.external_id: p for p in s.scalars(select(SourceProfile))}
        assert set(profiles) == {"anon:A", "U"}
        assert {p.customer_id for p in profiles.values()} == {customer.id}
        [joined] = [p for p in profiles.values() if p.link_method == "rule"]
        assert "identified as user U" in joined.link_evidence["rule"]
        [anchor] = [p for p in profiles.values() if p is not joined]
        assert joined.link_evidence["other_profile_id"] == anchor.id
        [audited] = s.scalars(select(AuditEntry).where(AuditEntry.action == "link"))
        assert (audited.resource, audited.record_id, audited.actor) == (
            "source_profiles", str(joined.id), "source:web")
        assert s.scalar(select(func.count()).select_from(MatchReview)) == 0
        subjects = set(s.scalars(select(Interaction.subject)
                                 .where(Interaction.customer_id == customer.id)))
        assert subjects == {"Identified (email)", "Identified (email, firstName, lastName)"}
        assert s.scalar(select(func.count()).select_from(SourceRecord)
                        .where(SourceRecord.status == "pending")) == 0


def test_alias_joins_the_previous_ids_profile_to_the_users_customer(client, db, web) -> None:
    _, key = web
    send(client, key, "identify", {"userId": "old-7", "traits": {"email": "lk@old.example"}})
    work(db)
    assert send(client, key, "batch", {"batch": [
        {"type": "alias", "previousId": "old-7", "userId": "U"},
        {**LISA, "anonymousId": None}]}).status_code == 200
    work(db)
    with dbmod.session_scope(db, write=False) as s:
        [customer] = s.scalars(select(Customer))
        profiles = {p.external_id: p for p in s.scalars(select(SourceProfile))}
        assert {p.customer_id for p in profiles.values()} == {customer.id}
        assert profiles["U"].link_method == "rule"
        assert profiles["U"].link_evidence["rule"] == "old-7 aliased to user U"
        assert (customer.first_name, customer.last_name) == ("Lisa", "Kraus")


def test_an_alias_between_two_customers_is_proposed_for_review(client, db, web) -> None:
    _, key = web
    send(client, key, "identify", {"userId": "old-7", "traits": {"email": "lk@old.example"}})
    send(client, key, "identify", {**LISA, "anonymousId": None})
    work(db)
    assert count(db, Customer) == 2
    send(client, key, "alias", {"previousId": "old-7", "userId": "U"})
    work(db)
    assert count(db, Customer) == 2  # joining two customers is a merge: a steward decides
    with dbmod.session_scope(db, write=False) as s:
        [review] = s.scalars(select(MatchReview))
        assert (review.status, review.match_probability) == ("pending", 1.0)


GROUP_ACME = {"type": "group", "userId": "U", "groupId": "acme", "messageId": "acme-1",
              "traits": {"name": "ACME"}}


@pytest.mark.parametrize("order", ["one batch", "identify first", "group first"])
def test_a_pending_group_call_links_the_account_once_its_person_is_resolved(
        client, db, web, order) -> None:
    _, key = web
    identify = {**LISA, "anonymousId": None}
    if order == "one batch":
        send(client, key, "batch", {"batch": [identify, GROUP_ACME]})
    elif order == "identify first":  # both before the worker runs
        send(client, key, "batch", {"batch": [identify]})
        send(client, key, "batch", {"batch": [GROUP_ACME]})
    else:  # the group call waits while nobody knows U
        send(client, key, "batch", {"batch": [GROUP_ACME]})
        work(db)
        assert count(db, Account) == 0
        send(client, key, "batch", {"batch": [identify]})
    work(db)

    def linked() -> tuple[list[tuple[str, int]], int | None, int]:
        with dbmod.session_scope(db, write=False) as s:
            accounts = [(a.name, a.id) for a in s.scalars(select(Account))]
            updates = s.scalar(select(func.count()).select_from(OutboxEvent).where(
                OutboxEvent.type == "customer.updated"))
            return accounts, s.scalar(select(Customer.account_id)), updates

    accounts, account_id, updates = linked()
    assert [name for name, _ in accounts] == ["ACME"] and account_id == accounts[0][1]
    assert updates == 1
    # replays change nothing: the calls again, the same group call under a new message id
    # (it lands and links, to the account the customer has), the worker again, pending
    # records replayed
    again = send(client, key, "batch", {"batch": [identify, GROUP_ACME]})
    assert again.status_code == 200, again.text
    send(client, key, "group", {**GROUP_ACME, "messageId": "acme-2"})
    work(db)
    resolve(db)
    with dbmod.session_scope(db) as s:
        from accord.integration import ingest

        ingest.apply_pending(s, s.scalar(select(Source.id)), ["U"])
    assert linked() == (accounts, account_id, updates)


def test_a_batch_lands_its_good_messages_and_reports_the_bad_ones(client, db, web) -> None:
    _, key = web
    r = send(client, key, "batch", {"batch": [
        {**TRACK, "type": "track", "messageId": "ok-1"},
        {"type": "track", "userId": "u1", "messageId": "bad-1"},
        {**PAGE, "type": "page", "messageId": "ok-2"},
        "not a call",
        {**TRACK, "type": "launch", "messageId": "bad-2"},
        {"type": "identify", "messageId": "bad-3", "traits": {"email": "x@example.com"}},
    ]})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [
        (1, "event"), (3, "message"), (4, "type"), (5, "userId")]
    with dbmod.session_scope(db, write=False) as s:
        assert sorted(s.scalars(select(SourceRecord.external_id))) == ["ok-1", "ok-2"]


# --- the demo's tracking source -------------------------------------------------------------------


def test_demo_write_key_is_stable_hashed_and_works(client, db, tmp_path) -> None:
    from accord.demo.generator import demo_write_key

    key_file = tmp_path / "data" / "demo-web-write-key"
    key = demo_write_key(db, key_file)
    assert key.startswith("wk_") and demo_write_key(db, key_file) == key
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    with dbmod.session_scope(db, write=False) as s:
        source = s.scalar(select(Source).where(Source.name == "web"))
        assert source.kind == "tracking" and source.write_key_hash != key
        assert source.write_key_hash == hash_key(key)  # only the hash is in the database
    assert send(client, key, "track", TRACK).status_code == 200
    # `accord demo --fresh` empties the database: the source comes back with the same key
    with dbmod.session_scope(db) as s:
        s.execute(delete(SourceRecord))
        s.execute(delete(Source))
    assert demo_write_key(db, key_file) == key
    assert send(client, key, "page", PAGE).status_code == 200
    # a key rotated meanwhile cannot be printed: a new one is minted and kept
    with dbmod.session_scope(db) as s:
        mint_write_key(s, SYSTEM, s.scalar(select(Source).where(Source.name == "web")))
    rotated = demo_write_key(db, key_file)
    assert rotated != key and key_file.read_text().strip() == rotated
    assert send(client, rotated, "screen", SCREEN).status_code == 200


def test_accord_demo_prints_the_write_key_beside_the_logins(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from accord.cli import app as cli
    from accord.core.settings import reset_settings

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("ACCORD_DATABASE_URL", url)
    monkeypatch.setenv("ACCORD_DATA_DIR", str(tmp_path / "data"))
    reset_settings()
    try:
        runner = CliRunner()
        first = runner.invoke(cli, ["demo", "--customers", "10", "--no-serve"])
        assert first.exit_code == 0, first.output
        found = re.search(r"write key of source 'web': (wk_\S+)", first.output)
        assert found and "Demo logins" in first.output
        second = runner.invoke(cli, ["demo", "--customers", "10", "--no-serve"])
        assert found.group(1) in second.output
        with dbmod.session_scope(url, write=False) as s:
            assert s.scalar(select(Source.write_key_hash)) == hash_key(found.group(1))
    finally:
        dbmod.dispose_all()
        reset_settings()


# --- group commit ---------------------------------------------------------------------------------


def _job(key: str | None, calls: list[dict[str, Any]], single: bool = False) -> collection.Job:
    now = datetime.now(UTC)
    return collection.Job(key, collection.prepare_all(calls, received_at=now), single=single)


def test_a_group_answers_each_request_on_its_own(db, web) -> None:
    _, key = web
    good = _job(key, [{**TRACK, "type": "track", "messageId": "g-1"},
                      {"type": "track", "userId": "u", "messageId": "g-2"}])
    stranger = _job("wk_unknown", [{**PAGE, "type": "page", "messageId": "g-3"}])
    invalid_single = _job(key, [{"type": "track", "userId": "u"}], single=True)
    duplicate = _job(key, [{**TRACK, "type": "track", "messageId": "g-1"},
                           {**PAGE, "type": "page", "messageId": "g-4"}])
    collection.write_group([good, stranger, invalid_single, duplicate])
    assert good.result.rejected == [{"index": 1, "field": "event",
                                     "reason": "a track call needs the event name"}]
    assert stranger.error.status == 401 and invalid_single.error.status == 400
    assert duplicate.result.rejected == []  # its copy of g-1 is a replay, g-4 lands
    with dbmod.session_scope(db, write=False) as s:
        assert sorted(s.scalars(select(SourceRecord.external_id))) == ["g-1", "g-4"]


def test_a_failing_group_is_retried_request_by_request(db, web, monkeypatch) -> None:
    _, key = web

    def broken(*_args: Any) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(collection, "link_groups", broken)
    with dbmod.session_scope(db) as s:
        source = s.scalar(select(Source))
        collection.collect(s, source, [{**IDENTIFY, "type": "identify"}])
    resolve(db)  # so that the group call below reaches link_groups (its person is known)
    fine = _job(key, [{**TRACK, "type": "track", "messageId": "f-1"}])
    failing = _job(key, [{**GROUP, "type": "group", "messageId": "f-2"}])
    collection.write_group([fine, failing])
    assert fine.result is not None and fine.error is None
    assert isinstance(failing.error, RuntimeError)
    with dbmod.session_scope(db, write=False) as s:
        ids = set(s.scalars(select(SourceRecord.external_id)))
        assert "f-1" in ids and "f-2" not in ids


def test_concurrent_requests_are_all_written_once(client, db, web) -> None:
    from concurrent.futures import ThreadPoolExecutor

    _, key = web

    def post(n: int) -> int:
        calls = [{**TRACK, "type": "track", "messageId": f"c-{n}-{i}"} for i in range(20)]
        calls.append({**TRACK, "type": "track", "messageId": "c-shared"})
        return send(client, key, "batch", {"batch": calls}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(post, range(16))) == {200}
    assert count(db, SourceRecord) == 16 * 20 + 1


def test_analytics_js_short_paths_text_plain_and_cors(client, db, web) -> None:
    """analytics.js posts text/plain to /v1/t, /v1/p, ... and /v1/b with the key in the body."""
    _, key = web
    body = {**TRACK, "writeKey": key, "messageId": "ajs-1", "sentAt": TRACK["timestamp"],
            "_metadata": {"bundled": ["Segment.io"]}}
    r = client.post("/v1/t", content=json.dumps(body), headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    batch = {"writeKey": key, "sentAt": "2012-12-02T00:31:00Z",
             "batch": [{**PAGE, "type": "page", "writeKey": key, "messageId": "ajs-2"}]}
    r = client.post("/v1/b", content=json.dumps(batch), headers={"Content-Type": "text/plain"})
    assert r.status_code == 200 and r.json() == {"success": True, "rejected": []}
    preflight = client.options("/v1/track", headers={
        "Origin": "https://shop.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 204
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    with dbmod.session_scope(db, write=False) as s:
        assert sorted(s.scalars(select(SourceRecord.external_id))) == ["ajs-1", "ajs-2"]
        assert key not in json.dumps(list(s.scalars(select(SourceRecord.payload))))

