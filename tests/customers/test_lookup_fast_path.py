"""The search for one e-mail address or phone number (`lookup_customer_dicts`) takes a prepared
statement per kind of scope; it must give exactly the general list query's page, cursor and
errors, for every role's scope, merged profiles and page sizes."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import update

from accord.access import service as access
from accord.core.errors import ValidationProblem
from accord.core.query import parse_list_params
from accord.customers import service
from accord.customers.schemas import CustomerCreate
from accord.models import Customer, User

SHARED = "shared.household@example.com"


@pytest.fixture
def people(session, make_actor):
    """Five customers share one address and a phone number, spread over owners and teams; one
    of them is merged into another (never listed)."""
    north, south = make_actor("sales", team="North"), make_actor("sales", team="South")
    loner = make_actor("sales")  # no team: reads only what it owns
    admin = make_actor("admin")
    ids = []
    for i, (owner, team) in enumerate([(north, north.team_id), (south, south.team_id),
                                       (loner, None), (north, north.team_id),
                                       (admin, None)]):
        customer = service.create_customer(session, admin.principal, CustomerCreate(
            first_name=f"P{i}", last_name="Household",
            emails=[{"email": SHARED}, {"email": f"p{i}@example.com", "is_primary": True}],
            phones=[{"phone": "+49 30 1234567"}], date_of_birth="1980-01-0" + str(i + 1)))
        session.execute(update(Customer).where(Customer.id == customer.id)
                        .values(owner_id=owner.id, team_id=team))
        ids.append(customer.id)
    session.execute(update(Customer).where(Customer.id == ids[3]).values(merged_into_id=ids[0]))
    session.commit()
    return {"north": north, "south": south, "loner": loner, "admin": admin,
            "support": make_actor("support"), "ids": ids}


def _both(session, principal, field: str, value: str, extra: dict[str, str] | None = None):
    spec = service.list_spec(session, principal)
    params = parse_list_params({field: value, **(extra or {})}, spec,
                               hidden=service.hidden(principal), default_limit=50,
                               max_limit=500)
    fast = service.lookup_customer_dicts(session, principal, params, field, value, spec)
    general = service.list_customer_dicts(session, principal, params, spec)
    return fast, general


@pytest.mark.parametrize("who", ["admin", "north", "south", "loner", "support"])
@pytest.mark.parametrize(("field", "value"), [
    ("email", "Shared.Household@EXAMPLE.com"), ("email", "p2@example.com"),
    ("email", "nobody@example.com"), ("phone", "+49 (30) 123 4567"), ("phone", "+4930999999"),
])
@pytest.mark.parametrize("limit", ["1", "2", "50"])
def test_the_lookup_gives_the_general_querys_page(session, people, prepared, who, field, value,
                                                  limit):
    fast, general = _both(session, people[who].principal, field, value, {"limit": limit})
    assert fast == general
    shape = {"admin": "all", "support": "all", "loner": "own"}.get(who, "team")
    assert prepared == [(field, shape)]  # the prepared statement answered, not a fallback


@pytest.fixture
def prepared(monkeypatch) -> list[tuple[str, str]]:
    """The prepared statements the lookups took."""
    taken: list[tuple[str, str]] = []
    original = service._lookup_page

    def spy(field: str, shape: str):
        taken.append((field, shape))
        return original(field, shape)

    monkeypatch.setattr(service, "_lookup_page", spy)
    return taken


def test_scopes_and_merges_shape_the_answer(session, people):
    ids = people["ids"]

    def found(who: str) -> list[int]:
        items, _ = _both(session, people[who].principal, "email", SHARED)[0]
        return [c["id"] for c in items]

    assert found("admin") == [ids[4], ids[2], ids[1], ids[0]]  # newest first, merged left out
    assert found("north") == [ids[0]]  # the team's (the merged one is the team's too)
    assert found("south") == [ids[1]]
    assert found("loner") == [ids[2]]  # no team: its own
    (items, _), _ = _both(session, people["support"].principal, "email", SHARED)
    assert items and all("date_of_birth" not in c and "date_of_birth" in c["masked_fields"]
                         for c in items)  # masked for support
    (items, _), _ = _both(session, people["admin"].principal, "email", SHARED)
    assert {c["date_of_birth"] for c in items} == {date(1980, 1, d) for d in (1, 2, 3, 5)}


def test_pages_follow_on_with_the_cursor(session, people):
    principal = people["admin"].principal
    (first, cursor), general = _both(session, principal, "email", SHARED, {"limit": "3"})
    assert (first, cursor) == general and cursor
    (rest, end), general = _both(session, principal, "email", SHARED,
                                 {"limit": "3", "cursor": cursor})
    assert (rest, end) == general and end is None
    assert [c["id"] for c in first + rest] == [
        people["ids"][i] for i in (4, 2, 1, 0)]


def test_the_lookup_builds_no_filter_sql(session, people):
    """The prepared statement needs only the value: the general query's clauses stay unbuilt."""
    principal = people["admin"].principal
    spec = service.list_spec(session, principal)
    params = parse_list_params({"email": SHARED}, spec, hidden=set(), default_limit=50,
                               max_limit=500)
    items, _ = service.lookup_customer_dicts(session, principal, params, "email", SHARED, spec)
    assert len(items) == 4
    assert "where" not in vars(params)  # `ListParams.where` is built on first use


def test_another_order_takes_the_general_query(session, people, prepared):
    fast, general = _both(session, people["admin"].principal, "email", SHARED,
                          {"sort": "id"})  # ascending: not the default order
    assert fast == general and len(fast[0]) == 4
    assert prepared == []


def test_bad_values_are_refused_alike(session, people):
    principal = people["admin"].principal
    for field, value, valid in (("email", "not-an-address", SHARED),
                                ("phone", "12", "+49 30 1234567")):
        spec = service.list_spec(session, principal)
        with pytest.raises(ValidationProblem) as general:
            parse_list_params({field: value}, spec, hidden=set(), default_limit=50,
                              max_limit=500)
        # the fast path's own normalising of the value refuses it the same way
        params = parse_list_params({field: valid}, spec, hidden=set(), default_limit=50,
                                   max_limit=500)
        with pytest.raises(ValidationProblem) as fast:
            service.lookup_customer_dicts(session, principal, params, field, value, spec)
        assert (fast.value.field, fast.value.detail) == (general.value.field,
                                                         general.value.detail) == (
            field, general.value.detail)


def test_a_user_without_an_id_reads_nothing_by_either_path(session, people):
    principal = access.principal_for(session.get(User, people["loner"].id))
    principal = type(principal)(**{**principal.__dict__, "user_id": None})
    fast, general = _both(session, principal, "email", SHARED)
    assert fast == general == ([], None)
