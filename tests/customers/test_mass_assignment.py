"""Mass assignment and identity: read-only or unknown properties are refused (422 naming them),
and who is acting comes only from the token or session, never from parameters or headers."""

from __future__ import annotations

from sqlalchemy import text

from accord.core import db as dbmod
from tests.access.helpers import assert_problem, audit_actions, count, seed_customer, snapshot

READ_ONLY = {
    "id": 99,
    "owner_id": 1,
    "team_id": 1,
    "version": 7,
    "created_at": "2020-01-01T00:00:00Z",
    "updated_at": "2020-01-01T00:00:00Z",
    "created_by": 1,
    "role": "admin",
    "masked_fields": [],
    "display_name": "X",
    "name_key": "x",
    "lifetime_value": "1000000",
    "is_admin": True,
    "consent_status": "granted",
}


def test_create_and_update_refuse_read_only_fields(db, client, admin):
    cid = seed_customer(db, admin.id)
    before = snapshot(db)
    for name, value in sorted(READ_ONLY.items()):
        r = client.post(
            "/api/v1/customers", json={"first_name": "Eve", name: value}, headers=admin.headers
        )
        assert_problem(r, 422, field=name)
        r = client.patch(
            f"/api/v1/customers/{cid}",
            json={name: value},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        assert_problem(r, 422, field=name)
    assert snapshot(db) == before


NESTED = [
    ("emails.0.owner_id", {"emails": [{"email": "a@example.com", "owner_id": 1}]}),
    ("phones.0.customer_id", {"phones": [{"phone": "+442079460018", "customer_id": 1}]}),
    ("addresses.0.id", {"addresses": [{"line1": "x", "city": "y", "country": "GB", "id": 3}]}),
]


def test_nested_unknown_fields(db, client, admin):
    for path, body in NESTED:
        r = client.post(
            "/api/v1/customers", json={"first_name": "Eve", **body}, headers=admin.headers
        )
        assert_problem(r, 422, field=path)


def test_user_and_team_bodies_forbid_extra(db, client, admin):
    r = client.post(
        "/api/v1/users",
        json={
            "email": "x@example.com",
            "full_name": "X",
            "password": "long enough pw",
            "role": "sales",
            "id": 5,
            "is_active": True,
        },
        headers=admin.headers,
    )
    assert r.status_code == 422 and r.json()["field"] in ("id", "is_active")
    r = client.post("/api/v1/teams", json={"name": "t", "version": 3}, headers=admin.headers)
    assert_problem(r, 422, field="version")


def test_identity_params_on_lists_are_unknown_filters(db, client, make_actor):
    sales = make_actor("sales", team="alpha")
    for param in ("user", "as_user", "actor", "user_id", "impersonate"):
        r = client.get("/api/v1/customers", params={param: "1"}, headers=sales.headers)
        assert_problem(r, 422, field=param)


def test_identity_tricks_never_change_the_actor(db, client, make_actor):
    """`?as_user=`, `?owner_id=` and identity-looking headers on a POST are ignored."""
    admin = make_actor("admin", team="alpha")
    sales = make_actor("sales", team="beta")
    tricks = {
        "X-User-Id": str(admin.id),
        "X-As-User": str(admin.id),
        "X-Forwarded-User": admin.email,
        "X-Remote-User": admin.email,
        "X-Role": "admin",
    }
    r = client.post(
        f"/api/v1/customers?as_user={admin.id}&user={admin.id}&owner_id={admin.id}"
        f"&team_id={admin.team_id}",
        json={"first_name": "Mine"},
        headers={**sales.headers, **tricks},
    )
    assert r.status_code == 201, r.text
    assert r.json()["owner_id"] == sales.id and r.json()["team_id"] == sales.team_id
    assert audit_actions(db)[-1][:2] == ("create", "customers")

    # A customer out of the sales user's scope stays unreachable whatever the parameters say.
    theirs = seed_customer(db, admin.id, admin.team_id)
    r = client.get(
        f"/api/v1/customers/{theirs}?as_user={admin.id}&user={admin.id}",
        headers={**sales.headers, **tricks},
    )
    assert_problem(r, 404)
    r = client.patch(
        f"/api/v1/customers/{theirs}?as_user={admin.id}",
        json={"first_name": "X"},
        headers={**sales.headers, **tricks, "If-Match": '"1"'},
    )
    assert_problem(r, 404)
    # The audit trail names the real actor.
    with dbmod.get_engine(db).connect() as conn:
        actor_id = conn.execute(
            text(
                "SELECT actor_id FROM audit_log WHERE action = 'create' AND resource = 'customers' "
                "ORDER BY id LIMIT 1"
            )
        ).scalar()
    assert actor_id == sales.id


def test_owner_filter_does_not_widen_scope(db, client, make_actor):
    admin = make_actor("admin", team="alpha")
    sales = make_actor("sales", team="beta")
    seed_customer(db, admin.id, admin.team_id)
    r = client.get("/api/v1/customers", params={"owner_id": admin.id}, headers=sales.headers)
    assert r.status_code == 200 and r.json()["items"] == []
    assert count(db, "customers") == 1
