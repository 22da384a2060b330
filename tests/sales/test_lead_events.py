"""Leads from the collection API: a lead-worthy track call (through the outbox and the job
queue) creates a lead and an engagement; page views and other events do not; a replayed or
redelivered event adds nothing."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import func, select

from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.core import jobs
from accord.core.settings import reset_settings
from accord.integration.sources import create_source, mint_write_key
from accord.models import Job, OutboxEvent
from accord.models.sales import Lead, LeadEngagement
from accord.sales import lead_events


@pytest.fixture
def key(db) -> str:
    with dbmod.session_scope(db) as s:
        source = create_source(s, SYSTEM, name="web", kind="tracking", trust_rank=60)
        return mint_write_key(s, SYSTEM, source)


def send(client, key: str, call: str, body: dict) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    r = client.post(f"/v1/{call}", json=body, headers=auth)
    assert r.status_code == 200, r.text


def drain(db) -> None:
    """Relay the outbox and run every ready job (the worker, in-line)."""
    with dbmod.session_scope(db) as s:
        jobs.relay_outbox(s)
    while jobs.run_one(db):
        pass


def counts(db) -> tuple[int, int]:
    with dbmod.session_scope(db, write=False) as s:
        return (s.scalar(select(func.count()).select_from(Lead)),
                s.scalar(select(func.count()).select_from(LeadEngagement)))


SIGNUP = {"userId": "u-1", "messageId": "m-1", "event": "Newsletter Signed Up",
          "properties": {"list": "monthly"},
          "context": {"traits": {"email": "Reader@Example.com", "name": "Rita Reader",
                                 "company": {"name": "Readers Ltd"}}}}


def test_page_view_makes_no_lead(db, client, key):
    send(client, key, "page", {"userId": "u-1", "messageId": "p-1", "name": "Pricing",
                               "context": {"traits": {"email": "reader@example.com"}}})
    drain(db)
    assert counts(db) == (0, 0)
    with dbmod.session_scope(db, write=False) as s:
        assert s.scalar(select(func.count()).select_from(OutboxEvent)
                        .where(OutboxEvent.type == "collection.tracked")) == 0


def test_newsletter_signup_makes_a_lead_and_replay_adds_nothing(db, client, key):
    send(client, key, "track", SIGNUP)
    drain(db)
    assert counts(db) == (1, 1)
    with dbmod.session_scope(db, write=False) as s:
        lead = s.scalars(select(Lead)).one()
        assert (lead.source, lead.email_normalized, lead.first_name, lead.last_name,
                lead.company) == ("event", "reader@example.com", "Rita", "Reader", "Readers Ltd")
        engagement = s.scalars(select(LeadEngagement)).one()
        assert engagement.kind == "newsletter_signed_up"
        assert engagement.detail["message_id"] == "m-1"
    # the library retries the same message: collection drops it, nothing new reaches sales
    send(client, key, "track", SIGNUP)
    drain(db)
    assert counts(db) == (1, 1)
    # the same person downloads a whitepaper: same lead, a second engagement
    send(client, key, "track", {**SIGNUP, "messageId": "m-2", "event": "Whitepaper Downloaded",
                                "context": {}, "properties": {"email": "reader@example.com"}})
    drain(db)
    assert counts(db) == (1, 2)


def test_redelivered_event_is_deduplicated_on_the_message_id(db, client, key):
    send(client, key, "track", SIGNUP)
    with dbmod.session_scope(db) as s:
        jobs.relay_outbox(s)
        job = s.scalars(select(Job).where(Job.kind == lead_events.JOB)).one()
        payload = dict(job.payload)
    drain(db)
    with dbmod.session_scope(db) as s:  # at-least-once: the handler runs twice
        lead_events.handle_tracked(s, payload)
    assert counts(db) == (1, 1)


def test_other_events_and_anonymous_visitors_make_no_lead(db, client, key, monkeypatch):
    send(client, key, "track", {**SIGNUP, "messageId": "o-1", "event": "Item Purchased"})
    send(client, key, "track", {"anonymousId": "a-1", "messageId": "o-2",
                                "event": "Demo Requested"})  # nobody to follow up
    drain(db)
    assert counts(db) == (0, 0)
    # the allow-list is configurable
    monkeypatch.setenv("ACCORD_SALES_LEAD_EVENTS", "Item Purchased, Trial Started")
    reset_settings()
    assert "item purchased" in lead_events.lead_events()
    send(client, key, "track", {**SIGNUP, "messageId": "o-3", "event": "item purchased"})
    drain(db)
    assert counts(db) == (1, 1)


def test_an_e_mail_user_id_is_enough(db, client, key):
    send(client, key, "track", {"userId": "pat@example.com", "messageId": "e-1",
                                "event": "Trial Started",
                                "context": {"traits": {"phone": "not a phone"}}})
    drain(db)
    with dbmod.session_scope(db, write=False) as s:
        lead = s.scalars(select(Lead)).one()
        assert lead.email == "pat@example.com" and lead.phone is None
