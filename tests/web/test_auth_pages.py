"""Login, logout, session cookies, login CSRF and redirects (no open redirect, no enumeration)."""

from __future__ import annotations

from typing import Any

import pytest

from accord.access import service as access
from accord.access.deps import SESSION_COOKIE
from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.core.settings import reset_settings
from accord.models import User, WebSession
from tests.web.conftest import login
from tests.web.seed import csrf_of, login_token_of

GENERIC = "The e-mail address or password is incorrect."


def _session_cookie_header(response: Any) -> str:
    found = [h for h in response.headers.get_list("set-cookie")
             if h.startswith(SESSION_COOKIE + "=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def _sessions(db: str) -> int:
    with dbmod.session_scope(db, write=False) as s:
        return s.query(WebSession).count()


def test_login_sets_a_hardened_session_cookie_and_follows_next(client, seeded, db) -> None:
    response = login(client, seeded.emails["support"], next_path="/customers?q=ada")
    assert response.status_code == 303
    assert response.headers["location"] == "/customers?q=ada"
    cookie = _session_cookie_header(response).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # ACCORD_COOKIE_SECURE is off in tests
    page = client.get("/customers")
    assert page.status_code == 200
    assert "Sam Support" in page.text and "Support" in page.text  # name and role in the nav
    assert _sessions(db) == 1


def test_cookie_is_secure_when_configured(app, seeded, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.setenv("ACCORD_COOKIE_SECURE", "true")
    reset_settings()
    try:
        with TestClient(app, base_url="https://testserver") as https:
            response = login(https, seeded.emails["support"])
        assert response.status_code == 303
        assert "; secure" in _session_cookie_header(response).lower()
    finally:
        monkeypatch.delenv("ACCORD_COOKIE_SECURE")
        reset_settings()


@pytest.mark.parametrize("email,password", [
    ("support@example.com", "wrong password!"),      # a real user, wrong password
    ("nobody@example.com", "correct horse battery"),  # no such user
])
def test_failed_login_is_generic(client, seeded, db, email: str, password: str) -> None:
    response = login(client, email, password)
    assert response.status_code == 401
    assert GENERIC in response.text
    assert not [h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)]
    assert _sessions(db) == 0
    assert client.get("/customers", follow_redirects=False).status_code == 303


def test_repeated_failures_are_throttled_per_account(client, seeded, db) -> None:
    from accord.web.auth import FAILURES_PER_ACCOUNT

    for _ in range(FAILURES_PER_ACCOUNT.limit):
        assert login(client, seeded.emails["support"], "wrong password!").status_code == 401
    # the right password is refused too while the account is throttled: guessing stops here
    blocked = login(client, seeded.emails["support"])
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert _sessions(db) == 0
    # another account from the same client is not locked out by these failures
    assert login(client, seeded.emails["admin"]).status_code == 303


def test_deactivated_user_cannot_log_in(client, seeded, db) -> None:
    with dbmod.session_scope(db) as s:
        user = s.query(User).filter_by(email=seeded.emails["support"]).one()
        access.delete_user(s, SYSTEM, user)
    response = login(client, seeded.emails["support"])
    assert response.status_code == 401 and GENERIC in response.text


def test_login_form_is_protected_against_login_csrf(client, app, seeded, db) -> None:
    from fastapi.testclient import TestClient

    data = {"email": seeded.emails["support"], "password": "correct horse battery"}
    # No token at all (a cross-site form post).
    response = client.post("/login", data=data, follow_redirects=False)
    assert response.status_code == 403
    # A token minted for another browser's nonce cookie (an attacker's own login page).
    with TestClient(app) as attacker:
        stolen = login_token_of(attacker.get("/login").text)
    client.get("/login")  # the victim has a nonce cookie of their own
    response = client.post("/login", data={**data, "login_token": stolen}, follow_redirects=False)
    assert response.status_code == 403
    assert _sessions(db) == 0


def test_logged_out_pages_redirect_to_login_with_next(client) -> None:
    response = client.get("/customers?q=ada&lifecycle_stage=loyalty", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/login?next=/customers%3Fq%3Dada%26lifecycle_stage%3Dloyalty")
    page = client.get(response.headers["location"])
    assert 'name="next" value="/customers?q=ada&amp;lifecycle_stage=loyalty"' in page.text
    # An HTMX request is told to navigate instead of swapping the login page into a table.
    response = client.get("/customers?q=a", headers={"HX-Request": "true"}, follow_redirects=False)
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/login?next=")
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")
    assert client.get("/admin/users", follow_redirects=False).status_code == 303


HOSTILE_NEXT = [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)",
    "http:/evil.example", "/\t/evil.example", "evil.example", "/login",
]


def test_next_never_leaves_the_site(client, seeded) -> None:
    for target in HOSTILE_NEXT:
        client.cookies.clear()
        page = client.get("/login", params={"next": target})
        assert 'name="next" value="/customers"' in page.text, target
        response = login(client, seeded.emails["support"], next_path=target)
        assert response.status_code == 303
        assert response.headers["location"] == "/customers", target
        # Already signed in: /login?next=... redirects, also only to a local path.
        response = client.get("/login", params={"next": target}, follow_redirects=False)
        assert response.headers["location"] == "/customers", target


def test_logout_needs_the_csrf_token_and_ends_the_session(client, seeded, db) -> None:
    login(client, seeded.emails["support"])
    cookie = client.cookies.get(SESSION_COOKIE)
    token = csrf_of(client.get("/customers").text)
    forged = client.post("/logout", follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/customers").status_code == 200  # still signed in
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert _sessions(db) == 0
    # Replaying the old cookie does not help: the session is gone on the server.
    client.cookies.set(SESSION_COOKIE, cookie, domain="testserver.local")
    assert client.get("/customers", follow_redirects=False).status_code == 303


def test_a_new_login_retires_the_previous_session(client, seeded, db) -> None:
    login(client, seeded.emails["support"])
    first = client.cookies.get(SESSION_COOKIE)
    assert client.get("/login", follow_redirects=False).status_code == 303  # signed in already
    client.cookies.delete(SESSION_COOKIE)
    token = login_token_of(client.get("/login").text)
    client.cookies.set(SESSION_COOKIE, first, domain="testserver.local")  # still in the browser
    response = client.post("/login", data={"email": seeded.emails["privacy_officer"],
                                           "password": "correct horse battery",
                                           "login_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.cookies.get(SESSION_COOKIE, domain="testserver.local") != first
    assert _sessions(db) == 1  # the first session was ended, not left behind
