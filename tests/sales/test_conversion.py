"""Lead conversion: customer (new or matched), account and contact, deal, history — atomically."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from accord.core.db import session_scope
from accord.models import (
    Account,
    Activity,
    AuditEntry,
    ConsentRecord,
    Contact,
    Customer,
    CustomerEmail,
    Deal,
    Interaction,
    Lead,
    LeadEngagement,
)
from accord.sales.pipelines import ensure_default_pipelines
from tests.access.helpers import assert_problem

B2B = {"first_name": "Ines", "last_name": "Okafor", "email": "ines.okafor@trailworks.example",
       "phone": "+44 20 7946 0958", "company": "Trailworks Ltd", "job_title": "Buyer",
       "industry": "Retail", "employees": 120, "country": "GB", "budget": "12000.00",
       "budget_currency": "GBP", "authority": "decision_maker", "timeline": "quarter"}


def _other(local: str) -> dict:
    """Another person at the same company (no shared phone: that would match the first)."""
    return {**{k: v for k, v in B2B.items() if k != "phone"},
            "email": f"{local}@trailworks.example"}


@pytest.fixture
def seller(make_actor, db):
    with session_scope(db) as s:
        ensure_default_pipelines(s)
    return make_actor("sales", team="north")


def _lead(client, actor, body: dict, status: str = "qualified") -> dict:
    r = client.post("/api/v1/leads", json=body, headers=actor.headers)
    assert r.status_code == 201, r.text
    lead = r.json()
    if status != "new":
        r = client.post(f"/api/v1/leads/{lead['id']}/status", json={"status": status},
                        headers={**actor.headers, "If-Match": f'"{lead["version"]}"'})
        assert r.status_code == 200, r.text
        lead = r.json()
    return lead


def _convert(client, actor, lead: dict, body: dict | None = None):
    return client.post(f"/api/v1/leads/{lead['id']}/convert", json=body or {},
                       headers={**actor.headers, "If-Match": f'"{lead["version"]}"'})


def _counts(db) -> dict[str, int]:
    with session_scope(db) as s:
        return {m.__name__: s.scalar(select(func.count()).select_from(m)) for m in
                (Customer, Account, Contact, Deal, Interaction)}


def test_b2b_lead_becomes_customer_account_contact_and_deal(client, seller, db) -> None:
    lead = _lead(client, seller, B2B)
    with session_scope(db) as s:
        s.add(LeadEngagement(lead_id=lead["id"], kind="whitepaper_download"))
        s.add(ConsentRecord(lead_id=lead["id"], purpose="newsletter", channel="email",
                            granted=True, wording="Send me news", source="form:news"))
        s.add(Activity(kind="call", subject="Intro call", status="done", lead_id=lead["id"],
                       owner_id=seller.id, team_id=seller.team_id))
    lead = client.get(f"/api/v1/leads/{lead['id']}", headers=seller.headers).json()
    r = _convert(client, seller, lead)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["customer_created"] is True
    with session_scope(db) as s:
        customer = s.get(Customer, out["customer_id"])
        assert (customer.first_name, customer.last_name) == ("Ines", "Okafor")
        assert customer.owner_id == seller.id and customer.account_id == out["account_id"]
        assert s.scalar(select(CustomerEmail.email_normalized).where(
            CustomerEmail.customer_id == customer.id)) == "ines.okafor@trailworks.example"
        account = s.get(Account, out["account_id"])
        assert account.name == "Trailworks Ltd" and account.domain == "trailworks.example"
        contact = s.get(Contact, out["contact_id"])
        assert contact.customer_id == customer.id and contact.is_primary
        deal = s.get(Deal, out["deal_id"])
        assert deal.lead_id == lead["id"] and deal.customer_id == customer.id
        assert deal.account_id == account.id and deal.contact_id == contact.id
        assert (deal.amount, deal.currency, deal.source) == (Decimal("12000.00"), "GBP", "lead")
        assert deal.owner_id == seller.id
        converted = s.get(Lead, lead["id"])
        assert converted.status == "converted" and converted.converted_by == seller.id
        assert (converted.customer_id, converted.account_id, converted.contact_id) == (
            customer.id, account.id, contact.id)
        # history carried over
        assert s.scalar(select(Activity.customer_id).where(
            Activity.lead_id == lead["id"])) == customer.id
        assert s.scalar(select(ConsentRecord.customer_id).where(
            ConsentRecord.lead_id == lead["id"])) == customer.id
        timeline = s.scalars(select(Interaction.subject).where(
            Interaction.customer_id == customer.id)).all()
        assert "Whitepaper download" in timeline
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "convert", AuditEntry.record_id == str(lead["id"]))) == 1


def test_lead_matching_a_known_customer_links_instead_of_creating(client, seller, db) -> None:
    r = client.post("/api/v1/customers", json={
        "first_name": "Ines", "last_name": "Okafor",
        "emails": [{"email": "ines@home.example", "is_primary": True}]}, headers=seller.headers)
    assert r.status_code == 201, r.text
    known = r.json()["id"]
    lead = _lead(client, seller, {"first_name": "Ines", "last_name": "Okafor",
                                  "email": "INES@home.example", "budget": "500.00",
                                  "budget_currency": "EUR"})
    before = _counts(db)
    out = _convert(client, seller, lead).json()
    assert out["customer_id"] == known and out["customer_created"] is False
    assert out["account_id"] is None and out["contact_id"] is None
    after = _counts(db)
    assert after["Customer"] == before["Customer"] and after["Deal"] == before["Deal"] + 1


def test_only_qualified_leads_convert_and_stale_versions_are_refused(client, seller) -> None:
    working = _lead(client, seller, _other("w"), status="working")
    assert_problem(_convert(client, seller, working), 409, "status")
    lead = _lead(client, seller, _other("q"))
    stale = {**lead, "version": lead["version"] - 1}
    assert _convert(client, seller, stale).status_code == 412


def test_a_failure_in_any_step_leaves_the_lead_untouched(client, seller, db) -> None:
    lead = _lead(client, seller, _other("x"))
    before = _counts(db)
    # the deal step fails (no such pipeline) after customer, account and contact were made
    r = _convert(client, seller, lead, {"pipeline_id": 999999})
    assert_problem(r, 422, "pipeline_id")
    assert _counts(db) == before
    with session_scope(db) as s:
        again = s.get(Lead, lead["id"])
        assert again.status == "qualified" and again.customer_id is None
        assert again.version == lead["version"]
    # nothing half-done is left behind: the same conversion with a valid pipeline succeeds
    assert _convert(client, seller, lead).status_code == 201


def test_conversion_needs_the_right_to_create_the_customer(client, make_actor, db) -> None:
    with session_scope(db) as s:
        ensure_default_pipelines(s)
    marketer = make_actor("marketing", team="mkt")
    lead = _lead(client, marketer, _other("m"))
    before = _counts(db)
    r = _convert(client, marketer, lead)
    assert r.status_code == 403
    assert _counts(db) == before
    with session_scope(db) as s:
        assert s.get(Lead, lead["id"]).status == "qualified"


def test_others_leads_are_not_found(client, seller, make_actor) -> None:
    lead = _lead(client, seller, _other("o"))
    outsider = make_actor("sales", team="south")
    assert _convert(client, outsider, lead).status_code == 404
