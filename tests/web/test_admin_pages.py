"""Admin pages: users, role matrix, custom fields — access by role, CSRF, field-level errors."""

from __future__ import annotations

import re
from html import unescape

import pytest
from sqlalchemy import select

from accord.core import db as dbmod
from accord.models import AuditEntry, CustomFieldDefinition, User
from tests.web.conftest import inline_code, login
from tests.web.seed import PASSWORD, csrf_of

NEW_USER = {"full_name": "Nia New", "email": "nia@example.com", "password": "a long password",
            "role": "sales", "team_id": "", "locale": "de_DE"}


def error_for(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="err-{name}">(.*?)</p>', html, re.S)
    return unescape(found.group(1)) if found else ""


def user_row(db: str, email: str) -> User | None:
    with dbmod.session_scope(db, write=False) as s:
        return s.execute(select(User).where(User.email == email)).scalar()


def field_keys(db: str) -> set[str]:
    with dbmod.session_scope(db, write=False) as s:
        return set(s.execute(select(CustomFieldDefinition.key)).scalars())


def test_admin_creates_a_user_who_can_then_sign_in(signed_in, seeded, db, app) -> None:
    browser = signed_in(seeded.emails["admin"])
    page = browser.get("/admin/users")
    assert page.status_code == 200 and inline_code(page.text) == []
    for email in seeded.emails.values():
        assert email in page.text
    response = browser.post("/admin/users", data={**NEW_USER, "csrf_token": csrf_of(page.text)},
                            follow_redirects=False)
    assert response.status_code == 303
    assert "User created." in browser.get(response.headers["location"]).text
    created = user_row(db, "nia@example.com")
    assert created is not None and created.role == "sales" and created.locale == "de_DE"
    from fastapi.testclient import TestClient

    with TestClient(app) as other:
        assert login(other, "nia@example.com", "a long password").status_code == 303


@pytest.mark.parametrize("changes,name,message", [
    ({"password": "short"}, "password", "at least 10 characters"),
    ({"email": "not-an-email"}, "email", "email"),
    ({"email": "support@example.com"}, "email", "already exists"),
    ({"full_name": ""}, "full_name", "at least 1 character"),
    ({"role": "overlord"}, "role", "must be one of"),
    ({"team_id": "abc"}, "team_id", "Choose a team"),
    ({"team_id": "424242"}, "team_id", "does not exist"),
])
def test_user_form_errors_are_shown_next_to_the_field(signed_in, seeded, db, changes, name,
                                                      message) -> None:
    browser = signed_in(seeded.emails["admin"])
    token = csrf_of(browser.get("/admin/users").text)
    page = browser.post("/admin/users", data={**NEW_USER, **changes, "csrf_token": token})
    assert page.status_code in (409, 422)
    assert message.lower() in error_for(page.text, name).lower()
    assert f'aria-describedby="err-{name}"' in page.text or f"err-{name}" in page.text
    assert 'value="nia@example.com"' in page.text or name == "email"  # input is kept
    assert "a long password" not in page.text  # the password is never echoed
    assert user_row(db, "nia@example.com") is None


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_posts_without_the_csrf_token_are_refused_and_change_nothing(signed_in, seeded, db,
                                                                      token) -> None:
    browser = signed_in(seeded.emails["admin"])
    data = dict(NEW_USER) if token is None else {**NEW_USER, "csrf_token": token}
    response = browser.post("/admin/users", data=data)
    assert response.status_code == 403
    assert user_row(db, "nia@example.com") is None
    support = user_row(db, seeded.emails["support"])
    assert support is not None
    response = browser.post(f"/admin/users/{support.id}/deactivate",
                            data={"version": str(support.version)})
    assert response.status_code == 403
    assert user_row(db, seeded.emails["support"]).is_active
    response = browser.post("/admin/custom-fields", data={"key": "x", "label": "X", "type": "text"})
    assert response.status_code == 403 and "x" not in field_keys(db)


def test_the_csrf_header_works_for_htmx_requests(signed_in, seeded, db) -> None:
    browser = signed_in(seeded.emails["admin"])
    token = csrf_of(browser.get("/admin/users").text)
    response = browser.post("/admin/users", data=NEW_USER, headers={"X-CSRF-Token": token},
                            follow_redirects=False)
    assert response.status_code == 303
    assert user_row(db, "nia@example.com") is not None


def test_admin_deactivates_a_user_with_the_current_version(signed_in, seeded, db) -> None:
    browser = signed_in(seeded.emails["admin"])
    token = csrf_of(browser.get("/admin/users").text)
    support = user_row(db, seeded.emails["support"])
    me = user_row(db, seeded.emails["admin"])
    stale = browser.post(f"/admin/users/{support.id}/deactivate",
                         data={"csrf_token": token, "version": str(support.version - 1)})
    assert stale.status_code == 409 and user_row(db, seeded.emails["support"]).is_active
    myself = browser.post(f"/admin/users/{me.id}/deactivate",
                          data={"csrf_token": token, "version": str(me.version)})
    assert myself.status_code == 409 and "cannot deactivate yourself" in myself.text
    done = browser.post(f"/admin/users/{support.id}/deactivate",
                        data={"csrf_token": token, "version": str(support.version)},
                        follow_redirects=False)
    assert done.status_code == 303
    assert not user_row(db, seeded.emails["support"]).is_active
    page = browser.get("/admin/users?done=user-deactivated")
    assert "User deactivated." in page.text and "Deactivated" in page.text
    # Unknown notice keys echo nothing.
    assert "<b>hi</b>" not in browser.get("/admin/users?done=%3Cb%3Ehi%3C/b%3E").text


def test_roles_page_renders_the_permission_matrix(signed_in, seeded) -> None:
    html = signed_in(seeded.emails["admin"]).get("/admin/roles").text

    def cell(role: str, resource: str) -> str:
        found = re.search(rf'data-role="{role}" data-resource="{resource}">(.*?)</td>', html, re.S)
        assert found
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))

    assert "all records: read, create, update" in cell("support", "customers")
    assert "team records: read, create" in cell("sales", "customers")
    assert "own records: update" in cell("sales", "customers")
    assert "no access" in cell("support", "audit")
    assert "all records: read" in cell("privacy_officer", "audit")
    assert "Date of birth" in html and "Privacy officer" in html


def test_custom_field_lifecycle(signed_in, seeded, db) -> None:
    browser = signed_in(seeded.emails["admin"])
    token = csrf_of(browser.get("/admin/custom-fields").text)
    form = {"csrf_token": token, "key": "loyalty_club", "label": "Loyalty club", "type": "choice",
            "choices": "Blue\nSilver, Black\n\nBlue", "help_text": "Card colour"}
    response = browser.post("/admin/custom-fields", data=form, follow_redirects=False)
    assert response.status_code == 303
    page = browser.get(response.headers["location"])
    assert "Custom field created." in page.text and "Blue, Silver, Black" in page.text
    # The new choice field is a filter on the customer list at once.
    customers = browser.get("/customers").text
    assert 'name="cf.loyalty_club"' in customers and ">Silver</option>" in customers
    assert browser.get("/customers", params={"cf.loyalty_club": "Black"}).status_code == 200
    # Field errors.
    bad = browser.post("/admin/custom-fields", data={**form, "key": "Bad Key"})
    assert bad.status_code == 422 and "pattern" in error_for(bad.text, "key")
    dup = browser.post("/admin/custom-fields", data=form)
    assert "already exists" in error_for(dup.text, "key")
    empty = browser.post("/admin/custom-fields", data={**form, "key": "tier2", "choices": ""})
    assert "needs choices" in error_for(empty.text, "choices").lower()
    text_with_choices = browser.post("/admin/custom-fields",
                                     data={**form, "key": "tier3", "type": "text"})
    assert "only choice fields" in error_for(text_with_choices.text, "choices").lower()
    assert field_keys(db) == {"segment", "nps", "loyalty_club"}
    # Delete with the current version.
    with dbmod.session_scope(db, write=False) as s:
        defn = s.execute(select(CustomFieldDefinition).where(
            CustomFieldDefinition.key == "loyalty_club")).scalar_one()
    response = browser.post(f"/admin/custom-fields/{defn.id}/delete",
                            data={"csrf_token": token, "version": str(defn.version)},
                            follow_redirects=False)
    assert response.status_code == 303
    assert field_keys(db) == {"segment", "nps"}


ADMIN_URLS = ("/admin", "/admin/users", "/admin/roles", "/admin/custom-fields")


@pytest.mark.parametrize("role", ["marketing", "analyst"])
def test_roles_reading_sources_see_only_the_sources_page(signed_in, make_actor, role: str) -> None:
    actor = make_actor(role, team="EMEA")
    browser = signed_in(actor.email)
    home = browser.get("/customers").text
    assert 'href="/admin"' in home
    assert browser.get("/admin/sources").status_code == 200
    for url in ADMIN_URLS[1:]:
        page = browser.get(url, follow_redirects=False)
        assert page.status_code == 403, url


@pytest.mark.parametrize("role", ["support", "sales"])
def test_non_admin_roles_get_403_and_no_admin_link(signed_in, make_actor, client, db,
                                                   role: str) -> None:
    actor = make_actor(role, team="EMEA")
    browser = signed_in(actor.email)
    home = browser.get("/customers").text
    assert 'href="/admin"' not in home
    for url in ADMIN_URLS:
        page = browser.get(url, follow_redirects=False)
        assert page.status_code == 403, url
        assert "Forbidden" in page.text and "<h1" in page.text
    token = csrf_of(home)
    assert browser.post("/admin/users", data={**NEW_USER, "csrf_token": token}).status_code == 403
    assert browser.post("/admin/custom-fields", data={
        "csrf_token": token, "key": "sneaky", "label": "S", "type": "text"}).status_code == 403
    assert user_row(db, "nia@example.com") is None and "sneaky" not in field_keys(db)
    # Hidden UI is not the authorisation: the API refuses the same actions.
    assert client.get("/api/v1/users", headers=actor.headers).status_code == 403
    assert client.post("/api/v1/users", headers=actor.headers, json={
        "email": "nia@example.com", "full_name": "N", "password": PASSWORD,
        "role": "admin"}).status_code == 403
    assert client.post("/api/v1/custom-fields", headers=actor.headers, json={
        "key": "sneaky", "label": "S", "type": "text"}).status_code == 403
    with dbmod.session_scope(db, write=False) as s:
        denials = s.execute(select(AuditEntry).where(
            AuditEntry.action == "denied", AuditEntry.actor_id == actor.id)).scalars().all()
    assert any((d.detail or {}).get("via") == "web" for d in denials)  # page refusals audited


@pytest.mark.parametrize("role", ["manager", "privacy_officer"])
def test_user_readers_see_users_but_cannot_change_them(signed_in, make_actor, db,
                                                       role: str) -> None:
    actor = make_actor(role)
    browser = signed_in(actor.email)
    page = browser.get("/admin/users")
    assert page.status_code == 200
    assert 'href="/admin"' in page.text
    assert 'action="/admin/users"' not in page.text and "Deactivate" not in page.text
    assert browser.get("/admin/roles").status_code == 200
    assert browser.get("/admin/custom-fields").status_code == 403
    response = browser.post("/admin/users", data={**NEW_USER, "csrf_token": csrf_of(page.text)})
    assert response.status_code == 403
    assert user_row(db, "nia@example.com") is None
