"""Matching on arrival: a person already known as a lead is updated (blanks filled, engagement
added), by e-mail and then by phone; a known customer is linked; mark_first_touch."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.core.clock import as_utc, utcnow
from accord.models import OutboxEvent
from accord.models.sales import Lead, LeadEngagement
from accord.sales import leads
from tests.access.helpers import seed_customer


def capture(db, key: str, **values) -> leads.Captured:
    with dbmod.session_scope(db) as s:
        got = leads.capture(s, SYSTEM, values, source="form", source_detail="demo",
                            kind="form_submitted", detail={}, dedupe_key=key)
        if got.lead is not None:
            s.expunge(got.lead)
        return got


def counts(db) -> tuple[int, int]:
    with dbmod.session_scope(db, write=False) as s:
        return (s.scalar(select(func.count()).select_from(Lead)),
                s.scalar(select(func.count()).select_from(LeadEngagement)))


def test_known_lead_by_email_is_updated_not_duplicated(db):
    first = capture(db, "k1", email="ada@example.com", first_name="Ada", company="")
    assert first.created
    again = capture(db, "k2", email=" ADA@example.com", first_name="Augusta",
                    company="Analytical Engines", job_title="Countess")
    assert not again.created and not again.duplicate and again.lead.id == first.lead.id
    assert counts(db) == (1, 2)
    with dbmod.session_scope(db, write=False) as s:
        lead = s.get(Lead, first.lead.id)
        # blanks are filled, known values are never overwritten
        assert lead.first_name == "Ada" and lead.company == "Analytical Engines"
        assert lead.job_title == "Countess"
        assert [e.type for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
                if e.type.startswith("lead.")] == ["lead.created", "lead.engaged"]


def test_known_lead_by_phone(db):
    first = capture(db, "p1", phone="+44 20 7946 0958", last_name="Byron")
    again = capture(db, "p2", phone="020 7946 0958", email="byron@example.com")
    assert again.lead.id == first.lead.id and counts(db) == (1, 2)
    with dbmod.session_scope(db, write=False) as s:
        assert s.get(Lead, first.lead.id).email_normalized == "byron@example.com"


def test_same_dedupe_key_is_a_duplicate(db):
    capture(db, "same", email="x@example.com")
    again = capture(db, "same", email="x@example.com", company="Other")
    assert again.duplicate and counts(db) == (1, 1)
    with dbmod.session_scope(db, write=False) as s:
        assert s.scalars(select(Lead)).one().company is None


def test_converted_leads_do_not_match_but_their_customer_does(db, make_actor):
    owner = make_actor("admin", team="alpha")
    customer = seed_customer(db, owner.id, owner.team_id, emails=[{"email": "cust@example.com"}],
                             phones=[{"phone": "+44 20 7946 0000"}])
    by_email = capture(db, "c1", email="Cust@Example.com", last_name="Customer")
    assert by_email.created and by_email.lead.customer_id == customer
    with dbmod.session_scope(db) as s:
        s.get(Lead, by_email.lead.id).status = "converted"
    by_phone = capture(db, "c2", phone="+442079460000", last_name="Customer")
    assert by_phone.created and by_phone.lead.id != by_email.lead.id
    assert by_phone.lead.customer_id == customer
    stranger = capture(db, "c3", email="new@example.com")
    assert stranger.lead.customer_id is None


def test_merged_customer_links_to_the_survivor(db, make_actor):
    from sqlalchemy import update

    from accord.models import Customer

    owner = make_actor("admin", team="alpha")
    survivor = seed_customer(db, owner.id, owner.team_id)
    merged = seed_customer(db, owner.id, owner.team_id, emails=[{"email": "old@example.com"}])
    with dbmod.session_scope(db) as s:
        s.execute(update(Customer).where(Customer.id == merged).values(merged_into_id=survivor))
    assert capture(db, "m1", email="old@example.com").lead.customer_id == survivor


def test_mark_first_touch(db):
    lead_id = capture(db, "t1", email="touch@example.com").lead.id
    at = utcnow() - timedelta(minutes=5)
    with dbmod.session_scope(db) as s:
        lead = s.get(Lead, lead_id)
        assert leads.mark_first_touch(s, lead, at) is True
    with dbmod.session_scope(db) as s:
        lead = s.get(Lead, lead_id)
        assert lead.status == "working" and as_utc(lead.first_touched_at) == at
        assert leads.sla_of(lead).state == "met"
        # only once: a later touch changes nothing
        assert leads.mark_first_touch(s, lead, utcnow()) is False
        assert as_utc(lead.first_touched_at) == at
