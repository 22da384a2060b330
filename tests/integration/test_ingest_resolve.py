"""The ingestion write path and incremental identity resolution, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from accord.access.policy import SYSTEM
from accord.core import jobs
from accord.integration import golden
from accord.integration.ingest import Incoming, ingest_batch
from accord.integration.resolution import resolve_pending
from accord.integration.sources import create_source
from accord.models import (
    Customer,
    CustomerEmail,
    GoldenLineage,
    Interaction,
    MatchReview,
    Order,
    SourceProfile,
    SourceRecord,
)


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def sources(session):
    billing = create_source(session, SYSTEM, name="billing", kind="billing", trust_rank=10,
                            default_country="DE")
    shop = create_source(session, SYSTEM, name="webshop", kind="webshop", trust_rank=30,
                         default_country="DE")
    session.commit()
    return billing, shop


def profile(ext: str, line: int | None = None, **fields) -> Incoming:
    return Incoming("profile", {"id": ext, **fields}, dict(fields), ext, line)


def test_replay_is_unchanged_and_a_change_is_an_update(session, sources) -> None:
    billing, _ = sources
    first = ingest_batch(session, SYSTEM, billing,
                         [profile("B1", 2, first_name="ANNA", last_name="SCHMIDT",
                                  email="Anna.Schmidt@Example.com", phone="030 1234567")])
    session.commit()
    assert [o.status for o in first] == ["accepted"]
    again = ingest_batch(session, SYSTEM, billing,
                         [profile("B1", 2, first_name="ANNA", last_name="SCHMIDT",
                                  email="Anna.Schmidt@Example.com", phone="030 1234567")])
    session.commit()
    assert [o.status for o in again] == ["unchanged"]
    assert _count(session, SourceRecord) == 1
    changed = ingest_batch(session, SYSTEM, billing,
                           [profile("B1", 2, first_name="ANNA", last_name="SCHMIDT-MEYER",
                                    email="Anna.Schmidt@Example.com")])
    session.commit()
    assert [o.status for o in changed] == ["updated"]
    assert _count(session, SourceRecord) == 2  # raw is append-only: both versions kept
    p = session.scalar(select(SourceProfile))
    assert (p.first_name, p.last_name, p.email) == ("Anna", "Schmidt-Meyer",
                                                    "anna.schmidt@example.com")
    assert p.phone is None  # the latest version has no phone
    assert p.version == 2


def test_invalid_values_are_flagged_and_kept_raw_bad_rows_rejected(session, sources) -> None:
    billing, _ = sources
    out = ingest_batch(session, SYSTEM, billing, [
        profile("B1", 2, first_name="Jonas", last_name="Weber", phone="12", email="not-an-email"),
        profile("B2", 3, phone="nope", email="also bad"),
        profile("B3", 4, first_name="Lena", last_name="Koch", email="lena@example.de"),
        profile("B3", 5, first_name="Lena", last_name="Koch", email="lena@example.de"),
    ])
    session.commit()
    assert [o.status for o in out] == ["accepted", "rejected", "accepted", "unchanged"]
    assert out[1].line_no == 3 and "no usable name" in (out[1].reason or "")
    assert set(out[0].flags) == {"phone", "email"}
    jonas = session.scalar(select(SourceProfile).where(SourceProfile.external_id == "B1"))
    assert jonas.phone is None and jonas.email is None and set(jonas.flags) == {"phone", "email"}
    raw = session.scalar(select(SourceRecord).where(SourceRecord.external_id == "B1"))
    assert raw.payload["phone"] == "12" and raw.payload["email"] == "not-an-email"
    # the rejected record is kept raw too, with why; the replay wrote nothing
    assert _count(session, SourceRecord) == 3
    kept = session.scalar(select(SourceRecord).where(SourceRecord.external_id == "B2"))
    assert kept.status == "rejected" and kept.payload["phone"] == "nope"
    assert kept.reason is not None and "no usable name" in kept.reason
    assert kept.content_hash.startswith("r:") and kept.line_no == 3
    # sent again: rejected again, nothing added; a fixed version lands as a record of its own
    again = ingest_batch(session, SYSTEM, billing, [profile("B2", 3, phone="nope",
                                                            email="also bad")])
    fixed = ingest_batch(session, SYSTEM, billing, [profile("B2", 3, first_name="Ina",
                                                            email="ina@example.de")])
    session.commit()
    assert [o.status for o in again + fixed] == ["rejected", "accepted"]
    assert _count(session, SourceRecord) == 4
    assert session.scalar(select(SourceProfile.first_name)
                          .where(SourceProfile.external_id == "B2")) == "Ina"


def test_profiles_across_sources_resolve_into_one_golden_customer(session, sources) -> None:
    billing, shop = sources
    ingest_batch(session, SYSTEM, billing, [
        profile("B1", first_name="MARIA", last_name="MÜLLER", email="maria.mueller@example.de",
                date_of_birth="1984-03-05", phone="+49 30 1234567"),
    ])
    ingest_batch(session, SYSTEM, shop, [
        profile("S9", first_name="Mia", last_name="Müller", email="MARIA.MUELLER@example.de",
                address_line1="Hauptstr. 5", city="Berlin", postcode="10115"),
        profile("S10", first_name="Paul", last_name="Becker", email="paul@example.de"),
    ])
    result = resolve_pending(session)
    session.commit()
    assert result.profiles == 3 and result.new_customers == 2
    maria = session.scalar(select(Customer).where(Customer.last_name == "Müller"))
    linked = session.scalars(select(SourceProfile.external_id)
                             .where(SourceProfile.customer_id == maria.id)).all()
    assert sorted(linked) == ["B1", "S9"]
    # most trusted (billing, rank 10) wins the name; the address only the shop knows
    assert maria.first_name == "Maria" and maria.date_of_birth == date(1984, 3, 5)
    assert [a.city for a in maria.addresses] == ["Berlin"]
    assert [e.email_normalized for e in maria.emails] == ["maria.mueller@example.de"]
    rows = {r["external_id"]: r for r in golden.lineage(session, maria.id)}
    assert rows["B1"]["supplied"]["first_name"] == "most_trusted"
    assert "first_name" not in rows["S9"]["supplied"]
    assert rows["S9"]["supplied"]["address"] == "most_recent"
    assert set(rows["S9"]["supplied"]) >= {"email", "last_name"}  # agreeing sources are credited
    assert rows["S9"]["link_method"] == "rule" and rows["S9"]["evidence"]["rule"]
    # every golden field with a value has lineage
    credited = {f for r in rows.values() for f in r["supplied"]}
    assert {"first_name", "last_name", "date_of_birth", "email", "phone", "address"} <= credited


def test_ambiguous_pairs_go_to_review_not_linked(session, sources) -> None:
    billing, shop = sources
    ingest_batch(session, SYSTEM, billing, [
        profile("B1", first_name="Tom", last_name="Fischer", email="family@example.de")])
    ingest_batch(session, SYSTEM, shop, [
        profile("S1", first_name="Eva", last_name="Wagner", email="family@example.de")])
    resolve_pending(session)
    session.commit()
    assert _count(session, Customer) == 2
    review = session.scalar(select(MatchReview))
    assert review.status == "pending" and 0.6 <= review.match_probability < 0.95
    assert {f["field"] for f in review.fields} >= {"first_name", "email"}


@pytest.mark.parametrize("shared", [{"email": "whites@example.co.uk"}, {"phone": "030 1234567"}])
def test_a_household_sharing_an_email_or_landline_goes_to_review(session, sources,
                                                                 shared) -> None:
    """Same surname and e-mail (a default deterministic rule) or phone, but their own birth
    dates and first names: two people until a steward says otherwise."""
    billing, shop = sources
    ingest_batch(session, SYSTEM, billing, [profile(
        "B1", first_name="Natasha", last_name="White", date_of_birth="1988-02-11", **shared)])
    ingest_batch(session, SYSTEM, shop, [profile(
        "S1", first_name="Mary", last_name="White", date_of_birth="1960-07-30", **shared)])
    resolve_pending(session)
    session.commit()
    assert _count(session, Customer) == 2
    review = session.scalar(select(MatchReview))
    assert review.status == "pending" and 0.6 <= review.match_probability < 0.95


def test_contradicting_records_break_a_rule_only_when_they_contradict() -> None:
    import pandas as pd

    from accord.integration.resolution import contradiction, rule_pairs

    assert contradiction("1988-02-11", "1960-07-30", "Natasha", "Mary")
    assert contradiction(None, None, "Natasha", "Mary") == "different first names"
    assert contradiction("1988-02-11", None, "Bob", "Bert") is None  # one side unknown
    assert contradiction(pd.NA, "1960-07-30", "Émile", "emile") is None
    frame = pd.DataFrame({
        "unique_id": [1, 2, 3, 4], "email": ["h@x.org"] * 4, "national_id": [None] * 4,
        "last_name_key": ["white"] * 4, "first_name": ["Natasha", "Mary", "Natasha", None],
        "date_of_birth": ["1988-02-11", "1960-07-30", "1988-02-11", None],
        "phone": [None] * 4, "postcode": [None] * 4})
    pairs = {(p.left, p.right) for p in rule_pairs(frame, frame["unique_id"] > 0)}
    assert pairs == {(1, 3), (1, 4), (2, 4), (3, 4)}  # never Mary with Natasha


def test_new_profile_links_to_a_customer_entered_by_hand(session, sources) -> None:
    _, shop = sources
    customer = Customer(first_name="Ida", last_name="Brandt", display_name="Ida Brandt",
                        name_key="brandt ida", name_key_alt="ida brandt", notes="VIP")
    customer.emails.append(CustomerEmail(email="ida@example.de", email_normalized="ida@example.de",
                                         is_primary=True))
    session.add(customer)
    session.commit()
    ingest_batch(session, SYSTEM, shop, [
        profile("S5", first_name="IDA", last_name="BRANDT", email="ida@example.de",
                phone="0170 1234567")])
    result = resolve_pending(session)
    session.commit()
    assert result.new_customers == 0
    assert _count(session, Customer) == 1
    session.refresh(customer)
    assert customer.notes == "VIP" and [p.e164 for p in customer.phones] == ["+491701234567"]
    sources_seen = {r["source"] for r in golden.lineage(session, customer.id)}
    assert sources_seen == {"accord", "webshop"}


def test_orders_and_events_wait_for_their_customer(session, sources) -> None:
    billing, _ = sources
    out = ingest_batch(session, SYSTEM, billing, [
        Incoming("order", {"no": "INV-1"}, {"order.number": "INV-1", "order.total": "19.90",
                                             "order.currency": "eur",
                                             "order.ordered_at": "2026-10-01T10:00:00Z"},
                 "INV-1", 2, "B7"),
        Incoming("interaction", {"t": "call"}, {"interaction.channel": "phone",
                                                 "interaction.subject": "Called about invoice"},
                 "C-1", 3, "B7"),
        Incoming("order", {"no": "INV-2"}, {"order.number": "INV-2", "order.total": "abc",
                                             "order.currency": "EUR"}, "INV-2", 4, "B7"),
    ])
    session.commit()
    assert [o.status for o in out] == ["accepted", "accepted", "rejected"]
    assert out[2].field == "order.total"
    assert _count(session, Order) == 0
    assert session.scalars(select(SourceRecord.status).where(SourceRecord.kind != "profile")
                           .order_by(SourceRecord.id)).all() == ["pending", "pending", "rejected"]
    ingest_batch(session, SYSTEM, billing, [profile("B7", first_name="Olaf", last_name="Kern",
                                                    email="olaf@example.de")])
    result = resolve_pending(session)
    session.commit()
    assert result.applied == 2
    order = session.scalar(select(Order))
    olaf = session.scalar(select(Customer).where(Customer.last_name == "Kern"))
    assert order.customer_id == olaf.id and order.total == Decimal("19.90")
    assert order.currency == "EUR" and order.source_record_id is not None
    call = session.scalar(select(Interaction))
    assert call.customer_id == olaf.id and call.department == "billing"
    assert set(session.scalars(select(SourceRecord.status)
                               .where(SourceRecord.kind != "profile"))) == {"applied", "rejected"}


def test_orders_are_read_as_their_country_writes_them(session, sources) -> None:
    """Billing is a German source: "12,50" is twelve fifty, "1.234,56" over a thousand, "€"
    is the euro, 05/01/2024 is the fifth of January; an order with no currency is in euros."""
    billing, _ = sources
    ingest_batch(session, SYSTEM, billing, [profile("B9", first_name="Uta", last_name="Kern",
                                                    email="uta@example.de")])
    resolve_pending(session)
    rows = [("A-1", "12,50", "€", "05/01/2024"), ("A-2", "1.234,56", "EUR", "3 April 2024"),
            ("A-3", "99", "", "2024-02-29T10:00:00Z"), ("A-4", "1.2.3", "EUR", ""),
            ("A-5", "10", "kr", ""), ("A-6", "10", "EUR", "31/02/2024")]
    out = ingest_batch(session, SYSTEM, billing, [
        Incoming("order", {"no": n}, {"order.number": n, "order.total": total,
                                      "order.currency": currency, "order.ordered_at": when},
                 n, line, "B9") for line, (n, total, currency, when) in enumerate(rows, 2)])
    session.commit()
    assert [(o.status, o.field) for o in out] == [
        ("accepted", None), ("accepted", None), ("accepted", None),
        ("rejected", "order.total"), ("rejected", "order.currency"),
        ("rejected", "order.ordered_at")]
    orders = {o.number: o for o in session.scalars(select(Order))}
    assert (orders["A-1"].total, orders["A-1"].currency) == (Decimal("12.50"), "EUR")
    assert orders["A-1"].ordered_at.date() == date(2024, 1, 5)
    assert orders["A-2"].total == Decimal("1234.56")
    assert orders["A-2"].ordered_at.date() == date(2024, 4, 3)
    assert (orders["A-3"].total, orders["A-3"].currency) == (Decimal("99.00"), "EUR")


def test_order_number_of_another_source_is_refused(session, sources) -> None:
    billing, shop = sources
    for source, ext in ((billing, "B1"), (shop, "S1")):
        ingest_batch(session, SYSTEM, source, [profile(ext, first_name="Al", last_name=ext,
                                                       email=f"{ext}@example.de")])
    resolve_pending(session)
    ingest_batch(session, SYSTEM, billing, [Incoming(
        "order", {"n": 1}, {"order.number": "N-1", "order.total": "5", "order.currency": "EUR"},
        "N-1", 2, "B1")])
    out = ingest_batch(session, SYSTEM, shop, [Incoming(
        "order", {"n": 1}, {"order.number": "N-1", "order.total": "9", "order.currency": "EUR"},
        "N-1", 2, "S1")])
    session.commit()
    assert out[0].status == "rejected" and out[0].field == "order.number"
    assert session.scalar(select(Order.total)) == Decimal("5.00")


def test_the_match_job_resolves_what_an_ingest_enqueued(db, session, sources) -> None:
    billing, _ = sources
    ingest_batch(session, SYSTEM, billing, [profile("B1", first_name="Uwe", last_name="Roth",
                                                    email="uwe@example.de")])
    session.commit()
    assert jobs.run_one(db) is True
    session.expire_all()
    assert _count(session, Customer) == 1
    assert session.scalar(select(SourceProfile.customer_id)) is not None
    assert _count(session, GoldenLineage) == 1


def test_deterministic_rules_are_configurable(session, sources, monkeypatch) -> None:
    from accord.core.settings import reset_settings

    billing, shop = sources
    ingest_batch(session, SYSTEM, billing, [profile("B1", first_name="Kai", last_name="Vogel",
                                                    national_id="DE-77", email="kai@example.de")])
    ingest_batch(session, SYSTEM, shop, [profile("S1", first_name="Kai", last_name="Vogt",
                                                 national_id="DE-77", email="kv@example.de")])
    session.commit()
    monkeypatch.setenv("ACCORD_MATCH_RULES", '[["email", "last_name"]]')
    reset_settings()
    try:
        resolve_pending(session)
        session.flush()
        # without the national-id rule the two stay apart (and wait for a steward)
        assert _count(session, Customer) == 2
    finally:
        monkeypatch.delenv("ACCORD_MATCH_RULES")
        reset_settings()
    session.rollback()
    resolve_pending(session)
    session.commit()
    assert _count(session, Customer) == 1  # default rules: same national id links
    evidence = session.scalar(select(SourceProfile.link_evidence)
                              .where(SourceProfile.external_id == "S1"))
    assert evidence["rule"] == "same national id"


def test_a_rejected_pair_is_never_linked_automatically(session, sources) -> None:
    billing, shop = sources
    ingest_batch(session, SYSTEM, billing, [profile("B1", first_name="Rosa", last_name="Hahn",
                                                    email="hahn@example.de")])
    resolve_pending(session)
    out = ingest_batch(session, SYSTEM, shop, [profile("S1", first_name="Rosa", last_name="Hahn",
                                                       email="hahn@example.de")])
    left = session.scalar(select(SourceProfile.id).where(SourceProfile.external_id == "B1"))
    session.add(MatchReview(left_id=left, right_id=out[0].profile_id, match_probability=0.99,
                            match_weight=9.0, fields=[], status="rejected"))
    session.commit()
    resolve_pending(session)
    session.commit()
    assert _count(session, Customer) == 2  # the rule would link them; the steward said no
    assert _count(session, MatchReview) == 1


def test_a_changed_source_record_updates_the_golden_profile(session, sources) -> None:
    billing, _ = sources
    ingest_batch(session, SYSTEM, billing, [profile("B1", first_name="Nina", last_name="Berg",
                                                    email="nina@example.de")])
    resolve_pending(session)
    session.commit()
    ingest_batch(session, SYSTEM, billing, [profile("B1", first_name="Nina", last_name="Berg",
                                                    email="nina@example.de",
                                                    date_of_birth="02.03.1990")])
    session.commit()
    job_ids = session.scalars(select(SourceProfile.id)).all()
    resolve_pending(session, SYSTEM, job_ids)
    session.commit()
    nina = session.scalar(select(Customer))
    assert nina.date_of_birth == date(1990, 3, 2)
    assert _count(session, Customer) == 1


def test_a_chain_of_links_stops_at_the_cluster_limit(session, sources, monkeypatch) -> None:
    from accord.core.settings import reset_settings

    billing, shop = sources
    # a chain B1 -id- S1 -email- B2 -id- S2 -email- B3 (same surname: the e-mail rule holds;
    # first names of one initial: nothing contradicts a rule)
    ingest_batch(session, SYSTEM, billing, [
        profile("B1", first_name="Ada", last_name="Lang", national_id="N1"),
        profile("B2", first_name="Anna", last_name="Lang", national_id="N2",
                email="one@example.de"),
        profile("B3", first_name="Anke", last_name="Lang", email="two@example.de")])
    ingest_batch(session, SYSTEM, shop, [
        profile("S1", first_name="Alma", last_name="Lang", national_id="N1",
                email="one@example.de"),
        profile("S2", first_name="Aida", last_name="Lang", national_id="N2",
                email="two@example.de")])
    session.commit()
    resolve_pending(session)
    session.flush()
    assert _count(session, Customer) == 1  # without a limit the chain makes one customer
    session.rollback()
    monkeypatch.setenv("ACCORD_MATCH_MAX_CLUSTER", "2")
    reset_settings()
    try:
        result = resolve_pending(session)
        session.commit()
    finally:
        monkeypatch.delenv("ACCORD_MATCH_MAX_CLUSTER")
        reset_settings()
    sizes = sorted(session.scalars(select(func.count()).select_from(SourceProfile)
                                   .group_by(SourceProfile.customer_id)).all())
    assert sizes == [1, 2, 2]  # never more than two profiles joined automatically
    assert result.auto_links == 4 and result.reviews >= 1  # the refused links wait for review
