"""Realistic data for the web UI tests, created through the service functions (the write path)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from accord.access import service as access
from accord.access.policy import SYSTEM, Principal
from accord.access.schemas import TeamIn, UserCreate
from accord.customers import custom_fields
from accord.customers import service as customers
from accord.customers.schemas import CustomerCreate, CustomerUpdate, CustomFieldIn
from accord.models import Customer, Team

PASSWORD = "correct horse battery"
DOB = date(1906, 12, 9)


def csrf_of(html: str) -> str:
    """The session's CSRF token from a page's meta tag."""
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "page has no CSRF meta tag"
    return found.group(1)


def login_token_of(html: str) -> str:
    found = re.search(r'name="login_token" value="([^"]+)"', html)
    assert found, "login page has no login token"
    return found.group(1)


def make_user(session: Session, role: str, email: str, name: str, *, team: str | None = None,
              locale: str = "en_GB") -> Principal:
    team_id = None
    if team:
        found = session.query(Team).filter_by(name=team).one_or_none()
        team_id = (found or access.create_team(session, SYSTEM, TeamIn(name=team))).id
    user = access.create_user(session, SYSTEM, UserCreate(
        email=email, full_name=name, password=PASSWORD, role=role, team_id=team_id, locale=locale))
    return access.principal_for(user)


def make_customer(session: Session, principal: Principal, **fields: Any) -> Customer:
    return customers.create_customer(session, principal, CustomerCreate(**fields))


@dataclass
class Seeded:
    grace_id: int
    xss_id: int
    emails: dict[str, str]


def seed_showcase(session: Session) -> Seeded:
    """Users for several roles and a handful of customers with a full 360° picture."""
    from accord.commerce import service as commerce
    from accord.commerce.schemas import OrderFields
    from accord.interactions import service as interactions
    from accord.interactions.schemas import InteractionFields

    emails = {"admin": "admin@example.com", "support": "support@example.com",
              "privacy_officer": "privacy@example.com", "manager": "manager@example.com"}
    admin = make_user(session, "admin", emails["admin"], "Alex Admin", team="EMEA")
    make_user(session, "support", emails["support"], "Sam Support", team="EMEA")
    make_user(session, "privacy_officer", emails["privacy_officer"], "Pat Privacy")
    make_user(session, "manager", emails["manager"], "Morgan Manager", team="EMEA",
              locale="de_DE")
    custom_fields.create_field(session, admin, CustomFieldIn(
        key="segment", label="Segment", type="choice", choices=["Retail", "SMB", "Enterprise"]))
    custom_fields.create_field(session, admin, CustomFieldIn(
        key="nps", label="Last NPS score", type="number"))

    grace = make_customer(
        session, admin, title="Rear Adm.", first_name="Grace", last_name="Hopper",
        emails=[{"email": "grace.hopper@example.com", "kind": "work", "is_primary": True,
                 "verified": True}, {"email": "grace@home.example.org"}],
        phones=[{"phone": "+1 202 555 0147", "kind": "mobile"}],
        addresses=[{"kind": "home", "line1": "1 Navy Yard", "city": "Arlington", "region": "VA",
                    "postcode": "22202", "country": "US", "is_primary": True}],
        country="US", date_of_birth=DOB, national_id="US-123-45-6789",
        notes="Prefers calls before 10:00. Asked about the COBOL migration programme.",
        lifecycle_stage="evaluation", value_tier="gold", preferred_channel="email",
        preferred_language="en", custom={"segment": "Enterprise", "nps": 9})
    for stage, reason in (("intent", "asked for a quote"), ("purchase", "first order"),
                          ("loyalty", "third order within a year")):
        customers.update_customer(session, admin, grace,
                                  CustomerUpdate(lifecycle_stage=stage, stage_reason=reason))
    grace.lifetime_value = Decimal("12840.50")  # written back by analytics in production
    now = datetime.now(UTC)
    steps: list[tuple[str, str, str, str, str, int]] = [
        ("email", "inbound", "support", "Invoice question",
         "Could you resend the March invoice with our new VAT number?", 2),
        ("phone", "outbound", "sales", "Renewal call",
         "Walked through the enterprise tier; follow-up demo booked.", 5),
        ("chat", "inbound", "service", "Delivery status", "Where is order 1042?", 9),
        ("web", "inbound", "marketing", "Downloaded the migration guide", "", 14),
        ("sms", "outbound", "marketing", "Spring offer", "20% off training courses.", 21),
    ]
    for channel, direction, department, subject, body, days in steps:
        interactions.create_interaction(session, admin, grace.id, InteractionFields(
            channel=channel, direction=direction, department=department, subject=subject,
            body=body, occurred_at=now - timedelta(days=days, hours=3)))
    for days, amount, channel, status in ((3, "1499.00", "web", "paid"),
                                          (40, "349.90", "store", "delivered")):
        commerce.create_order(session, admin, grace.id, OrderFields(
            currency="EUR", status=status, channel=channel,
            ordered_at=now - timedelta(days=days),
            lines=[{"description": "Training seat", "quantity": 1, "unit_price": amount}]))

    others = [("Ada", "Lovelace", "GB", "purchase", "platinum", "ada@example.com"),
              ("Alan", "Turing", "GB", "discovery", "silver", "alan@example.com"),
              ("Katherine", "Johnson", "US", "intent", None, "katherine@example.com"),
              ("Hedy", "Lamarr", "AT", "churned", "bronze", "hedy@example.com")]
    for first, last, country, stage, tier, email in others:
        make_customer(session, admin, first_name=first, last_name=last, country=country,
                      lifecycle_stage=stage, value_tier=tier, emails=[{"email": email}])
    xss = make_customer(session, admin, first_name="<script>alert(1)</script>",
                        last_name="<img src=x onerror=alert(2)>")
    session.flush()
    return Seeded(grace_id=grace.id, xss_id=xss.id, emails=emails)
