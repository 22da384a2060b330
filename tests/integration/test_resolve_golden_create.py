"""Golden customers built in one pass (`golden.create`, the batch's path for new people) are
exactly what creating each customer blank and rebuilding it gives (the path existing customers
and every other caller take)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from accord.access.policy import SYSTEM
from accord.core.clock import utcnow
from accord.core.db import session_factory
from accord.integration import golden
from accord.integration.ingest import Incoming, ingest_batch
from accord.integration.sources import create_source
from accord.models import (
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    GoldenLineage,
    SourceProfile,
)

PEOPLE = [
    # one person in three sources, with conflicting values and two e-mails
    [("crm", {"first_name": "Anna", "last_name": "Müller", "email": "anna@example.de",
              "phone": "+4917012345678", "date_of_birth": "1980-02-03", "title": "Dr.",
              "address_line1": "Hauptstr. 1", "postcode": "10115", "city": "Berlin",
              "country": "DE"}),
     ("shop", {"first_name": "Anne", "last_name": "Mueller", "email": "a.mueller@example.de",
               "phone": "+4917012345678", "address_line1": "Gartenweg 2", "postcode": "20095",
               "city": "Hamburg", "country": "DE"}),
     ("desk", {"first_name": "Anna", "last_name": "Müller", "language": "de"})],
    # one profile with everything
    [("shop", {"first_name": "Ben", "last_name": "Koch", "email": "ben@example.de",
               "phone": "+4917087654321", "address_line1": "Lindenallee 9", "postcode": "80331",
               "city": "München", "country": "DE", "gender": "male"})],
    # a profile with nothing but a surname
    [("desk", {"last_name": "Weber"})],
    # two profiles without an address
    [("crm", {"first_name": "Clara", "last_name": "Fischer", "email": "clara@example.de"}),
     ("desk", {"first_name": "Clara", "last_name": "Fischer", "phone": "+4917011111111"})],
]


def _profiles(s: Session) -> list[list[int]]:
    sources = {name: create_source(s, SYSTEM, name=name, kind="crm", trust_rank=rank)
               for name, rank in (("crm", 10), ("shop", 20), ("desk", 30))}
    clusters = []
    for n, person in enumerate(PEOPLE):
        ids = []
        for k, (source, values) in enumerate(person):
            external = f"P{n}-{k}"
            ingest_batch(s, SYSTEM, sources[source],
                         [Incoming("profile", dict(values), dict(values), external)])
            ids.append(s.scalar(select(SourceProfile.id).where(
                SourceProfile.source_id == sources[source].id,
                SourceProfile.external_id == external)))
        clusters.append(ids)
    return clusters


def _link(s: Session, clusters: list[list[int]], customer_ids: list[int]) -> None:
    for members, customer_id in zip(clusters, customer_ids, strict=True):
        s.execute(update(SourceProfile).where(SourceProfile.id.in_(members))
                  .values(customer_id=customer_id))


def _state(s: Session, customer_ids: list[int]) -> list[Any]:
    """Each customer's golden columns, contact points and lineage, ids replaced by position."""
    c = Customer.__table__
    columns = [c.c[n] for n in ("title", "first_name", "last_name", "display_name", "name_key",
                                "name_key_alt", "gender", "date_of_birth", "national_id",
                                "country", "preferred_language", "lifecycle_stage", "version")]
    out = []
    for customer_id in customer_ids:
        row = s.execute(select(*columns).where(c.c.id == customer_id)).one()
        emails = s.execute(select(CustomerEmail.email, CustomerEmail.is_primary).where(
            CustomerEmail.customer_id == customer_id).order_by(CustomerEmail.id)).all()
        phones = s.execute(select(CustomerPhone.e164, CustomerPhone.is_primary).where(
            CustomerPhone.customer_id == customer_id).order_by(CustomerPhone.id)).all()
        addresses = s.execute(select(
            CustomerAddress.line1, CustomerAddress.city, CustomerAddress.postcode,
            CustomerAddress.country, CustomerAddress.is_primary).where(
            CustomerAddress.customer_id == customer_id).order_by(CustomerAddress.id)).all()
        lineage = s.execute(select(GoldenLineage.source_profile_id,
                                   GoldenLineage.source_record_id, GoldenLineage.fields)
                            .where(GoldenLineage.customer_id == customer_id)
                            .order_by(GoldenLineage.source_profile_id)).all()
        out.append((tuple(row), [tuple(e) for e in emails], [tuple(p) for p in phones],
                    [tuple(a) for a in addresses], [tuple(x) for x in lineage]))
    return out


def test_create_matches_a_blank_customer_rebuilt(db: str) -> None:
    s = session_factory(db)()
    try:
        clusters = _profiles(s)
        s.commit()
        now = utcnow()

        # the one-pass path
        created = golden.create(
            s, clusters, now, lambda rows: list(s.scalars(
                insert(Customer.__table__).returning(Customer.__table__.c.id,
                                                     sort_by_parameter_order=True), rows)),
            chunk=3)  # more than one chunk
        _link(s, clusters, created)
        one_pass = _state(s, created)
        s.rollback()

        # blank customers, linked, then rebuilt
        blank = [s.scalar(insert(Customer).returning(Customer.id).values(
            display_name="", name_key="", name_key_alt="", first_name="", last_name="",
            lifecycle_stage="awareness", created_at=now, updated_at=now, version=1))
            for _ in clusters]
        _link(s, clusters, blank)
        golden.rebuild(s, blank)
        rebuilt = _state(s, blank)
        s.rollback()
    finally:
        s.close()

    assert one_pass == rebuilt
    anna = one_pass[0]
    assert anna[0][1:3] == ("Anna", "Müller")  # the most trusted source's values
    assert [e for e, primary in anna[1] if primary] == ["anna@example.de"]
    assert len(anna[1]) == 2 and len(anna[3]) == 2  # contact points are additive
    assert {fields.get("first_name") for _, _, fields in anna[4]} == {"most_trusted", None}
    assert one_pass[2][1:4] == ([], [], [])  # a surname alone makes no contact point


def _indexes(s: Session, table: str) -> list[tuple[str, str]]:
    if s.get_bind().dialect.name == "sqlite":
        query = ("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t "
                 "AND sql IS NOT NULL ORDER BY name")
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t ORDER BY 1"
    return [tuple(row) for row in s.execute(text(query), {"t": table})]


def test_bulk_indexes_rebuilds_sqlite_indexes_as_they_were(db: str) -> None:
    s = session_factory(db)()
    try:
        before = _indexes(s, "customers")
        assert before
        sqlite = s.get_bind().dialect.name == "sqlite"
        with golden.bulk_indexes(s, "customers", 10, minimum=1):
            # dropped for the bulk write on SQLite; PostgreSQL keeps its indexes
            assert _indexes(s, "customers") == ([] if sqlite else before)
            s.execute(insert(Customer.__table__), [
                {"display_name": f"P {i}", "name_key": f"p {i}", "name_key_alt": f"{i} p",
                 "first_name": "P", "last_name": str(i), "lifecycle_stage": "awareness",
                 "version": 1} for i in range(10)])
        assert _indexes(s, "customers") == before
        # a small write keeps the indexes
        with golden.bulk_indexes(s, "customers", 100):
            assert _indexes(s, "customers") == before
        # fewer new rows than the table holds: the indexes stay
        with golden.bulk_indexes(s, "customers", 5, minimum=1):
            assert _indexes(s, "customers") == before
        # only the indexes on the given column
        with golden.bulk_indexes(s, "source_profiles", 1, column="customer_id", minimum=1):
            left = {name for name, _ in _indexes(s, "source_profiles")}
            assert ("ix_source_profiles_customer_id" in left) is not sqlite
            assert "ix_source_profiles_email" in left
        s.rollback()
        with pytest.raises(RuntimeError), golden.bulk_indexes(s, "customers", 1, minimum=1):
            raise RuntimeError
        s.rollback()
        assert _indexes(s, "customers") == before
    finally:
        s.close()
