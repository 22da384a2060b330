"""Optimistic concurrency: no lost updates. Versions and ETags move on every change (contact
points included); a write with a stale version gets 412, also when two writes race."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.orm.exc import StaleDataError

from accord.core import db as dbmod
from accord.customers import service
from accord.customers.schemas import CustomerUpdate
from accord.models import Customer
from tests.access.helpers import assert_problem, etag_of, seed_customer, snapshot

URL = "/api/v1/customers"


def test_sequential_writers_with_the_same_version(db, client, make_actor):
    alice, bob = make_actor("admin"), make_actor("admin")
    cid = seed_customer(db, alice.id)
    tag = etag_of(client, alice.headers, cid)
    assert etag_of(client, bob.headers, cid) == tag == '"1"'
    r = client.patch(
        f"{URL}/{cid}", json={"first_name": "Alice's"}, headers={**alice.headers, "If-Match": tag}
    )
    assert r.status_code == 200 and r.headers["ETag"] == '"2"' and r.json()["version"] == 2
    before = snapshot(db)
    r = client.patch(
        f"{URL}/{cid}", json={"first_name": "Bob's"}, headers={**bob.headers, "If-Match": tag}
    )
    assert_problem(r, 412, "If-Match")
    assert snapshot(db) == before
    assert client.get(f"{URL}/{cid}", headers=bob.headers).json()["first_name"] == "Alice's"


def test_racing_writers_one_wins(db, client, admin):
    """Threads PATCH with the same If-Match at once: exactly one 200, the rest 412."""
    cid = seed_customer(db, admin.id)
    n = 6
    barrier = threading.Barrier(n)
    statuses: list[int] = []
    lock = threading.Lock()

    def writer(i: int) -> None:
        barrier.wait()
        r = client.patch(
            f"{URL}/{cid}",
            json={"last_name": f"Writer{i}"},
            headers={**admin.headers, "If-Match": '"1"'},
        )
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] + [412] * (n - 1), statuses
    r = client.get(f"{URL}/{cid}", headers=admin.headers)
    assert r.json()["version"] == 2


def test_stale_flush_is_refused_by_the_database_layer(db, admin):
    """Even past the If-Match check, the versioned UPDATE refuses a stale row (PostgreSQL: two
    sessions that both read version 1; the second to write loses)."""
    cid = seed_customer(db, admin.id)
    if dbmod.is_postgres(dbmod.get_engine(db)):
        s1, s2 = dbmod.session_factory(db)(), dbmod.session_factory(db)()
        try:
            c1, c2 = s1.get(Customer, cid), s2.get(Customer, cid)
            assert c1.version == c2.version == 1
            service.update_customer(s1, admin.principal, c1, CustomerUpdate(first_name="One"))
            s1.commit()
            with pytest.raises(StaleDataError):
                service.update_customer(s2, admin.principal, c2, CustomerUpdate(first_name="Two"))
        finally:
            s1.close()
            s2.rollback()
            s2.close()
    else:
        # SQLite writers hold the write lock from BEGIN: the second one reads the new version.
        with dbmod.session_scope(db) as s1:
            service.update_customer(
                s1, admin.principal, s1.get(Customer, cid), CustomerUpdate(first_name="One")
            )
        with dbmod.session_scope(db) as s2:
            assert s2.get(Customer, cid).version == 2
    with dbmod.session_scope(db) as s:
        assert s.get(Customer, cid).first_name == "One"


@pytest.mark.parametrize(
    "change",
    [
        {"emails": [{"email": "new@example.com"}]},
        {"phones": [{"phone": "+44 20 7946 0018"}]},
        {"addresses": [{"line1": "1 Road", "city": "London", "country": "GB"}]},
        {"emails": []},
        {"lifecycle_stage": "purchase"},
        # scalars and lists together: still exactly one version step
        {"last_name": "New", "phones": [{"phone": "+44 20 7946 0018"}], "emails": []},
        {"lifecycle_stage": "loyalty", "first_name": "N", "addresses": []},
    ],
)
def test_every_kind_of_change_bumps_the_version(change, db, client, admin):
    cid = seed_customer(db, admin.id, emails=[{"email": "old@example.com"}])
    r = client.patch(f"{URL}/{cid}", json=change, headers={**admin.headers, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"' and r.json()["version"] == 2
    assert etag_of(client, admin.headers, cid) == '"2"'
    # the old ETag is now stale
    r = client.patch(
        f"{URL}/{cid}", json={"first_name": "Late"}, headers={**admin.headers, "If-Match": '"1"'}
    )
    assert_problem(r, 412)


def test_custom_field_change_bumps_the_version(db, client, admin):
    r = client.post(
        "/api/v1/custom-fields",
        json={"key": "size", "label": "Size", "type": "number"},
        headers=admin.headers,
    )
    assert r.status_code == 201
    cid = seed_customer(db, admin.id)
    r = client.patch(
        f"{URL}/{cid}", json={"custom": {"size": 3}}, headers={**admin.headers, "If-Match": '"1"'}
    )
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'
    assert r.json()["custom"] == {"size": 3}


def test_no_op_patch_keeps_the_version(db, client, admin):
    cid = seed_customer(db, admin.id, first_name="Same")
    r = client.patch(
        f"{URL}/{cid}", json={"first_name": "Same"}, headers={**admin.headers, "If-Match": '"1"'}
    )
    assert r.status_code == 200 and r.headers["ETag"] == '"1"'


def test_delete_needs_the_current_version(db, client, admin):
    cid = seed_customer(db, admin.id)
    client.patch(
        f"{URL}/{cid}", json={"first_name": "B"}, headers={**admin.headers, "If-Match": '"1"'}
    )
    assert_problem(client.delete(f"{URL}/{cid}", headers={**admin.headers, "If-Match": '"1"'}), 412)
    assert (
        client.delete(f"{URL}/{cid}", headers={**admin.headers, "If-Match": '"2"'}).status_code
        == 204
    )
    assert_problem(client.get(f"{URL}/{cid}", headers=admin.headers), 404)
