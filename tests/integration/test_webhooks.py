"""Signed webhooks in: good signatures land records through ingest; bad, stale or missing ones
are refused with 401 and write nothing; replays are idempotent."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.integration import webhooks
from accord.integration.sources import create_source, mint_webhook_secret
from accord.models import Interaction, Order, Source, SourceProfile, SourceRecord

RECORDS = [
    {"type": "profile", "id": "C-1001",
     "data": {"Vorname": "Anna", "Nachname": "Schmidt", "email": "anna@example.de",
              "Telefon": "030 1234567", "Segment": "gold"}},
    {"type": "order", "id": "SO-1", "customer": "C-1001",
     "data": {"number": "SO-1", "total": "129.90", "currency": "EUR",
              "ordered_at": "2024-03-01T10:00:00Z"}},
    {"type": "interaction", "id": "T-9", "customer": "C-1001",
     "data": {"channel": "email", "subject": "Where is my parcel?",
              "occurred_at": "2024-03-02T09:00:00Z", "department": "support"}},
]
MAPPING = {"columns": {"Vorname": "first_name", "Nachname": "last_name", "Telefon": "phone",
                       "Segment": "cf.segment"}}


@pytest.fixture
def shop(db: str) -> tuple[str, str]:
    """A source with a mapping and a webhook secret: (name, secret)."""
    with dbmod.session_scope(db) as s:
        source = create_source(s, SYSTEM, name="shop", kind="webshop", trust_rank=30,
                               mapping=MAPPING, default_country="DE")
        return source.name, mint_webhook_secret(s, SYSTEM, source)


def post(client, name: str, body: bytes, signature: str | None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[webhooks.SIGNATURE_HEADER] = signature
    return client.post(f"/hooks/{name}", content=body, headers=headers)


def records(db: str) -> int:
    with dbmod.session_scope(db, write=False) as s:
        return s.scalar(select(func.count()).select_from(SourceRecord))


def test_a_signed_delivery_lands_and_a_replay_writes_nothing(client, db, shop) -> None:
    name, secret = shop
    body = json.dumps(RECORDS).encode()
    signature = webhooks.sign(secret, body)
    r = post(client, name, body, signature)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 3, "accepted": 3, "updated": 0, "unchanged": 0,
                        "rejected": []}
    with dbmod.session_scope(db, write=False) as s:
        p = s.scalar(select(SourceProfile))
        assert (p.first_name, p.last_name, p.phone) == ("Anna", "Schmidt", "+49301234567")
        assert p.extra == {"cf.segment": "gold"}  # mapped through the source's mapping
        pending = s.scalars(select(SourceRecord.kind).where(SourceRecord.status == "pending"))
        assert sorted(pending) == ["interaction", "order"]
    # the same delivery again (a retry inside the tolerance) changes nothing
    r = post(client, name, body, signature)
    assert r.status_code == 200
    assert r.json()["unchanged"] == 3 and r.json()["accepted"] == 0
    assert records(db) == 3
    # once the person resolves, the order and the ticket follow them
    from accord.integration.resolution import resolve_pending

    with dbmod.session_scope(db) as s:
        resolve_pending(s)
    with dbmod.session_scope(db, write=False) as s:
        customer_id = s.scalar(select(SourceProfile.customer_id))
        order = s.scalar(select(Order))
        assert (order.number, str(order.total), order.customer_id) == ("SO-1", "129.90",
                                                                        customer_id)
        ticket = s.scalar(select(Interaction))
        assert (ticket.subject, ticket.channel, ticket.department) == (
            "Where is my parcel?", "email", "support")


def test_a_single_record_object_is_accepted(client, db, shop) -> None:
    name, secret = shop
    body = json.dumps(RECORDS[0]).encode()
    r = post(client, name, body, webhooks.sign(secret, body))
    assert r.status_code == 200 and r.json()["accepted"] == 1


def _tampered(secret: str, body: bytes) -> str:
    return webhooks.sign(secret, body + b" ")


@pytest.mark.parametrize("case", ["missing", "garbage", "wrong-secret", "tampered", "stale",
                                  "future", "no-v1"])
def test_bad_stale_or_missing_signatures_are_401_and_write_nothing(client, db, shop,
                                                                   case) -> None:
    name, secret = shop
    body = json.dumps(RECORDS).encode()
    now = int(time.time())
    signature: Any = {
        "missing": None,
        "garbage": "not a signature",
        "wrong-secret": webhooks.sign("whsec_someone-else", body, now),
        "tampered": _tampered(secret, body),
        "stale": webhooks.sign(secret, body, now - 600),
        "future": webhooks.sign(secret, body, now + 600),
        "no-v1": f"t={now}",
    }[case]
    r = post(client, name, body, signature)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == webhooks.SIGNATURE_HEADER
    assert records(db) == 0


def test_unknown_deactivated_or_secretless_sources_answer_the_same_401(client, db,
                                                                      shop) -> None:
    name, secret = shop
    body = json.dumps(RECORDS).encode()
    signature = webhooks.sign(secret, body)
    unknown = post(client, "nope", body, signature)
    with dbmod.session_scope(db) as s:
        create_source(s, SYSTEM, name="nosecret", kind="crm")
        s.scalar(select(Source).where(Source.name == name)).active = False
    inactive = post(client, name, body, signature)
    secretless = post(client, "nosecret", body, signature)
    for r in (unknown, inactive, secretless):
        assert r.status_code == 401
        assert r.json()["detail"] == "the signature does not match"
    assert records(db) == 0


def test_a_rotated_secret_signs_alongside_during_rotation(client, db, shop) -> None:
    name, old = shop
    with dbmod.session_scope(db) as s:
        new = mint_webhook_secret(s, SYSTEM, s.scalar(select(Source).where(Source.name == name)))
    body = json.dumps(RECORDS[:1]).encode()
    t = int(time.time())
    assert post(client, name, body, webhooks.sign(old, body, t)).status_code == 401
    both = webhooks.sign(old, body, t) + "," + webhooks.sign(new, body, t).split(",")[1]
    assert post(client, name, body, both).status_code == 200


def test_bad_records_are_reported_and_the_rest_lands(client, db, shop) -> None:
    name, secret = shop
    payload = [
        RECORDS[0],
        {"type": "refund", "id": "R1", "data": {}},
        {"type": "order", "id": "SO-2", "data": {"total": "5"}},
        {"type": "order", "id": "SO-3", "customer": "C-1001",
         "data": {"number": "SO-3", "total": "lots", "currency": "EUR"}},
        {"type": "profile", "data": {"email": "x@example.com"}},
        "nonsense",
    ]
    body = json.dumps(payload).encode()
    r = post(client, name, body, webhooks.sign(secret, body))
    assert r.status_code == 200
    assert [(x["index"], x["field"]) for x in r.json()["rejected"]] == [
        (1, "type"), (2, "customer"), (3, "order.total"), (4, "id"), (5, "record")]
    assert r.json()["accepted"] == 1
    # the profile, and the order ingestion refused (3), kept raw as rejected; what is not a
    # record of a known type, with an id and a customer (1, 2, 4, 5), is refused with the
    # delivery's format
    assert records(db) == 2


def test_malformed_json_with_a_good_signature_is_400(client, db, shop) -> None:
    name, secret = shop
    body = b'[{"type": "profile", '
    r = post(client, name, body, webhooks.sign(secret, body))
    assert r.status_code == 400 and r.json()["field"] == "body"
    assert records(db) == 0


def test_verify_is_pure_and_accepts_within_the_tolerance() -> None:
    body = b'{"a":1}'
    assert webhooks.verify("s3cret", body, webhooks.sign("s3cret", body, 1_000), now=1_299) \
        == 1_000
    with pytest.raises(Exception, match="5 minutes"):
        webhooks.verify("s3cret", body, webhooks.sign("s3cret", body, 1_000), now=1_301)
