"""The sources API and admin page: registration, configuration with If-Match, deactivation,
minting write keys and webhook secrets (shown once, never read back), and who may do what."""

from __future__ import annotations

import base64
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from accord.core import db as dbmod
from accord.integration.sources import hash_key, manual_source
from accord.models import AuditEntry, Source
from tests.web.conftest import inline_code, login
from tests.web.seed import csrf_of, make_user

WEB = {"name": "web", "kind": "tracking", "trust_rank": 60,
       "description": "Marketing site (analytics.js)", "default_country": "gb",
       "mapping": {}}


def create(client, actor, **body):
    return client.post("/api/v1/sources", json={**WEB, **body}, headers=actor.headers)


def test_admin_registers_reads_and_updates_a_source(client, db, admin) -> None:
    r = create(client, admin)
    assert r.status_code == 201, r.text
    out = r.json()
    assert r.headers["Location"] == f"/api/v1/sources/{out['id']}"
    assert r.headers["ETag"] == '"1"'
    assert {k: out[k] for k in ("name", "kind", "trust_rank", "default_country", "active",
                                "write_key_prefix", "has_webhook_secret")} == {
        "name": "web", "kind": "tracking", "trust_rank": 60, "default_country": "GB",
        "active": True, "write_key_prefix": None, "has_webhook_secret": False}
    listed = client.get("/api/v1/sources", headers=admin.headers).json()["items"]
    assert [s["name"] for s in listed] == ["web"]
    url = f"/api/v1/sources/{out['id']}"
    got = client.get(url, headers=admin.headers)
    assert got.status_code == 200 and got.headers["ETag"] == '"1"'

    change = {"trust_rank": 5, "mapping": {"columns": {"E-Mail": "email"}}}
    assert client.patch(url, json=change, headers=admin.headers).status_code == 428
    assert client.patch(url, json=change,
                        headers={**admin.headers, "If-Match": '"7"'}).status_code == 412
    r = client.patch(url, json=change, headers={**admin.headers, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.json()["trust_rank"] == 5 and r.json()["mapping"] == change["mapping"]
    assert r.headers["ETag"] == '"2"'
    # deactivation instead of deletion
    assert client.delete(url, headers=admin.headers).status_code == 405
    r = client.patch(url, json={"active": False}, headers={**admin.headers, "If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["active"] is False
    with dbmod.session_scope(db, write=False) as s:
        actions = list(s.scalars(select(AuditEntry.action).where(
            AuditEntry.resource == "sources").order_by(AuditEntry.id)))
        assert actions == ["create", "update", "update"]


@pytest.mark.parametrize("body,field", [
    ({"trust_rank": 0}, "trust_rank"),
    ({"trust_rank": 1001}, "trust_rank"),
    ({"default_country": "Atlantis"}, "default_country"),
    ({"name": "Web Shop!"}, "name"),
    ({"name": ""}, "name"),
    ({"kind": "carrier-pigeon"}, "kind"),
    ({"mapping": ["email"]}, "mapping"),
    ({"write_key_hash": "x"}, "write_key_hash"),
    ({"mapping": {"columns": {"E-Mail": "e_mail_address"}}}, "mapping.columns.E-Mail"),
])
def test_invalid_sources_are_422_naming_the_field(client, db, admin, body, field) -> None:
    r = create(client, admin, **body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    with dbmod.session_scope(db, write=False) as s:
        assert s.scalar(select(Source.id)) is None


def test_names_are_unique_and_the_manual_source_is_protected(client, db, admin) -> None:
    assert create(client, admin).status_code == 201
    r = create(client, admin)
    assert r.status_code == 409 and r.json()["field"] == "name"
    assert create(client, admin, name="other", kind="manual").status_code == 409
    with dbmod.session_scope(db) as s:
        manual = manual_source(s)
        manual_id, version = manual.id, manual.version
    url = f"/api/v1/sources/{manual_id}"
    headers = {**admin.headers, "If-Match": f'"{version}"'}
    for change in ({"name": "renamed"}, {"active": False}, {"kind": "crm"}):
        r = client.patch(url, json=change, headers=headers)
        assert r.status_code == 409, change
    assert client.patch(url, json={"trust_rank": 2}, headers=headers).status_code == 200
    assert client.post(f"{url}/write-key", headers=admin.headers).status_code == 409


def test_minted_secrets_are_shown_once_and_never_read_back(client, db, admin) -> None:
    source_id = create(client, admin).json()["id"]
    r = client.post(f"/api/v1/sources/{source_id}/write-key", headers=admin.headers)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    key = r.json()["write_key"]
    assert key.startswith("wk_") and r.json()["write_key_prefix"] == key[:10]
    r = client.post(f"/api/v1/sources/{source_id}/webhook-secret", headers=admin.headers)
    secret = r.json()["webhook_secret"]
    assert secret.startswith("whsec_")
    for url in ("/api/v1/sources", f"/api/v1/sources/{source_id}"):
        text = client.get(url, headers=admin.headers).text
        assert key not in text and secret not in text and hash_key(key) not in text
    got = client.get(f"/api/v1/sources/{source_id}", headers=admin.headers).json()
    assert got["write_key_prefix"] == key[:10] and got["has_webhook_secret"] is True
    assert "write_key_hash" not in got and "webhook_secret" not in got
    with dbmod.session_scope(db, write=False) as s:
        stored = s.get(Source, source_id)
        assert stored.write_key_hash == hash_key(key)  # only the hash of the key is kept
        details = " ".join(str(d) for d in s.scalars(select(AuditEntry.detail)))
        assert key not in details and secret not in details
    # the minted key works on the collection API at once
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    r = client.post("/v1/track", json={"userId": "u1", "event": "Signed Up"},
                    headers={"Authorization": auth})
    assert r.status_code == 200
    # a deactivated source gets no new keys
    version = got["version"]
    client.patch(f"/api/v1/sources/{source_id}", json={"active": False},
                 headers={**admin.headers, "If-Match": f'"{version}"'})
    r = client.post(f"/api/v1/sources/{source_id}/write-key", headers=admin.headers)
    assert r.status_code == 409 and r.json()["field"] == "active"


def test_access_follows_the_policy(client, db, admin, make_actor) -> None:
    source_id = create(client, admin).json()["id"]
    url = f"/api/v1/sources/{source_id}"
    assert client.get("/api/v1/sources").status_code == 401
    for role in ("sales", "support", "privacy_officer"):
        actor = make_actor(role)
        assert client.get("/api/v1/sources", headers=actor.headers).status_code == 403
        assert client.get(url, headers=actor.headers).status_code == 403
    for role in ("manager", "marketing", "analyst"):
        actor = make_actor(role)
        assert client.get(url, headers=actor.headers).status_code == 200
        assert create(client, actor, name=f"x-{role}").status_code == 403
        r = client.patch(url, json={"trust_rank": 1}, headers={**actor.headers, "If-Match": '"1"'})
        assert r.status_code == 403
        assert client.post(f"{url}/write-key", headers=actor.headers).status_code == 403
        assert client.post(f"{url}/webhook-secret", headers=actor.headers).status_code == 403
    assert client.get("/api/v1/sources/424242", headers=admin.headers).status_code == 404
    readonly = make_actor("admin", scopes=["sources:read"])
    assert client.get(url, headers=readonly.headers).status_code == 200
    assert client.post(f"{url}/write-key", headers=readonly.headers).status_code == 403
    with dbmod.session_scope(db, write=False) as s:
        assert s.get(Source, source_id).write_key_hash is None


# --- the admin page ------------------------------------------------------------------------------


@pytest.fixture
def browsers(app, db):
    with dbmod.session_scope(db) as s:
        make_user(s, "admin", "root@example.com", "Rita Root")
        make_user(s, "analyst", "ana@example.com", "Ana Lyst")
        make_user(s, "sales", "sal@example.com", "Sal Es")
    opened: list[TestClient] = []

    def browser(email: str) -> TestClient:
        c = TestClient(app)
        opened.append(c)
        assert login(c, email).status_code == 303
        return c

    yield browser
    for c in opened:
        c.close()


def test_admin_page_registers_a_source_and_shows_a_minted_key_once(browsers, db) -> None:
    admin = browsers("root@example.com")
    page = admin.get("/admin/sources")
    assert page.status_code == 200 and inline_code(page.text) == []
    token = csrf_of(page.text)
    r = admin.post("/admin/sources", data={"name": "web", "kind": "tracking",
                                           "trust_rank": "60", "default_country": "GB",
                                           "description": "Site", "csrf_token": token},
                   follow_redirects=False)
    assert r.status_code == 303
    listing = admin.get(r.headers["location"]).text
    assert "Source registered." in listing and 'data-source="web"' in listing
    with dbmod.session_scope(db, write=False) as s:
        source_id = s.scalar(select(Source.id).where(Source.name == "web"))
    minted = admin.post(f"/admin/sources/{source_id}/write-key", data={"csrf_token": token})
    assert minted.status_code == 200 and inline_code(minted.text) == []
    key = re.search(r'id="minted-secret">([^<]+)<', minted.text).group(1)
    with dbmod.session_scope(db, write=False) as s:
        assert s.get(Source, source_id).write_key_hash == hash_key(key)
    again = admin.get("/admin/sources").text
    assert key not in again and key[:10] in again  # the prefix identifies it, once shown
    secret_page = admin.post(f"/admin/sources/{source_id}/webhook-secret",
                             data={"csrf_token": token})
    secret = re.search(r'id="minted-secret">([^<]+)<', secret_page.text).group(1)
    assert secret.startswith("whsec_") and secret not in admin.get("/admin/sources").text
    # errors next to the field; CSRF required
    bad = admin.post("/admin/sources", data={"name": "web", "kind": "tracking",
                                             "trust_rank": "0", "csrf_token": token})
    assert bad.status_code == 422 and 'id="err-trust_rank"' in bad.text
    assert admin.post("/admin/sources", data={"name": "x", "kind": "crm"}).status_code == 403


def test_admin_page_access_by_role(browsers, db) -> None:
    with dbmod.session_scope(db) as s:
        manual_source(s)
    analyst = browsers("ana@example.com").get("/admin/sources")
    assert analyst.status_code == 200
    assert "Register a source" not in analyst.text and "write-key" not in analyst.text
    assert browsers("sal@example.com").get("/admin/sources").status_code == 403
    with dbmod.session_scope(db, write=False) as s:
        assert s.scalar(select(Source.write_key_hash)) is None
