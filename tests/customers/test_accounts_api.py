"""Accounts (organisations) and their contacts over HTTP: CRUD, ownership, validation, record
scope, concurrency, filters and pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from accord.core import db as dbmod
from accord.models import Account, AuditEntry, Contact, OutboxEvent


def account(client, actor, name: str = "Acme Ltd", **body: Any):
    return client.post("/api/v1/accounts", json={"name": name, **body}, headers=actor.headers)


def contact(client, actor, aid: int, **body: Any):
    payload = {"first_name": "Bob", "last_name": "Stone", **body}
    return client.post(f"/api/v1/accounts/{aid}/contacts", json=payload, headers=actor.headers)


def counts(db: str) -> tuple[int, int, int, int]:
    """Accounts, contacts, outbox events and audit rows of changes (refusals, reads left out)."""
    with dbmod.session_factory(db)() as s:
        return (
            s.scalar(select(func.count()).select_from(Account)),
            s.scalar(select(func.count()).select_from(Contact)),
            s.scalar(select(func.count()).select_from(OutboxEvent)),
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action.not_in(("denied", "read")))
            ),
        )


@pytest.fixture
def teams(make_actor):
    """Two sales users in team A (a1 creates and so owns) and one in team B."""
    return (
        make_actor("sales", team="A"),
        make_actor("sales", team="A"),
        make_actor("sales", team="B"),
    )


# --- accounts ----------------------------------------------------------------------------------


def test_account_crud_and_ownership(client, db, teams):
    a1, _a2, _b = teams
    r = account(
        client,
        a1,
        "  Société Générale ",
        domain="Societe-Generale.FR.",
        country="fr",
        industry="Banking",
        employees=117_000,
        annual_revenue="25000000000.50", annual_revenue_currency="eur",
        value_tier="platinum",
    )
    assert r.status_code == 201, r.text
    acc = r.json()
    assert (acc["name"], acc["domain"], acc["country"]) == (
        "Société Générale",
        "societe-generale.fr",
        "FR",
    )
    assert acc["annual_revenue"] == "25000000000.50"
    assert acc["annual_revenue_currency"] == "EUR"
    assert (acc["owner_id"], acc["team_id"]) == (a1.id, a1.team_id)
    assert r.headers["ETag"] == '"1"' and r.headers["Location"] == f"/api/v1/accounts/{acc['id']}"
    with dbmod.session_factory(db)() as s:
        assert s.get(Account, acc["id"]).name_key == "societe generale"

    url = f"/api/v1/accounts/{acc['id']}"
    r = client.get(url, headers=a1.headers)
    assert r.status_code == 200 and r.headers["ETag"] == '"1"' and r.json() == acc

    r = client.patch(
        url, json={"name": "SG Group", "industry": None}, headers={**a1.headers, "If-Match": '"1"'}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["industry"], r.json()["version"]) == ("SG Group", None, 2)
    assert r.headers["ETag"] == '"2"'
    found = client.get("/api/v1/accounts?name__prefix=sg", headers=a1.headers).json()["items"]
    assert [a["id"] for a in found] == [acc["id"]]

    with dbmod.session_factory(db)() as s:
        types = [
            t
            for t in s.execute(select(OutboxEvent.type).order_by(OutboxEvent.id)).scalars()
            if t.startswith("account.")
        ]
    assert types == ["account.created", "account.updated"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"owner_id": 1}, "owner_id"),
        ({"team_id": 1}, "team_id"),
        ({"name_key": "x"}, "name_key"),
        ({"version": 4}, "version"),
        ({"name": ""}, "name"),
        ({"country": "XX"}, "country"),
        ({"domain": "not a domain"}, "domain"),
        ({"domain": "http://example.com/path"}, "domain"),
        ({"employees": -1}, "employees"),
        ({"annual_revenue": "1.234"}, "annual_revenue"),
        ({"annual_revenue": "1000"}, "annual_revenue_currency"),
        ({"annual_revenue": "1000", "annual_revenue_currency": "EURO"}, "annual_revenue_currency"),
        ({"value_tier": "diamond"}, "value_tier"),
    ],
)
def test_account_validation(client, admin, db, body, field):
    before = counts(db)
    r = client.post("/api/v1/accounts", json={"name": "Acme", **body}, headers=admin.headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field
    assert counts(db) == before


def test_account_update_refuses_read_only_and_null_name(client, admin):
    aid = account(client, admin).json()["id"]
    for body, field in [
        ({"owner_id": admin.id}, "owner_id"),
        ({"name": None}, "name"),
        ({"team_id": None}, "team_id"),
    ]:
        r = client.patch(
            f"/api/v1/accounts/{aid}", json=body, headers={**admin.headers, "If-Match": '"1"'}
        )
        assert r.status_code == 422 and r.json()["field"] == field


def test_account_if_match(client, admin, db):
    aid = account(client, admin).json()["id"]
    url = f"/api/v1/accounts/{aid}"
    assert client.patch(url, json={"name": "B"}, headers=admin.headers).status_code == 428
    assert client.delete(url, headers=admin.headers).status_code == 428
    assert (
        client.patch(
            url, json={"name": "B"}, headers={**admin.headers, "If-Match": '"1"'}
        ).status_code
        == 200
    )
    before = counts(db)
    assert (
        client.patch(
            url, json={"name": "C"}, headers={**admin.headers, "If-Match": '"1"'}
        ).status_code
        == 412
    )
    assert client.delete(url, headers={**admin.headers, "If-Match": '"1"'}).status_code == 412
    assert counts(db) == before
    assert client.delete(url, headers={**admin.headers, "If-Match": '"2"'}).status_code == 204
    assert client.get(url, headers=admin.headers).status_code == 404


def test_account_idempotent_post(client, admin, db):
    headers = {**admin.headers, "Idempotency-Key": "acct-1"}
    first = client.post("/api/v1/accounts", json={"name": "Once"}, headers=headers)
    again = client.post("/api/v1/accounts", json={"name": "Once"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert counts(db)[0] == 1


def test_account_scope(client, db, teams, make_actor):
    a1, a2, b = teams
    aid = account(client, a1).json()["id"]
    b_aid = account(client, b, "Beta").json()["id"]
    analyst = make_actor("analyst")
    before = counts(db)
    # other team: not found, whatever the verb
    assert client.get(f"/api/v1/accounts/{aid}", headers=b.headers).status_code == 404
    assert (
        client.patch(
            f"/api/v1/accounts/{aid}", json={"name": "x"}, headers={**b.headers, "If-Match": '"1"'}
        ).status_code
        == 404
    )
    assert (
        client.delete(
            f"/api/v1/accounts/{aid}", headers={**b.headers, "If-Match": '"1"'}
        ).status_code
        == 404
    )
    assert [a["id"] for a in client.get("/api/v1/accounts", headers=b.headers).json()["items"]] == [
        b_aid
    ]
    assert client.get(f"/api/v1/accounts?owner_id={a1.id}", headers=b.headers).json()["items"] == []
    # same team: readable, not writable (sales updates its own records only)
    assert client.get(f"/api/v1/accounts/{aid}", headers=a2.headers).status_code == 200
    assert (
        client.patch(
            f"/api/v1/accounts/{aid}", json={"name": "x"}, headers={**a2.headers, "If-Match": '"1"'}
        ).status_code
        == 403
    )
    assert (
        client.delete(
            f"/api/v1/accounts/{aid}", headers={**a1.headers, "If-Match": '"1"'}
        ).status_code
        == 403
    )
    assert account(client, analyst).status_code == 403
    assert counts(db) == before
    assert {
        a["id"] for a in client.get("/api/v1/accounts", headers=analyst.headers).json()["items"]
    } == {aid, b_aid}


def test_account_filters_and_pagination(client, admin, db):
    names = ["Ärzte Verbund", "Acme", "acme labs", "Beta", "Cobalt", "Delta", "Echo", "Foxtrot"]
    ids = {}
    for i, name in enumerate(names):
        ids[name] = account(
            client,
            admin,
            name,
            country="DE" if i % 2 else "GB",
            industry="Retail" if i < 4 else "Energy",
        ).json()["id"]
    old = datetime(2020, 1, 1, tzinfo=UTC)
    with dbmod.session_scope(db) as s:
        s.get(Account, ids["Foxtrot"]).created_at = old

    def names_for(query: str) -> list[str]:
        r = client.get(f"/api/v1/accounts?{query}", headers=admin.headers)
        assert r.status_code == 200, r.text
        return [a["name"] for a in r.json()["items"]]

    assert names_for("name__prefix=ac") == ["Acme", "acme labs"]
    assert names_for("name__prefix=arz") == ["Ärzte Verbund"]
    assert names_for("name=ACME") == ["Acme"]
    assert names_for("q=acme") == ["Acme", "acme labs"]
    assert names_for("country=DE") == ["Acme", "Beta", "Delta", "Foxtrot"]
    assert names_for("industry=Energy&country=GB") == ["Cobalt", "Echo"]
    assert names_for(f"owner_id={admin.id}&sort=id") == names
    assert names_for("created_at__lt=2021-01-01T00:00:00Z") == ["Foxtrot"]
    assert names_for(
        f"created_at__gte={(old + timedelta(days=1)).isoformat().replace('+', '%2B')}"
        "&industry=Energy"
    ) == ["Cobalt", "Delta", "Echo"]
    for query, field in [
        ("name__gt=a", "name__gt"),
        ("owner=1", "owner"),
        ("sort=domain", "sort"),
        ("country__prefix=D", "country__prefix"),
    ]:
        r = client.get(f"/api/v1/accounts?{query}", headers=admin.headers)
        assert r.status_code == 422 and r.json()["field"] == field

    expected = sorted(
        names, key=lambda n: ("arzte verbund" if n.startswith("Ä") else n.lower(), ids[n])
    )
    for sort, want in [("name", expected), ("-name", expected[::-1]), ("-created_at", None)]:
        seen, cursor = [], None
        while True:
            page = client.get(
                f"/api/v1/accounts?sort={sort}&limit=3" + (f"&cursor={cursor}" if cursor else ""),
                headers=admin.headers,
            ).json()
            seen += [a["name"] for a in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        if want is not None:
            assert seen == want
        assert sorted(seen) == sorted(names)


# --- contacts ----------------------------------------------------------------------------------


def test_contact_crud_and_normalisation(client, admin, db):
    aid = account(client, admin, country="GB").json()["id"]
    cust = client.post(
        "/api/v1/customers", json={"first_name": "Bob", "last_name": "Stone"}, headers=admin.headers
    ).json()["id"]
    r = contact(
        client,
        admin,
        aid,
        email="  Bob.Stone@Example.COM ",
        phone="020 7946 0018",
        job_title="CFO",
        customer_id=cust,
        is_primary=True,
    )
    assert r.status_code == 201, r.text
    c = r.json()
    assert (c["email"], c["phone"], c["account_id"], c["customer_id"]) == (
        "bob.stone@example.com",
        "+442079460018",
        aid,
        cust,
    )
    assert r.headers["Location"] == f"/api/v1/contacts/{c['id']}"

    r = client.get(f"/api/v1/contacts/{c['id']}", headers=admin.headers)
    assert r.status_code == 200 and r.headers["ETag"] == '"1"' and r.json() == c

    r = client.patch(
        f"/api/v1/contacts/{c['id']}",
        json={"phone": "+49 30 901820", "customer_id": None},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["phone"], r.json()["customer_id"], r.json()["version"]) == (
        "+4930901820",
        None,
        2,
    )

    # a second primary contact demotes the first
    second = contact(client, admin, aid, first_name="Ann", is_primary=True).json()
    first = client.get(f"/api/v1/contacts/{c['id']}", headers=admin.headers).json()
    assert second["is_primary"] is True and first["is_primary"] is False and first["version"] == 3

    listed = client.get(f"/api/v1/accounts/{aid}/contacts", headers=admin.headers).json()["items"]
    assert [x["id"] for x in listed] == [c["id"], second["id"]]
    assert [
        x["id"]
        for x in client.get(
            f"/api/v1/accounts/{aid}/contacts?email=BOB.STONE@example.com", headers=admin.headers
        ).json()["items"]
    ] == [c["id"]]
    assert [
        x["id"]
        for x in client.get(
            f"/api/v1/accounts/{aid}/contacts?is_primary=true", headers=admin.headers
        ).json()["items"]
    ] == [second["id"]]

    assert (
        client.delete(
            f"/api/v1/contacts/{c['id']}", headers={**admin.headers, "If-Match": '"2"'}
        ).status_code
        == 412
    )
    assert (
        client.delete(
            f"/api/v1/contacts/{c['id']}", headers={**admin.headers, "If-Match": '"3"'}
        ).status_code
        == 204
    )
    assert client.get(f"/api/v1/contacts/{c['id']}", headers=admin.headers).status_code == 404

    with dbmod.session_factory(db)() as s:
        types = [
            t
            for t in s.execute(select(OutboxEvent.type).order_by(OutboxEvent.id)).scalars()
            if t.startswith("contact.")
        ]
    assert types == ["contact.created", "contact.updated", "contact.created", "contact.deleted"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"phone": "+44 20 0000"}, "phone"),
        ({"first_name": "", "last_name": ""}, "body"),
        ({"account_id": 1}, "account_id"),
        ({"id": 1}, "id"),
        ({"customer_id": 999_999}, "customer_id"),
    ],
)
def test_contact_validation(client, admin, db, body, field):
    aid = account(client, admin).json()["id"]
    before = counts(db)
    r = contact(client, admin, aid, **body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert counts(db) == before


def test_contact_update_validation(client, admin):
    aid = account(client, admin).json()["id"]
    cid = contact(client, admin, aid).json()["id"]
    for body, field in [
        ({"first_name": "", "last_name": ""}, "last_name"),
        ({"first_name": None}, "first_name"),
        ({"email": "nope"}, "email"),
        ({"phone": "123"}, "phone"),
        ({"account_id": aid}, "account_id"),
    ]:
        r = client.patch(
            f"/api/v1/contacts/{cid}", json=body, headers={**admin.headers, "If-Match": '"1"'}
        )
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field
    assert (
        client.patch(
            f"/api/v1/contacts/{cid}", json={"job_title": "CEO"}, headers=admin.headers
        ).status_code
        == 428
    )


def test_contact_scope_follows_the_account(client, db, teams):
    a1, a2, b = teams
    aid = account(client, a1).json()["id"]
    cid = contact(client, a1, aid).json()["id"]
    b_customer = client.post(
        "/api/v1/customers", json={"first_name": "Hidden"}, headers=b.headers
    ).json()["id"]
    before = counts(db)
    assert client.get(f"/api/v1/contacts/{cid}", headers=b.headers).status_code == 404
    assert client.get(f"/api/v1/accounts/{aid}/contacts", headers=b.headers).status_code == 404
    assert contact(client, b, aid).status_code == 404
    assert (
        client.patch(
            f"/api/v1/contacts/{cid}",
            json={"job_title": "x"},
            headers={**b.headers, "If-Match": '"1"'},
        ).status_code
        == 404
    )
    # a team mate reads and adds contacts, but may not edit a1's (sales: update own)
    assert client.get(f"/api/v1/contacts/{cid}", headers=a2.headers).status_code == 200
    assert (
        client.patch(
            f"/api/v1/contacts/{cid}",
            json={"job_title": "x"},
            headers={**a2.headers, "If-Match": '"1"'},
        ).status_code
        == 403
    )
    # linking to a customer the caller cannot read is refused as if it did not exist
    r = contact(client, a1, aid, customer_id=b_customer)
    assert r.status_code == 422 and r.json()["field"] == "customer_id"
    assert counts(db) == before
    assert contact(client, a2, aid, first_name="Team").status_code == 201


def test_deleting_an_account_removes_its_contacts(client, admin, db):
    aid = account(client, admin).json()["id"]
    ids = [contact(client, admin, aid, first_name=f"P{i}").json()["id"] for i in range(3)]
    assert (
        client.delete(
            f"/api/v1/accounts/{aid}", headers={**admin.headers, "If-Match": '"1"'}
        ).status_code
        == 204
    )
    for cid in ids:
        assert client.get(f"/api/v1/contacts/{cid}", headers=admin.headers).status_code == 404
    with dbmod.session_factory(db)() as s:
        entry = s.execute(
            select(AuditEntry).where(
                AuditEntry.resource == "accounts", AuditEntry.action == "delete"
            )
        ).scalar_one()
    assert entry.detail == {"contacts": 3}


def test_contact_pagination(client, admin):
    aid = account(client, admin).json()["id"]
    ids = [contact(client, admin, aid, last_name=f"L{i % 3}").json()["id"] for i in range(8)]
    for sort, want in [
        ("id", ids),
        ("-id", ids[::-1]),
        ("last_name", sorted(ids, key=lambda i: (f"L{ids.index(i) % 3}", i))),
    ]:
        seen, cursor = [], None
        while True:
            page = client.get(
                f"/api/v1/accounts/{aid}/contacts?sort={sort}&limit=3"
                + (f"&cursor={cursor}" if cursor else ""),
                headers=admin.headers,
            ).json()
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == want
