"""Data stewardship on SQLite and PostgreSQL: the review queue, merge and exact unmerge, unlinking
a wrong link, and the lineage and evidence behind every golden customer."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from accord.access.policy import SYSTEM, Principal
from accord.core.errors import Conflict, Forbidden, PreconditionFailed, ValidationProblem
from accord.core.query import parse_list_params
from accord.customers import custom_fields
from accord.customers import service as customers
from accord.customers.schemas import CustomerUpdate, CustomFieldIn
from accord.integration import resolution, stewardship
from accord.integration.ingest import Incoming, ingest_batch
from accord.integration.resolution import Pair, resolve_pending
from accord.integration.sources import create_source, manual_source
from accord.interactions import service as interactions
from accord.interactions.schemas import InteractionFields
from accord.models import (
    Account,
    AuditEntry,
    Base,
    Contact,
    Customer,
    CustomerEmail,
    CustomerPhone,
    CustomFieldValue,
    GoldenLineage,
    IdentityChange,
    Interaction,
    LifecycleChange,
    MatchReview,
    Order,
    OutboxEvent,
    SourceProfile,
)

# Bookkeeping left out of the before/after comparison, and why:
# - the audit log, the outbox and identity_changes: the merge and the unmerge are themselves
#   recorded there (append-only by design: the history of the undo is part of the truth);
# - `version` and `updated_at` columns: the optimistic-concurrency counter and the change time
#   only move forward, so a client holding a pre-merge ETag is told the record changed.
LOG_TABLES = {AuditEntry.__tablename__, OutboxEvent.__tablename__,
              IdentityChange.__tablename__}
BOOKKEEPING = {"version", "updated_at"}


def dump(session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but the logs), bookkeeping columns left out."""
    session.flush()
    out = {}
    for table in Base.metadata.sorted_tables:
        if table.name in LOG_TABLES:
            continue
        cols = [c for c in table.columns if c.name not in BOOKKEEPING]
        rows = session.execute(select(*cols).order_by(*table.primary_key.columns)).all()
        out[table.name] = [tuple(r) for r in rows]
    return out


def profile(ext: str, **fields: Any) -> Incoming:
    return Incoming("profile", {"id": ext, **fields}, dict(fields), ext)


def order(number: str, subject: str, total: str = "10.00") -> Incoming:
    return Incoming("order", {"no": number}, {"order.number": number, "order.total": total,
                                               "order.currency": "EUR",
                                               "order.ordered_at": "2026-01-02T10:00:00Z"},
                    number, None, subject)


def call(ext: str, subject: str, text: str) -> Incoming:
    return Incoming("interaction", {"id": ext}, {"interaction.channel": "phone",
                                                  "interaction.subject": text}, ext, None, subject)


def customer_of(session, external_id: str) -> Customer:
    cid = session.scalar(select(SourceProfile.customer_id)
                         .where(SourceProfile.external_id == external_id))
    return session.get(Customer, cid)


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


# Users are made before any data (fixture order): a reading test session would hold SQLite's
# write lock while make_actor writes.
@pytest.fixture
def manager(make_actor) -> Principal:
    return make_actor("manager").principal


@pytest.fixture
def analyst(make_actor) -> Principal:
    return make_actor("analyst").principal


@pytest.fixture
def sources(session):
    billing = create_source(session, SYSTEM, name="billing", kind="billing", trust_rank=10,
                            default_country="DE")
    shop = create_source(session, SYSTEM, name="webshop", kind="webshop", trust_rank=30,
                         default_country="DE")
    session.commit()
    return billing, shop


@pytest.fixture
def two_people(session, sources):
    """Maria in billing and 'Maria Mueller' in the shop: same phone, different spelling of the
    surname, so the resolver asks a steward (a pending review) instead of linking them."""
    billing, shop = sources
    ingest_batch(session, SYSTEM, billing, [
        profile("B1", first_name="Maria", last_name="Müller", email="maria@example.de",
                phone="+49 30 1234567", date_of_birth="1984-03-05"),
        order("INV-1", "B1", "19.90"),
        call("C-1", "B1", "Asked about an invoice"),
    ])
    ingest_batch(session, SYSTEM, shop, [
        profile("S1", first_name="Maria", last_name="Mueller", email="m.mueller@shop.example",
                phone="030 1234567", address_line1="Hauptstr. 5", city="Berlin",
                postcode="10115", country="DE"),
        profile("S2", first_name="Maria", last_name="Mueller", email="m.mueller@shop.example",
                address_line1="Hauptstr. 5", city="Berlin", postcode="10115", country="DE"),
        order("W-7", "S1", "49.00"),
    ])
    resolve_pending(session)
    session.commit()
    a, b = customer_of(session, "B1"), customer_of(session, "S1")
    assert a.id != b.id
    session.commit()  # end the read transaction: SQLite has one writer (make_actor writes)
    return a.id, b.id


def enrich(session, a_id: int, b_id: int) -> None:
    """Hand-entered data on both: custom fields (one clashing), stage history, a logged call,
    an account contact."""
    custom_fields.create_field(session, SYSTEM, CustomFieldIn(key="segment", label="Segment",
                                                              type="text"))
    custom_fields.create_field(session, SYSTEM, CustomFieldIn(key="nps", label="NPS",
                                                              type="number"))
    a, b = session.get(Customer, a_id), session.get(Customer, b_id)
    customers.update_customer(session, SYSTEM, a, CustomerUpdate(custom={"segment": "Retail"},
                                                                 lifecycle_stage="purchase"))
    customers.update_customer(session, SYSTEM, b, CustomerUpdate(
        custom={"segment": "SMB", "nps": 9}, notes="prefers e-mail"))
    interactions.create_interaction(session, SYSTEM, b_id, InteractionFields(
        channel="email", direction="inbound", subject="Hand-logged"))
    account = Account(name="Acme", name_key="acme")
    session.add(account)
    session.flush()
    session.add(Contact(account_id=account.id, customer_id=b_id, first_name="Maria",
                        last_name="Mueller"))
    session.commit()


# --- merge and unmerge ----------------------------------------------------------------------


def test_merge_then_unmerge_restores_the_exact_previous_state(manager, session,
                                                               two_people) -> None:
    a_id, b_id = two_people
    enrich(session, a_id, b_id)
    steward = manager
    before = dump(session)
    review = session.scalar(select(MatchReview))
    assert review.status == "pending"

    change = stewardship.merge(session, steward, a_id, b_id, "same phone, same person")
    session.commit()
    a, b = session.get(Customer, a_id), session.get(Customer, b_id)
    assert b.merged_into_id == a_id
    # everything follows the person
    assert set(session.scalars(select(Order.customer_id))) == {a_id}
    assert set(session.scalars(select(Interaction.customer_id))) == {a_id}
    assert set(session.scalars(select(SourceProfile.customer_id))) == {a_id}
    assert session.scalar(select(Contact.customer_id)) == a_id
    assert count(session, LifecycleChange, LifecycleChange.customer_id == b_id) == 0
    # A already had a segment: B's stays on B (recorded), B's NPS moves
    values = {(v.record_id, v.field_id) for v in session.scalars(select(CustomFieldValue))}
    assert len([1 for rid, _ in values if rid == b_id]) == 1
    assert change.snapshot["kept"]["custom_field_values.record_id"]
    assert a.notes == "prefers e-mail"  # A had no notes: filled from B
    # golden values rebuilt from all four profiles, with lineage; one primary per kind
    assert {e.email_normalized for e in a.emails} == {"maria@example.de",
                                                      "m.mueller@shop.example"}
    assert sum(e.is_primary for e in a.emails) == 1 and sum(p.is_primary for p in a.phones) == 1
    assert [ad.city for ad in a.addresses] == ["Berlin"]
    assert count(session, GoldenLineage, GoldenLineage.customer_id == b_id) == 0
    assert count(session, GoldenLineage, GoldenLineage.customer_id == a_id) == 3
    moved = session.scalar(select(SourceProfile).where(SourceProfile.external_id == "S1"))
    assert moved.link_method == "manual" and moved.link_evidence["merged_from"] == b_id
    assert session.get(MatchReview, review.id).status == "accepted"  # the pair is settled
    settled = session.scalar(select(AuditEntry).where(AuditEntry.action == "accept",
                                                      AuditEntry.record_id == str(review.id)))
    assert settled is not None and settled.resource == "match_reviews"
    assert settled.reason == f"settled by merging customer {b_id} into {a_id}"
    event = session.scalar(select(OutboxEvent).where(OutboxEvent.type == "customer.merged"))
    assert event.payload["merged_id"] == b_id and event.payload["change_id"] == change.id
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "merge"))
    assert entry.resource == "identity" and entry.reason == "same phone, same person"

    undo = stewardship.unmerge(session, steward, change.id, "different people after all")
    session.commit()
    session.expire_all()
    assert dump(session) == before
    assert session.get(IdentityChange, change.id).reverted_by == undo.id
    assert undo.kind == "unmerge" and undo.snapshot["reverts"] == change.id
    assert count(session, OutboxEvent, OutboxEvent.type == "customer.unmerged") == 1
    assert count(session, AuditEntry, AuditEntry.action == "unmerge") == 1
    assert count(session, AuditEntry, AuditEntry.action == "reopen") == 1  # the review, again


def test_merge_refusals(analyst, manager, session, two_people) -> None:
    a_id, b_id = two_people
    steward = manager
    with pytest.raises(Forbidden):
        stewardship.merge(session, analyst, a_id, b_id, "no right")
    with pytest.raises(Conflict) as into_itself:
        stewardship.merge(session, steward, a_id, a_id, "oops")
    assert into_itself.value.field == "merged_id"
    with pytest.raises(ValidationProblem) as no_reason:
        stewardship.merge(session, steward, a_id, b_id, "  ")
    assert no_reason.value.field == "reason"
    with pytest.raises(PreconditionFailed):
        stewardship.merge(session, steward, a_id, b_id, "stale", survivor_version=99)
    change = stewardship.merge(session, steward, a_id, b_id, "same person")
    session.commit()
    with pytest.raises(Conflict) as again:
        stewardship.merge(session, steward, a_id, b_id, "twice")
    assert again.value.field == "merged_id"
    with pytest.raises(Conflict) as into_merged:
        stewardship.merge(session, steward, b_id, a_id, "into the merged one")
    assert into_merged.value.field == "survivor_id"
    stewardship.unmerge(session, steward, change.id, "undo")
    session.commit()
    with pytest.raises(Conflict) as twice:
        stewardship.unmerge(session, steward, change.id, "undo again")
    assert "already reverted" in twice.value.detail


def test_unmerge_keeps_later_work_on_the_survivor_and_sends_new_source_rows_back(
        session, sources, two_people) -> None:
    billing, shop = sources
    a_id, b_id = two_people
    steward = SYSTEM
    change = stewardship.merge(session, steward, a_id, b_id, "same person")
    session.commit()
    # after the merge: a call logged on A by hand, an order from the shop about S1, a new
    # value typed into A
    interactions.create_interaction(session, SYSTEM, a_id, InteractionFields(
        channel="phone", direction="outbound", subject="Follow-up"))
    ingest_batch(session, SYSTEM, shop, [order("W-8", "S1", "12.00")])
    a = session.get(Customer, a_id)
    customers.update_customer(session, SYSTEM, a, CustomerUpdate(preferred_channel="sms"))
    session.commit()
    assert session.scalar(select(Order.customer_id).where(Order.number == "W-8")) == a_id

    stewardship.unmerge(session, steward, change.id, "not the same")
    session.commit()
    session.expire_all()
    by_number = {n: c for n, c in session.execute(select(Order.number, Order.customer_id))}
    assert by_number == {"INV-1": a_id, "W-7": b_id, "W-8": b_id}  # source rows follow S1
    follow_up = session.scalar(select(Interaction).where(Interaction.subject == "Follow-up"))
    assert follow_up.customer_id == a_id  # created on A after the merge: stays
    assert session.get(Customer, a_id).preferred_channel == "sms"  # a later edit is kept
    assert session.get(Customer, b_id).merged_into_id is None


def test_unmerge_waits_for_a_later_merge_into_the_survivor(session, sources,
                                                           two_people) -> None:
    _, shop = sources
    a_id, b_id = two_people
    ingest_batch(session, SYSTEM, shop, [profile("S9", first_name="Otto", last_name="Lang",
                                                 email="otto@example.de")])
    resolve_pending(session)
    c_id = customer_of(session, "S9").id
    first = stewardship.merge(session, SYSTEM, a_id, b_id, "one")
    second = stewardship.merge(session, SYSTEM, a_id, c_id, "two")
    with pytest.raises(Conflict) as blocked:
        stewardship.unmerge(session, SYSTEM, first.id, "out of order")
    assert str(second.id) in blocked.value.detail
    stewardship.unmerge(session, SYSTEM, second.id, "last in, first out")
    stewardship.unmerge(session, SYSTEM, first.id, "now this one")
    session.commit()
    assert session.scalar(select(func.count()).select_from(Customer)
                          .where(Customer.merged_into_id.is_not(None))) == 0


def test_merged_customer_points_to_the_survivor_through_chains(session, sources,
                                                               two_people) -> None:
    _, shop = sources
    a_id, b_id = two_people
    ingest_batch(session, SYSTEM, shop, [profile("S9", first_name="Otto", last_name="Lang",
                                                 email="otto@example.de")])
    resolve_pending(session)
    c_id = customer_of(session, "S9").id
    stewardship.merge(session, SYSTEM, b_id, c_id, "c is b")
    stewardship.merge(session, SYSTEM, a_id, b_id, "b is a")
    session.commit()
    assert stewardship.merged_target(session, c_id) == a_id
    assert stewardship.merged_target(session, b_id) == a_id
    assert stewardship.merged_target(session, a_id) is None
    problem = stewardship.merged_problem(session, c_id)
    assert problem.status == 307 and problem.headers["Location"] == f"/api/v1/customers/{a_id}"
    assert stewardship.merged_problem(session, c_id, "update").status == 409


def test_merging_hand_entered_customers_keeps_the_survivors_values(session) -> None:
    def hand(first: str, email: str, **extra: Any) -> Customer:
        c = Customer(first_name=first, last_name="Brandt", display_name=f"{first} Brandt",
                     name_key=f"brandt {first.lower()}", name_key_alt=f"{first.lower()} brandt",
                     **extra)
        c.emails.append(CustomerEmail(email=email, email_normalized=email, is_primary=True))
        session.add(c)
        return c

    a = hand("Ida", "ida@example.de")
    b = hand("Idaa", "ida.b@example.de", date_of_birth=date(1990, 1, 2))
    manual_source(session)  # exists in any installation that ever resolved a profile
    session.commit()
    before = dump(session)
    change = stewardship.merge(session, SYSTEM, a.id, b.id, "typo duplicate")
    session.commit()
    session.refresh(a)
    assert a.first_name == "Ida" and a.date_of_birth == date(1990, 1, 2)
    assert sorted(e.email_normalized for e in a.emails) == ["ida.b@example.de", "ida@example.de"]
    assert [e.email_normalized for e in a.emails if e.is_primary] == ["ida@example.de"]
    sources_seen = {r["source"] for r in stewardship.why_linked(session, a.id)}
    assert sources_seen == {"accord"}
    stewardship.unmerge(session, SYSTEM, change.id, "undo")
    session.commit()
    session.expire_all()
    assert dump(session) == before  # the captured hand-entered profiles are gone again


# --- the review queue -----------------------------------------------------------------------


def test_accept_merges_into_the_customer_with_more_profiles(manager, session,
                                                            two_people) -> None:
    a_id, b_id = two_people  # A: B1 only; B: S1 and S2
    steward = manager
    review = session.scalar(select(MatchReview))
    view = stewardship.get_review(session, steward, review.id)
    assert view["left"]["source"]["name"] == "billing" and view["left"]["source"]["trust_rank"]
    assert view["right"]["customer"]["linked_profiles"] == 2
    phone = next(f for f in view["fields"] if f["field"] == "phone")
    assert phone["left"] == phone["right"] == "+49301234567" and phone["agrees"] is True
    with pytest.raises(PreconditionFailed):
        stewardship.accept_review(session, steward, review.id, expected_version=review.version + 1)
    accepted = stewardship.accept_review(session, steward, review.id,
                                         expected_version=review.version)
    session.commit()
    assert accepted.status == "accepted" and accepted.decided_by == steward.user_id
    assert accepted.decided_at is not None
    assert session.get(Customer, a_id).merged_into_id == b_id  # B has more profiles
    b1 = session.scalar(select(SourceProfile).where(SourceProfile.external_id == "B1"))
    assert b1.customer_id == b_id and b1.link_method == "review"
    assert b1.link_evidence["review_id"] == review.id
    with pytest.raises(Conflict):
        stewardship.reject_review(session, steward, review.id)
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "accept"))
    assert entry.detail["outcome"] == "merged"
    # the steward's decision is undone with the merge: the pair is open again
    change = session.scalar(select(IdentityChange).where(IdentityChange.kind == "merge"))
    stewardship.unmerge(session, steward, change.id, "wrong call")
    session.commit()
    assert session.get(MatchReview, review.id).status == "pending"


def test_reject_closes_the_pair_for_good(analyst, manager, session, two_people) -> None:
    a_id, b_id = two_people
    steward = manager
    review = session.scalar(select(MatchReview))
    with pytest.raises(Forbidden):
        stewardship.reject_review(session, analyst, review.id)
    stewardship.reject_review(session, steward, review.id, expected_version=review.version,
                              reason="twins")
    session.commit()
    assert review.status == "rejected" and review.decided_by == steward.user_id
    assert {customer_of(session, "B1").id, customer_of(session, "S1").id} == {a_id, b_id}
    # the resolver sees the same pair again: nothing new is queued, the decision stands
    left = session.get(SourceProfile, review.left_id)
    right = session.get(SourceProfile, review.right_id)
    again = Pair(review.left_id, review.right_id, 0.7, None, "rule", {"rule": "same phone"})
    decided = resolution._decided_pairs(session, [again])
    assert decided == {(review.left_id, review.right_id): "rejected"}
    assert resolution._queue_reviews(session, [again], {left.id: left, right.id: right},
                                     decided) == 0
    session.commit()
    assert count(session, MatchReview) == 1
    assert session.get(MatchReview, review.id).status == "rejected"
    with pytest.raises(Conflict):
        stewardship.accept_review(session, steward, review.id)


def test_accept_links_an_unlinked_profile(manager, session, sources) -> None:
    billing, shop = sources
    ingest_batch(session, SYSTEM, billing, [
        profile("B5", first_name="Jan", last_name="Wolf", email="jan@example.de")])
    resolve_pending(session)
    out = ingest_batch(session, SYSTEM, shop, [
        profile("S5", first_name="Jan", last_name="Wolff", email="jan@example.de",
                phone="0170 7654321"),
        order("W-50", "S5")])
    session.commit()
    jan = customer_of(session, "B5")
    left_id = session.scalar(select(SourceProfile.id).where(SourceProfile.external_id == "B5"))
    review = MatchReview(left_id=left_id, right_id=out[0].profile_id, match_probability=0.8,
                         match_weight=2.0, fields=[{"field": "last_name", "left": "Wolf",
                                                    "right": "Wolff", "match_weight": -1.5}])
    session.add(review)
    session.commit()
    stewardship.accept_review(session, manager, review.id)
    session.commit()
    session.refresh(jan)
    s5 = session.get(SourceProfile, out[0].profile_id)
    assert s5.customer_id == jan.id and s5.link_method == "review"
    assert s5.match_probability == 0.8
    assert [p.e164 for p in jan.phones] == ["+491707654321"]
    assert session.scalar(select(Order.customer_id).where(Order.number == "W-50")) == jan.id
    # why: seen from S5 (the right side of the pair), its own value comes first
    why = next(r for r in stewardship.why_linked(session, jan.id) if r["external_id"] == "S5")
    assert why["review_id"] == review.id and why["other"]["external_id"] == "B5"
    assert why["weights"] == [{"field": "last_name", "match_weight": -1.5, "level": None,
                               "agrees": False, "masked": False, "this": "Wolff",
                               "other": "Wolf"}]


def test_review_list_is_keyset_paginated_by_probability(analyst, session, sources) -> None:
    billing, shop = sources
    for i in range(5):
        ingest_batch(session, SYSTEM, billing, [profile(f"B{i}", first_name="Kim",
                                                        last_name=f"Aa{i}",
                                                        email=f"k{i}@example.de")])
        ingest_batch(session, SYSTEM, shop, [profile(f"S{i}", first_name="Kim",
                                                     last_name=f"Bb{i}",
                                                     email=f"k{i}@example.de")])
    resolve_pending(session)
    session.commit()
    reviews = session.scalars(select(MatchReview).order_by(MatchReview.id)).all()
    assert len(reviews) == 5
    for i, r in enumerate(reviews):  # distinct probabilities to sort on
        r.match_probability = 0.61 + i * 0.05
    reviews[-1].status = "rejected"
    session.commit()
    spec = stewardship.review_list_spec()
    seen, cursor = [], None
    while True:
        query = {"status": "pending", "limit": "2", **({"cursor": cursor} if cursor else {})}
        params = parse_list_params(query, spec, hidden=set(), default_limit=50, max_limit=200)
        items, cursor = stewardship.list_reviews(session, analyst, params)
        seen += items
        if cursor is None:
            break
    assert [i["id"] for i in seen] == [r.id for r in reversed(reviews[:-1])]
    assert seen[0]["left"]["source"] == "billing" and seen[0]["right"]["source"] == "webshop"
    assert {i["status"] for i in seen} == {"pending"}


def test_sensitive_fields_are_masked_for_roles_that_may_not_see_them(
        analyst, manager, session, two_people) -> None:
    review = session.scalar(select(MatchReview))
    seen = stewardship.get_review(session, analyst, review.id)
    assert seen["left"]["values"]["date_of_birth"] is None
    assert "date_of_birth" in seen["masked_fields"]
    dob = [f for f in seen["fields"] if f["field"] == "date_of_birth"]
    assert dob and dob[0]["masked"] and dob[0]["left"] is None
    full = stewardship.get_review(session, manager, review.id)
    assert full["left"]["values"]["date_of_birth"] == "1984-03-05"


# --- unlink ---------------------------------------------------------------------------------


def test_unlink_a_wrong_automatic_link(manager, session, sources) -> None:
    billing, shop = sources
    # two people sharing a family e-mail and surname: linked by the rule, wrongly
    ingest_batch(session, SYSTEM, billing, [
        profile("B1", first_name="Tom", last_name="Fischer", email="family@example.de",
                date_of_birth="1970-01-01"),
        order("INV-9", "B1")])
    ingest_batch(session, SYSTEM, shop, [
        profile("S1", first_name="Tina", last_name="Fischer", email="family@example.de",
                phone="0170 1112223", address_line1="Ringstr. 1", city="Köln",
                postcode="50667", country="DE"),
        order("W-9", "S1", "5.00"),
        call("C-9", "S1", "Where is my parcel?")])
    resolve_pending(session)
    session.commit()
    tom = customer_of(session, "B1")
    s1 = session.scalar(select(SourceProfile).where(SourceProfile.external_id == "S1"))
    assert s1.customer_id == tom.id
    assert {p.e164 for p in tom.phones} == {"+491701112223"}
    steward = manager
    with pytest.raises(PreconditionFailed):
        stewardship.unlink(session, steward, s1.id, "wrong", expected_version=s1.version + 5)

    change = stewardship.unlink(session, steward, s1.id, "Tina is Tom's daughter",
                                expected_version=s1.version)
    session.commit()
    session.expire_all()
    tom = session.get(Customer, tom.id)
    tina = customer_of(session, "S1")
    assert tina.id != tom.id and change.other_customer_id == tina.id
    assert (tina.first_name, tina.last_name) == ("Tina", "Fischer")
    assert (tom.first_name, tom.date_of_birth) == ("Tom", date(1970, 1, 1))
    orders = {n: c for n, c in session.execute(select(Order.number, Order.customer_id))}
    assert orders == {"INV-9": tom.id, "W-9": tina.id}
    assert session.scalar(select(Interaction.customer_id)) == tina.id
    # the phone and address only Tina's profile supplied left Tom; the shared e-mail stayed
    assert tom.phones == [] and tom.addresses == []
    assert [e.email_normalized for e in tom.emails] == ["family@example.de"]
    assert [p.e164 for p in tina.phones] == ["+491701112223"]
    assert [a.city for a in tina.addresses] == ["Köln"]
    assert {r["external_id"] for r in stewardship.why_linked(session, tom.id)} == {"B1"}
    s1 = session.get(SourceProfile, s1.id)
    assert s1.link_method == "manual" and s1.link_evidence["unlinked_from"] == tom.id
    # the pair that linked them is closed, so it is never proposed again
    closed = session.get(MatchReview, change.snapshot["rejected_review"])
    assert closed.status == "rejected" and {closed.left_id, closed.right_id} == {
        s1.id, session.scalar(select(SourceProfile.id).where(SourceProfile.external_id == "B1"))}
    assert count(session, AuditEntry, AuditEntry.action == "unlink") == 1
    with pytest.raises(Conflict):  # Tina's only profile: nothing to unlink from
        stewardship.unlink(session, steward, s1.id, "again")


def test_unlink_from_an_existing_customer_restores_what_it_had(session, sources) -> None:
    _, shop = sources
    ida = Customer(first_name="Ida", last_name="Brandt", display_name="Ida Brandt",
                   name_key="brandt ida", name_key_alt="ida brandt", notes="VIP")
    ida.emails.append(CustomerEmail(email="ida@example.de", email_normalized="ida@example.de",
                                    is_primary=True))
    ida.phones.append(CustomerPhone(phone="+49 30 999", e164="+4930999", is_primary=True))
    session.add(ida)
    session.commit()
    ingest_batch(session, SYSTEM, shop, [
        profile("S5", first_name="IDA", last_name="BRANDT", email="ida@example.de",
                phone="0170 1234567", date_of_birth="1991-02-03")])
    resolve_pending(session)
    session.commit()
    session.refresh(ida)
    assert ida.date_of_birth == date(1991, 2, 3) and len(ida.phones) == 2
    link = session.scalar(select(IdentityChange).where(IdentityChange.kind == "link"))
    assert link is not None and link.customer_id == ida.id
    s5 = session.scalar(select(SourceProfile).where(SourceProfile.external_id == "S5"))
    manual = session.scalar(select(SourceProfile).where(SourceProfile.external_id == str(ida.id)))
    with pytest.raises(Conflict):  # the hand-entered profile is the customer itself
        stewardship.unlink(session, SYSTEM, manual.id, "no")

    stewardship.unlink(session, SYSTEM, s5.id, "another Ida")
    session.commit()
    session.expire_all()
    ida = session.get(Customer, ida.id)
    assert ida.date_of_birth is None  # only S5 supplied it
    assert ida.notes == "VIP" and ida.first_name == "Ida"
    assert [p.e164 for p in ida.phones] == ["+4930999"]  # hand-entered phone kept
    assert [e.email_normalized for e in ida.emails] == ["ida@example.de"]  # shared: kept
    other = customer_of(session, "S5")
    assert other.date_of_birth == date(1991, 2, 3)
    assert [p.e164 for p in other.phones] == ["+491701234567"]


def test_unlink_a_profile_brought_by_a_merge_returns_it_to_its_customer(
        session, two_people) -> None:
    a_id, b_id = two_people
    stewardship.merge(session, SYSTEM, a_id, b_id, "same person?")
    session.commit()
    s1 = session.scalar(select(SourceProfile).where(SourceProfile.external_id == "S1"))
    stewardship.unlink(session, SYSTEM, s1.id, "S1 is the other Maria")
    session.commit()
    session.expire_all()
    b = session.get(Customer, b_id)
    assert b.merged_into_id is None
    assert customer_of(session, "S1").id == b_id
    assert customer_of(session, "S2").id == a_id
    assert session.scalar(select(Order.customer_id).where(Order.number == "W-7")) == b_id
    assert session.scalar(select(Order.customer_id).where(Order.number == "INV-1")) == a_id


# --- lineage and why ------------------------------------------------------------------------


def test_every_golden_field_has_lineage_and_every_link_its_evidence(session, two_people) -> None:
    a_id, b_id = two_people
    stewardship.merge(session, SYSTEM, a_id, b_id, "same person")
    session.commit()
    a = session.get(Customer, a_id)
    rows = stewardship.why_linked(session, a_id)
    assert {r["external_id"] for r in rows} == {"B1", "S1", "S2"}
    credited: dict[str, list[Any]] = {}
    for r in rows:
        assert r["source"] and r["trust_rank"] and r["link_method"] and r["method_text"]
        for s in r["supplied"]:
            credited.setdefault(s["field"], []).append(s["value"])
    golden_values = {"first_name": a.first_name, "last_name": a.last_name,
                     "date_of_birth": a.date_of_birth.isoformat(), "phone": a.phones[0].e164}
    for name, value in golden_values.items():
        assert value in credited[name], name
    primary = next(e.email_normalized for e in a.emails if e.is_primary)
    assert primary in credited["email"]
    assert credited["address"] == ["Hauptstr. 5, 10115, Berlin, DE"] * 2
    s1 = next(r for r in rows if r["external_id"] == "S1")
    assert s1["merged_from"] == b_id and s1["merge_id"] and s1["reason"] == "same person"
    assert s1["previous"]["method"] in ("new", "rule")
    s2 = next(r for r in rows if r["external_id"] == "S2")
    assert s2["previous"]["evidence"].get("rule")  # why it was with S1 in the first place
    view = stewardship.customer_sources(session, SYSTEM, a_id)
    assert [c["kind"] for c in view["changes"]] == ["merge"]
    assert view["changes"][0]["revertible"] is True
