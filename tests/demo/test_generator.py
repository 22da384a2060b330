"""The demo generator: a consistent, realistic, reproducible customer base on both engines."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import phonenumbers
import pytest
from sqlalchemy import func, select, text

from accord.access import service as access
from accord.access.policy import ROLES
from accord.core.contact import name_keys, normalize_email, normalize_phone
from accord.core.db import get_engine, session_scope
from accord.customers import service as customers_service
from accord.customers.schemas import CustomerCreate
from accord.demo import generator
from accord.demo.generator import BULK_TABLES, DEMO_PASSWORD, ensure_demo
from accord.models import (
    Account,
    Contact,
    Customer,
    CustomerEmail,
    CustomerPhone,
    CustomFieldValue,
    Interaction,
    LifecycleChange,
    Order,
    OrderLine,
    User,
)
from accord.models.customer import CHANNELS

NOW = datetime(2026, 1, 15, tzinfo=UTC)
N = 300


def quiet(*_: object) -> None:
    return None


def make(customers: int = N, seed: int = 7, fresh: bool = False) -> list[tuple[str, str]]:
    return ensure_demo(customers, seed, fresh, now=NOW, progress=quiet)


def digest() -> str:
    """A fingerprint of every generated row, in id order."""
    h = hashlib.sha256()
    with get_engine().connect() as conn:
        for table in BULK_TABLES:
            for row in conn.execute(text(f'SELECT * FROM "{table}" ORDER BY id')):  # noqa: S608
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def count(session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_customer_base_is_complete_and_consistent(db):
    logins = make()
    assert {role for _, role in logins} == set(ROLES)
    assert sum(1 for _, role in logins if role == "sales") == 2

    with session_scope(write=False) as s:
        assert count(s, Customer) == N
        assert count(s, Account) >= 3
        assert all(a.annual_revenue_currency in ("EUR", "GBP", "USD")
                   for a in s.execute(select(Account)).scalars())
        assert count(s, Contact) > 0
        customers = {c.id: c for c in s.execute(select(Customer)).scalars()}
        primaries = Counter(cid for (cid,) in s.execute(
            select(CustomerEmail.customer_id).where(CustomerEmail.is_primary.is_(True))))
        assert set(primaries) == set(customers) and set(primaries.values()) == {1}
        for e in s.execute(select(CustomerEmail)).scalars():
            assert e.email_normalized == normalize_email(e.email) == e.email.lower()
        phones = list(s.execute(select(CustomerPhone)).scalars())
        assert len(phones) > N * 0.8
        for p in phones:
            assert re.fullmatch(r"\+[1-9]\d{6,14}", p.e164)
            assert phonenumbers.is_valid_number(phonenumbers.parse(p.e164))
            assert normalize_phone(p.phone, customers[p.customer_id].country) == p.e164

        # people from several countries, owned by sales users and teams
        assert len({c.country for c in customers.values()}) >= 6
        sales = {u.id for u in s.execute(select(User).where(User.role == "sales")).scalars()}
        owners = Counter(c.owner_id for c in customers.values())
        assert all(owners[uid] > N * 0.1 for uid in sales)
        assert all(c.team_id is not None for c in customers.values())
        assert all(c.account_id for c in customers.values() if c.id in {
            ct.customer_id for ct in s.execute(select(Contact)).scalars()})

        # names, sensitive values, custom fields
        for c in customers.values():
            assert (c.name_key, c.name_key_alt) == name_keys(c.first_name, c.last_name)
            assert c.display_name == f"{c.first_name} {c.last_name}"
        assert sum(c.date_of_birth is not None for c in customers.values()) == N
        assert any(c.national_id for c in customers.values())
        assert any(c.notes for c in customers.values())
        assert len({f for (f,) in s.execute(select(CustomFieldValue.field_id))}) == 2

        # orders: lines add up, currency follows the country
        orders_by_customer: dict[int, list[Order]] = defaultdict(list)
        for o in s.execute(select(Order)).scalars():
            orders_by_customer[o.customer_id].append(o)
        line_sums: dict[int, Decimal] = defaultdict(Decimal)
        for ln in s.execute(select(OrderLine)).scalars():
            assert ln.line_total == ln.unit_price * ln.quantity
            line_sums[ln.order_id] += ln.line_total
        currency = {"GB": "GBP", "US": "USD"}
        for cid, orders in orders_by_customer.items():
            for o in orders:
                assert o.total == line_sums[o.id]
                assert o.currency == currency.get(customers[cid].country, "EUR")
                assert o.ordered_at <= NOW

        # lifecycle stage agrees with the purchase history and with its own history
        counts = Counter(c.lifecycle_stage for c in customers.values())
        assert {"awareness", "purchase", "loyalty", "churned"} <= set(counts)
        history: dict[int, list[LifecycleChange]] = defaultdict(list)
        for h in s.execute(select(LifecycleChange).order_by(LifecycleChange.changed_at,
                                                            LifecycleChange.id)).scalars():
            history[h.customer_id].append(h)
        for cid, c in customers.items():
            orders = sorted(orders_by_customer[cid], key=lambda o: o.ordered_at)
            if c.lifecycle_stage in ("awareness", "discovery", "evaluation", "intent"):
                assert not orders and c.value_tier is None
            elif c.lifecycle_stage == "purchase":
                assert len(orders) == 1
            elif c.lifecycle_stage == "loyalty":
                assert len(orders) >= 2
            else:  # churned: bought, then nothing for a year
                assert orders and NOW - orders[-1].ordered_at > timedelta(days=365)
            if c.lifecycle_stage in ("purchase", "loyalty"):
                assert NOW - orders[-1].ordered_at <= timedelta(days=365)
            if orders:
                assert c.value_tier is not None
            steps = history[cid]
            assert steps[0].from_stage is None and steps[0].to_stage == "awareness"
            assert steps[-1].to_stage == c.lifecycle_stage
            assert all(a.to_stage == b.from_stage for a, b in zip(steps, steps[1:], strict=False))
            assert all(h.changed_at <= NOW for h in steps)

        # interactions: every channel, every department
        rows = s.execute(select(Interaction.channel, Interaction.department).distinct()).all()
        assert {ch for ch, _ in rows} == set(CHANNELS)
        assert {"sales", "marketing", "support", "billing"} <= {d for _, d in rows}
        assert count(s, Interaction) > N * 3

    engine = get_engine()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def test_new_records_after_generation_get_fresh_ids(db, admin):
    """Explicit ids must not leave sequences behind (PostgreSQL setval)."""
    make(60)
    with session_scope() as s:
        before = s.execute(select(func.max(Customer.id))).scalar_one()
        customer = customers_service.create_customer(s, admin.principal, CustomerCreate(
            first_name="New", last_name="Person", emails=[{"email": "new.person@example.com"}]))
        assert customer.id > before
        assert customer.emails[0].id > 0


def test_demo_users_log_in_with_the_demo_password(db):
    logins = make(50)
    with session_scope() as s:
        hashes = set()
        for email, role in logins:
            user = access.authenticate(s, email, DEMO_PASSWORD)
            assert user is not None and user.role == role
            assert access.authenticate(s, email, "wrong password") is None
            hashes.add(user.password_hash)
        assert len(hashes) == 1  # hashed once, reused
        teams = {u.team_id for u in s.execute(select(User).where(User.role == "sales")).scalars()}
        assert len(teams) == 2


def test_ensure_demo_is_idempotent(db):
    first = make(80)
    fingerprint = digest()
    assert make(80) == first
    assert digest() == fingerprint
    with session_scope(write=False) as s:
        assert count(s, Customer) == 80
        assert count(s, User) == len(first)


def test_same_seed_same_rows_in_any_mode(db):
    make(120, seed=11)
    fingerprint = digest()
    make(120, seed=11, fresh=True)
    assert digest() == fingerprint
    # the forked producer with small chunks writes exactly the same rows
    generator.wipe(get_engine())
    generator.generate(120, 11, now=NOW, chunk=25, parallel=True)
    assert digest() == fingerprint
    make(120, seed=12, fresh=True)
    assert digest() != fingerprint


@pytest.mark.parametrize("customers", [10])
def test_tiny_demo_still_has_every_role(db, customers):
    logins = make(customers)
    assert len(logins) == 10
    assert {role for _, role in logins} == {"admin", "manager", "sales", "support", "marketing",
                                            "analyst", "privacy_officer"}
    with session_scope(write=False) as s:
        assert count(s, Customer) == customers


def test_an_interrupted_generation_is_reported_not_mistaken_for_a_demo(db):
    make(30)
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE resource = 'demo'"))
    with pytest.raises(generator.DemoIncomplete):
        make(30)
    make(30, fresh=True)
    with session_scope(write=False) as s:
        assert count(s, Customer) == 30
