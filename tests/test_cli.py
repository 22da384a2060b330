"""The `accord` command: schema upgrades, users, the audit check and the worker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from accord.access import audit
from accord.access.policy import SYSTEM
from accord.cli import app
from accord.core import db as dbmod
from accord.core import jobs
from accord.core.db import session_scope
from accord.core.settings import reset_settings
from accord.models import AuditEntry, Job, Team, User

runner = CliRunner()


@pytest.fixture
def fresh_sqlite(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("ACCORD_DATABASE_URL", url)
    reset_settings()
    yield url
    dbmod.dispose_all()
    reset_settings()


def test_db_upgrade_on_an_empty_database(fresh_sqlite):
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "Database at revision" in result.output
    assert "(empty)" not in runner.invoke(app, ["db", "current"]).output
    # idempotent
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    with session_scope(fresh_sqlite) as s:
        assert s.execute(select(User)).first() is None


def test_db_commands_never_print_the_password(fresh_sqlite, monkeypatch):
    from accord.cli import _redact

    url = "postgresql+psycopg://accord:s3cret-pw@db.example:5432/accord"
    assert "s3cret-pw" not in _redact(url) and "***" in _redact(url)
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and fresh_sqlite.split("///")[1] in result.output


def test_user_create(db):
    result = runner.invoke(
        app,
        [
            "user",
            "create",
            "--email",
            "Boss@Example.com",
            "--name",
            "Boss",
            "--role",
            "manager",
            "--password",
            "a long password",
            "--team",
            "HQ",
        ],
    )
    assert result.exit_code == 0, result.output
    with session_scope(db) as s:
        user = s.execute(select(User).where(User.email == "boss@example.com")).scalar_one()
        assert user.role == "manager" and user.password_hash.startswith("$argon2")
        assert s.get(Team, user.team_id).name == "HQ"
    again = runner.invoke(
        app,
        [
            "user",
            "create",
            "--email",
            "boss@example.com",
            "--name",
            "B",
            "--password",
            "a long password",
        ],
    )
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(
        app,
        [
            "user",
            "create",
            "--email",
            "x@example.com",
            "--name",
            "B",
            "--role",
            "overlord",
            "--password",
            "a long password",
        ],
    )
    assert bad.exit_code == 2 and "role" in bad.output
    short = runner.invoke(
        app, ["user", "create", "--email", "y@example.com", "--name", "B", "--password", "short"]
    )
    assert short.exit_code == 2 and "password" in short.output


def test_audit_verify_exit_codes(db):
    with session_scope(db) as s:
        for i in range(4):
            audit.record(s, SYSTEM, "update", "things", i)
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "intact: 4 entries" in result.output
    with session_scope(db) as s:
        second = s.execute(select(AuditEntry.id).order_by(AuditEntry.id).offset(1)).scalar()
        s.execute(update(AuditEntry).where(AuditEntry.id == second).values(actor="mallory"))
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at entry {second}" in result.output


def test_audit_verify_as_a_process(db):
    """The installed command, in its own process, with ACCORD_DATABASE_URL set."""
    with session_scope(db) as s:
        audit.record(s, SYSTEM, "update", "things", 1)
    env = {**os.environ, "ACCORD_DATABASE_URL": db}
    cmd = [sys.executable, "-c", "from accord.cli import app; app()", "audit", "verify"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with session_scope(db) as s:
        s.execute(update(AuditEntry).values(reason="tampered"))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "BROKEN" in done.stderr


def test_worker_once(db):
    ran = []
    saved = dict(jobs.HANDLERS)
    jobs.HANDLERS["cli-test"] = lambda session, payload: ran.append(payload["n"])
    try:
        with session_scope(db) as s:
            for n in range(3):
                jobs.enqueue(s, "cli-test", {"n": n})
        result = runner.invoke(app, ["worker", "--once"])
        assert result.exit_code == 0, result.output
        assert "3 jobs run" in result.output
        assert sorted(ran) == [0, 1, 2]
        with session_scope(db) as s:
            assert set(s.execute(select(Job.status)).scalars()) == {"done"}
    finally:
        jobs.HANDLERS.clear()
        jobs.HANDLERS.update(saved)


def _captured_serve(monkeypatch, args: list[str]) -> dict:
    """Run `accord <args>` with the server replaced; return the keyword arguments it got."""
    seen: dict = {}
    monkeypatch.setattr("accord.cli._upgrade_quietly", lambda: None)
    monkeypatch.setattr("accord.core.serving.serve", lambda **kw: seen.update(kw))
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return seen


def test_serve_logs_requests_only_when_asked(fresh_sqlite, monkeypatch):
    quiet = _captured_serve(monkeypatch, ["serve"])
    assert quiet["access_log"] is False and quiet["log_level"] == "info"
    assert quiet["http"] == "accord.core.serving:NoDelayHTTP"
    logged = _captured_serve(monkeypatch, ["serve", "--access-log", "--workers", "2"])
    # several workers log at warning, unless the operator asked for the request log
    assert logged["access_log"] is True and logged["log_level"] == "info"
    assert logged["workers"] == 2
    several = _captured_serve(monkeypatch, ["serve", "--workers", "2"])
    assert several["access_log"] is False and several["log_level"] == "warning"


def test_server_processes_freeze_their_start_up_heap(fresh_sqlite):
    """`serve_app` keeps what start-up loaded out of the cycle collector; test apps do not."""
    import gc

    from fastapi.testclient import TestClient

    from accord.app import create_app, serve_app

    gc.unfreeze()
    try:
        with TestClient(create_app()):
            assert gc.get_freeze_count() == 0
        with TestClient(serve_app()) as client:
            assert gc.get_freeze_count() > 0
            assert client.get("/health/live").json() == {"status": "ok"}
    finally:
        gc.unfreeze()
