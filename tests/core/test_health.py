"""Health endpoints and graceful failure when the database is unreachable."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from accord.core import db as dbmod
from accord.core.settings import reset_settings
from tests.access.helpers import assert_problem


def test_live_and_ready(client):
    r = client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = client.get("/health/ready")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_security_headers(client):
    r = client.get("/health/live")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"


@pytest.fixture(
    params=[
        "postgresql+psycopg://nobody@127.0.0.1:1/nowhere",
        "sqlite:////proc/accord-no-such-dir/x.db",
    ]
)
def broken_app(request, monkeypatch):
    """A fresh app pointed at a database that cannot be reached."""
    monkeypatch.setenv("ACCORD_DATABASE_URL", request.param)
    reset_settings()
    dbmod.dispose_all()
    from accord.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client
    dbmod.dispose_all()
    reset_settings()


def test_ready_is_503_when_the_database_is_down(broken_app):
    assert broken_app.get("/health/live").status_code == 200
    r = broken_app.get("/health/ready")
    assert_problem(r, 503)
    assert int(r.headers["Retry-After"]) > 0


def test_api_is_503_not_500_when_the_database_is_down(broken_app):
    r = broken_app.get("/api/v1/customers", headers={"Authorization": "Bearer acc_whatever"})
    assert_problem(r, 503)
    assert int(r.headers["Retry-After"]) > 0
