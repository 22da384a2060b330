"""Users, teams, API tokens and web sessions over the REST API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from accord.access import service
from accord.access.deps import CSRF_HEADER, SESSION_COOKIE
from accord.access.passwords import digest
from accord.access.policy import ROLES, can
from accord.core.clock import utcnow
from accord.core.db import session_scope
from accord.models import ApiToken, User, WebSession
from tests.access.helpers import assert_problem, count, snapshot

USER = {
    "email": "New.User@Example.com",
    "full_name": "New User",
    "password": "a long passphrase",
    "role": "sales",
}


def test_admin_user_crud(db, client, admin):
    h = admin.headers
    r = client.post("/api/v1/teams", json={"name": "North"}, headers=h)
    assert r.status_code == 201
    team_id = r.json()["id"]
    r = client.post("/api/v1/users", json={**USER, "team_id": team_id}, headers=h)
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["email"] == "new.user@example.com" and user["team_id"] == team_id
    assert "password" not in user and "password_hash" not in user
    uid = user["id"]
    assert client.post("/api/v1/users", json=USER, headers=h).status_code == 409

    r = client.get(f"/api/v1/users/{uid}", headers=h)
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'
    r = client.patch(
        f"/api/v1/users/{uid}", json={"role": "manager"}, headers={**h, "If-Match": '"1"'}
    )
    assert r.status_code == 200 and r.json()["role"] == "manager"
    assert_problem(
        client.patch(
            f"/api/v1/users/{uid}", json={"role": "root"}, headers={**h, "If-Match": '"2"'}
        ),
        422,
        "role",
    )
    assert_problem(
        client.patch(
            f"/api/v1/users/{uid}", json={"team_id": 9999}, headers={**h, "If-Match": '"2"'}
        ),
        422,
        "team_id",
    )
    assert_problem(client.patch(f"/api/v1/users/{uid}", json={"full_name": "X"}, headers=h), 428)
    emails = [u["email"] for u in client.get("/api/v1/users", headers=h).json()]
    assert "new.user@example.com" in emails

    assert client.delete(f"/api/v1/users/{uid}", headers=h).status_code == 204
    assert client.get(f"/api/v1/users/{uid}", headers=h).json()["is_active"] is False
    assert_problem(client.delete(f"/api/v1/users/{admin.id}", headers=h), 409)
    assert_problem(client.get("/api/v1/users/99999", headers=h), 404)


def test_passwords_are_argon2_hashed(db, client, admin):
    r = client.post("/api/v1/users", json=USER, headers=admin.headers)
    with session_scope(db) as s:
        user = s.get(User, r.json()["id"])
        assert user.password_hash.startswith("$argon2id$")
        assert USER["password"] not in user.password_hash
        assert service.authenticate(s, "NEW.USER@example.com", USER["password"]) is not None
        assert service.authenticate(s, "new.user@example.com", "wrong password!") is None
        assert service.authenticate(s, "nobody@example.com", USER["password"]) is None
    r = client.patch(
        f"/api/v1/users/{user.id}",
        json={"password": "another long one"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert r.status_code == 200
    with session_scope(db) as s:
        assert service.authenticate(s, USER["email"], "another long one") is not None
        assert service.authenticate(s, USER["email"], USER["password"]) is None


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
def test_non_admins_cannot_manage_users_or_teams(role, db, client, make_actor):
    actor = make_actor(role, team="alpha")
    h = actor.headers
    victim = make_actor("sales", team="alpha")
    before = snapshot(db)
    assert_problem(client.post("/api/v1/users", json=USER, headers=h), 403)
    assert_problem(
        client.patch(
            f"/api/v1/users/{victim.id}", json={"role": "admin"}, headers={**h, "If-Match": '"1"'}
        ),
        403,
    )
    # not even themself: a role is never self-assigned
    assert_problem(
        client.patch(
            f"/api/v1/users/{actor.id}", json={"role": "admin"}, headers={**h, "If-Match": '"1"'}
        ),
        403,
    )
    assert_problem(client.delete(f"/api/v1/users/{victim.id}", headers=h), 403)
    assert_problem(client.post("/api/v1/teams", json={"name": "Rogue"}, headers=h), 403)
    team_id = actor.team_id
    assert_problem(
        client.patch(
            f"/api/v1/teams/{team_id}", json={"name": "Renamed"}, headers={**h, "If-Match": '"1"'}
        ),
        403,
    )
    assert_problem(client.delete(f"/api/v1/teams/{team_id}", headers={**h, "If-Match": '"1"'}), 403)
    assert snapshot(db) == before
    # reads follow the policy
    r = client.get("/api/v1/users", headers=h)
    assert r.status_code == (200 if can(actor.principal, "users", "read") else 403)
    assert client.get("/api/v1/me", headers=h).json()["id"] == actor.id


def test_team_crud(db, client, admin):
    h = admin.headers
    r = client.post("/api/v1/teams", json={"name": "South", "description": "d"}, headers=h)
    tid = r.json()["id"]
    assert client.post("/api/v1/teams", json={"name": "South"}, headers=h).status_code == 409
    r = client.patch(
        f"/api/v1/teams/{tid}", json={"description": "e"}, headers={**h, "If-Match": '"1"'}
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    assert (
        client.delete(f"/api/v1/teams/{tid}", headers={**h, "If-Match": '"2"'}).status_code == 204
    )
    assert_problem(client.get(f"/api/v1/teams/{tid}", headers=h), 404)


def test_deactivated_users_token_and_session_stop_working(db, client, admin, make_actor):
    sales = make_actor("sales")
    cookie = _login(db, sales.id)
    assert client.get("/api/v1/me", headers=sales.headers).status_code == 200
    assert client.delete(f"/api/v1/users/{sales.id}", headers=admin.headers).status_code == 204
    assert_problem(client.get("/api/v1/me", headers=sales.headers), 401)
    client.cookies.set(SESSION_COOKIE, cookie)
    assert_problem(client.get("/api/v1/me"), 401)


def test_revoked_and_expired_tokens_are_401(db, client, make_actor):
    a = make_actor("admin")
    b = make_actor("admin")
    with session_scope(db) as s:
        token_a = s.execute(select(ApiToken).where(ApiToken.user_id == a.id)).scalar_one()
        token_b_id = s.execute(select(ApiToken.id).where(ApiToken.user_id == b.id)).scalar_one()
    r = client.get("/api/v1/tokens", headers=a.headers)
    assert [t["id"] for t in r.json()] == [token_a.id]
    assert "token" not in r.json()[0] and "token_hash" not in r.json()[0]
    assert client.delete(f"/api/v1/tokens/{token_a.id}", headers=a.headers).status_code == 204
    r = client.get("/api/v1/me", headers=a.headers)
    assert_problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")

    with session_scope(db) as s:
        s.execute(
            update(ApiToken)
            .where(ApiToken.id == token_b_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert_problem(client.get("/api/v1/me", headers=b.headers), 401)


def test_users_cannot_revoke_each_others_tokens(db, client, make_actor):
    a = make_actor("sales")
    b = make_actor("sales")
    with session_scope(db) as s:
        token_b = s.execute(select(ApiToken.id).where(ApiToken.user_id == b.id)).scalar_one()
    assert_problem(client.delete(f"/api/v1/tokens/{token_b}", headers=a.headers), 404)
    assert client.get("/api/v1/me", headers=b.headers).status_code == 200


def _login(db, user_id: int, hours: int = 1) -> str:
    with session_scope(db) as s:
        cookie, _csrf = service.start_session(s, s.get(User, user_id), hours)
    return cookie


def _csrf(db, cookie: str) -> str:
    with session_scope(db) as s:
        return s.get(WebSession, digest(cookie)).csrf_token


def test_token_secret_shown_once_and_only_its_hash_stored(db, client, make_actor):
    user = make_actor("sales")
    cookie = _login(db, user.id)
    client.cookies.set(SESSION_COOKIE, cookie)
    csrf = _csrf(db, cookie)
    r = client.post(
        "/api/v1/tokens",
        json={"name": "ci", "scopes": ["customers:read"]},
        headers={CSRF_HEADER: csrf},
    )
    assert r.status_code == 201, r.text
    secret = r.json()["token"]
    assert secret.startswith("acc_") and r.json()["prefix"] == secret[:10]
    with session_scope(db) as s:
        row = s.get(ApiToken, r.json()["id"])
        assert row.token_hash == digest(secret) and secret not in (row.token_hash, row.prefix)
    listed = client.get("/api/v1/tokens").json()
    assert all("token" not in t for t in listed)
    client.cookies.clear()
    # the new token works, within its scopes
    h = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/customers", headers=h).status_code == 200
    assert_problem(client.post("/api/v1/customers", json={"first_name": "X"}, headers=h), 403)


def test_tokens_cannot_mint_tokens(db, client, admin):
    before = count(db, "api_tokens")
    assert_problem(client.post("/api/v1/tokens", json={"name": "x"}, headers=admin.headers), 403)
    assert count(db, "api_tokens") == before


@pytest.mark.parametrize("scopes", [["customers:admin"], ["nothing:read"], ["customers"]])
def test_unknown_token_scopes_are_refused(scopes, db, client, make_actor):
    user = make_actor("sales")
    cookie = _login(db, user.id)
    client.cookies.set(SESSION_COOKIE, cookie)
    r = client.post(
        "/api/v1/tokens",
        json={"name": "x", "scopes": scopes},
        headers={CSRF_HEADER: _csrf(db, cookie)},
    )
    assert_problem(r, 422, "scopes")


def test_cookie_session_needs_csrf_for_writes(db, client, make_actor):
    user = make_actor("admin")
    cookie = _login(db, user.id)
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get("/api/v1/customers").status_code == 200
    before = snapshot(db)
    for headers in ({}, {CSRF_HEADER: "wrong"}, {CSRF_HEADER: ""}):
        r = client.post("/api/v1/customers", json={"first_name": "Csrf"}, headers=headers)
        assert_problem(r, 403, CSRF_HEADER)
    assert snapshot(db) == before
    r = client.post(
        "/api/v1/customers", json={"first_name": "Csrf"}, headers={CSRF_HEADER: _csrf(db, cookie)}
    )
    assert r.status_code == 201, r.text
    # another session's CSRF token does not fit this session
    other = _login(db, make_actor("admin").id)
    r = client.post(
        "/api/v1/customers", json={"first_name": "Csrf"}, headers={CSRF_HEADER: _csrf(db, other)}
    )
    assert_problem(r, 403, CSRF_HEADER)


def test_expired_session_is_401(db, client, make_actor):
    user = make_actor("admin")
    cookie = _login(db, user.id)
    with session_scope(db) as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    client.cookies.set(SESSION_COOKIE, cookie)
    assert_problem(client.get("/api/v1/customers"), 401)


def test_session_stores_only_the_cookie_hash(db, make_actor):
    user = make_actor("sales")
    cookie = _login(db, user.id)
    with session_scope(db) as s:
        ids = list(s.execute(select(WebSession.id)).scalars())
    assert ids == [digest(cookie)] and cookie not in ids
