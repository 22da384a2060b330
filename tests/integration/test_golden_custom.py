"""Custom fields from sources: a `cf.<key>` value of a linked profile fills the customer's
custom field of that key (when an admin defined one), by survivorship, with lineage; a value
entered by hand stays."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from accord.access.policy import SYSTEM
from accord.customers import custom_fields
from accord.integration.ingest import Incoming, ingest_batch
from accord.integration.resolution import resolve_pending
from accord.integration.sources import create_source
from accord.integration.stewardship import customer_sources
from accord.models import Customer, CustomFieldDefinition, GoldenLineage, SourceProfile


@pytest.fixture
def world(session):
    billing = create_source(session, SYSTEM, name="billing", kind="billing", trust_rank=10,
                            default_country="DE")
    shop = create_source(session, SYSTEM, name="webshop", kind="webshop", trust_rank=30,
                         default_country="DE")
    for key, kind, choices in (("loyalty_tier", "choice", ["gold", "silver", "bronze"]),
                               ("score", "number", []), ("member_since", "date", []),
                               ("note", "text", [])):
        session.add(CustomFieldDefinition(entity="customer", key=key, label=key.title(),
                                          type=kind, choices=choices))
    session.commit()
    return billing, shop


def person(ext: str, **custom: str) -> Incoming:
    fields = {"first_name": "Uta", "last_name": "Kern", "email": "uta@example.de",
              **{f"cf.{k}": v for k, v in custom.items()}}
    return Incoming("profile", {"id": ext, **fields}, fields, ext)


def values(session, customer_id: int) -> dict[str, object]:
    got = custom_fields.values_for(session, SYSTEM, [customer_id])[customer_id]
    session.commit()
    return got


def test_sources_fill_the_customers_custom_fields_with_lineage(session, world) -> None:
    billing, shop = world
    ingest_batch(session, SYSTEM, billing, [person("B1", loyalty_tier="Gold",
                                                   score="1.234,5")])
    ingest_batch(session, SYSTEM, shop, [person("S1", loyalty_tier="silver",
                                                member_since="05/01/2020",
                                                note="likes the newsletter")])
    resolve_pending(session)
    session.commit()
    customer = session.scalar(select(Customer))
    assert values(session, customer.id) == {
        "loyalty_tier": "gold",  # the more trusted source; the choice matched whatever its case
        "score": 1234.5, "member_since": date(2020, 1, 5), "note": "likes the newsletter"}
    b1 = session.scalar(select(SourceProfile).where(SourceProfile.external_id == "B1"))
    lineage = session.scalar(select(GoldenLineage.fields)
                             .where(GoldenLineage.source_profile_id == b1.id))
    assert lineage["cf.loyalty_tier"] == "most_trusted" and "cf.member_since" not in lineage
    view = customer_sources(session, SYSTEM, customer.id)
    supplied = {f["field"]: f["value"] for s in view["sources"] for f in s["supplied"]}
    assert supplied["cf.loyalty_tier"] == "Gold" and supplied["cf.member_since"] == "05/01/2020"

    # the trusted source changes its mind: the customer follows
    ingest_batch(session, SYSTEM, billing, [person("B1", loyalty_tier="bronze",
                                                   score="1.234,5")])
    resolve_pending(session, SYSTEM, [b1.id])  # what the match job the change queued does
    session.commit()
    assert values(session, customer.id)["loyalty_tier"] == "bronze"


def test_a_value_entered_by_hand_stays_and_a_bad_one_is_not_taken(session, world) -> None:
    billing, shop = world
    ingest_batch(session, SYSTEM, billing, [person("B1", loyalty_tier="platinum")])
    resolve_pending(session)
    session.commit()
    customer = session.scalar(select(Customer))
    assert values(session, customer.id) == {}  # not one of the choices: not taken
    custom_fields.set_values(session, SYSTEM, customer, {"note": "VIP, call first"},
                             creating=False)
    session.commit()
    ingest_batch(session, SYSTEM, shop, [person("S1", note="from the shop", score="7")])
    resolve_pending(session)
    session.commit()
    got = values(session, customer.id)
    assert got["note"] == "VIP, call first" and got["score"] == 7
    assert isinstance(got["score"], int) and Decimal(got["score"]) == 7
