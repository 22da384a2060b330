"""The audit trail: every write and every read of personal data is recorded with who, what and
which fields; the hash chain exposes edited, removed and reordered rows."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update

from accord.access import audit
from accord.core import db as dbmod
from accord.core.db import session_scope
from accord.models import AuditEntry
from tests.access.helpers import seed_customer

URL = "/api/v1/customers"


def entries(db, **where) -> list[AuditEntry]:
    with session_scope(db) as s:
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(AuditEntry, key) == value)
        rows = list(s.execute(stmt).scalars())
        s.expunge_all()
        return rows


def last(db, **where) -> AuditEntry:
    rows = entries(db, **where)
    assert rows, where
    return rows[-1]


def test_writes_are_audited(db, client, make_actor):
    admin = make_actor("admin", team="alpha")
    h = admin.headers
    r = client.post(
        URL,
        json={
            "first_name": "Au",
            "last_name": "Dit",
            "national_id": "X1",
            "emails": [{"email": "au@example.com"}],
        },
        headers=h,
    )
    cid = r.json()["id"]
    e = last(db, resource="customers", action="create")
    assert (e.actor_id, e.actor, e.record_id) == (admin.id, admin.email, str(cid))
    assert {"first_name", "last_name", "national_id", "emails"} <= set(e.fields)

    client.patch(
        f"{URL}/{cid}",
        json={"last_name": "Changed", "phones": [{"phone": "+442079460018"}]},
        headers={**h, "If-Match": '"1"'},
    )
    e = last(db, resource="customers", action="update")
    assert e.record_id == str(cid) and e.fields == ["last_name", "phones"]

    other = make_actor("sales", team="alpha")
    client.post(
        f"{URL}/{cid}/assign", json={"owner_id": other.id}, headers={**h, "If-Match": '"2"'}
    )
    e = last(db, resource="customers", action="assign")
    assert e.fields == ["owner_id"] and e.detail == {}

    client.delete(f"{URL}/{cid}", headers={**h, "If-Match": '"3"'})
    e = last(db, resource="customers", action="delete")
    assert e.record_id == str(cid) and e.actor_id == admin.id

    r = client.post("/api/v1/teams", json={"name": "Audited"}, headers=h)
    e = last(db, resource="teams", action="create")
    assert e.record_id == str(r.json()["id"]) and e.actor_id == admin.id

    r = client.post(
        "/api/v1/users",
        json={
            "email": "new@example.com",
            "full_name": "N",
            "password": "long password 1",
            "role": "sales",
        },
        headers=h,
    )
    e = last(db, resource="users", action="create")
    assert e.record_id == str(r.json()["id"]) and "password" not in e.fields
    assert "long password 1" not in str(e.detail)


@pytest.mark.parametrize("role", ["admin", "support"])
def test_reads_are_audited_with_the_fields_shown(role, db, client, make_actor):
    from accord.access.policy import hidden_fields

    actor = make_actor(role, team="alpha")
    cid = seed_customer(db, actor.id, actor.team_id, first_name="Read", date_of_birth="1990-01-01")
    other = seed_customer(db, actor.id, actor.team_id, first_name="Also")
    hidden = hidden_fields(actor.principal, "customers")

    for path, via in ((f"{URL}/{cid}", "api.get"), (f"{URL}/{cid}/360", "api.360")):
        assert client.get(path, headers=actor.headers).status_code == 200
        e = last(db, action="read")
        assert (e.actor_id, e.resource, e.record_id) == (actor.id, "customers", str(cid))
        assert e.detail["via"] == via
        assert "first_name" in e.fields and "emails" in e.fields
        assert not set(e.fields) & hidden
        if role == "admin":
            assert {"date_of_birth", "national_id", "notes"} <= set(e.fields)

    assert client.get(URL, headers=actor.headers).status_code == 200
    e = last(db, action="read")
    assert e.detail["via"] == "api.list" and sorted(e.detail["records"]) == sorted(
        [str(cid), str(other)]
    )


def test_refused_read_is_not_logged_as_a_read(db, client, make_actor):
    sales = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    cid = seed_customer(db, outsider.id, outsider.team_id)
    assert client.get(f"{URL}/{cid}", headers=sales.headers).status_code == 404
    assert entries(db, action="read") == []


def _chain(db, n: int, admin) -> list[int]:
    with session_scope(db) as s:
        for i in range(n):
            audit.record(s, admin.principal, "update", "things", i, ["f"], {"i": i, "d": 1.5})
    return [e.id for e in entries(db)]


def _verify(db) -> audit.VerifyResult:
    with session_scope(db, write=False) as s:
        return audit.verify(s)


def test_intact_chain_verifies(db, admin):
    ids = _chain(db, 6, admin)
    result = _verify(db)
    assert result.ok and result.checked == len(ids)


def test_verify_in_small_batches(db, admin):
    ids = _chain(db, 7, admin)
    with session_scope(db, write=False) as s:
        assert audit.verify(s, batch=2).checked == len(ids)


@pytest.mark.parametrize(
    "column,value",
    [
        ("actor", "someone-else@example.com"),
        ("action", "read"),
        ("record_id", "999"),
        ("fields", ["g"]),
        ("detail", {"i": 99}),
        ("reason", "covered up"),
    ],
)
def test_verify_detects_an_edited_row(column, value, db, admin):
    ids = _chain(db, 5, admin)
    with session_scope(db) as s:
        s.execute(update(AuditEntry).where(AuditEntry.id == ids[2]).values({column: value}))
    result = _verify(db)
    assert not result.ok and result.first_bad_id == ids[2] and "edited" in result.reason


def test_verify_detects_a_removed_row(db, admin):
    ids = _chain(db, 5, admin)
    with session_scope(db) as s:
        s.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": ids[2]})
    result = _verify(db)
    assert not result.ok and result.first_bad_id == ids[3] and result.checked == 2


def test_verify_detects_a_removed_first_row(db, admin):
    ids = _chain(db, 3, admin)
    with session_scope(db) as s:
        s.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": ids[0]})
    result = _verify(db)
    assert not result.ok and result.first_bad_id == ids[1]


def test_verify_detects_reordered_rows(db, admin):
    ids = _chain(db, 5, admin)
    cols = [
        "at",
        "actor_id",
        "actor",
        "action",
        "resource",
        "record_id",
        "fields",
        "detail",
        "reason",
        "prev_hash",
        "hash",
    ]
    with session_scope(db) as s:
        a, b = s.get(AuditEntry, ids[1]), s.get(AuditEntry, ids[3])
        va, vb = ({c: getattr(a, c) for c in cols}, {c: getattr(b, c) for c in cols})
        # hashes are unique: park one row's hash while swapping
        s.execute(update(AuditEntry).where(AuditEntry.id == a.id).values(hash="x" * 64))
        s.execute(update(AuditEntry).where(AuditEntry.id == b.id).values(va))
        s.execute(update(AuditEntry).where(AuditEntry.id == a.id).values(vb))
    result = _verify(db)
    assert not result.ok and result.first_bad_id == ids[1]


def test_verify_detects_a_rewritten_tail(db, admin):
    """Re-hashing an edited row without re-chaining the rest is caught at the next row."""
    import hashlib

    ids = _chain(db, 4, admin)
    with session_scope(db) as s:
        row = s.get(AuditEntry, ids[1])
        row.actor = "forger"
        row.hash = hashlib.sha256(
            audit._canonical(
                row.at,
                row.actor_id,
                row.actor,
                row.action,
                row.resource,
                row.record_id,
                list(row.fields),
                dict(row.detail),
                row.reason,
                row.prev_hash,
            )
        ).hexdigest()
    result = _verify(db)
    assert not result.ok and result.first_bad_id == ids[2]


def test_concurrent_appends_keep_one_chain(db, admin):
    import threading

    def append(i: int) -> None:
        for j in range(5):
            with session_scope(db) as s:
                audit.record(s, admin.principal, "update", "things", f"{i}-{j}")

    threads = [threading.Thread(target=append, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = _verify(db)
    assert result.ok and result.checked == len(entries(db))
    assert dbmod.get_engine(db)  # engine still usable
