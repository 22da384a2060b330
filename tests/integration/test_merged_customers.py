"""A merged customer lives on in its survivor: hidden from lists and search, reads redirect,
changes are refused, and deleting the survivor deletes the person entirely."""

from __future__ import annotations

from sqlalchemy import func, select

from accord.core import db as dbmod
from accord.integration import stewardship
from accord.models import Customer
from tests.access.helpers import seed_customer


def _merge(db: str, admin, survivor: int, merged: int) -> None:
    with dbmod.session_scope(db) as s:
        stewardship.merge(s, admin.principal, survivor, merged, "same person")


def test_a_merged_customer_is_hidden_redirects_and_refuses_changes(db, client, make_actor):
    admin = make_actor("admin")
    a = seed_customer(db, first_name="Ada", last_name="Lovelace", emails=[
        {"email": "ada@example.com", "is_primary": True}])
    b = seed_customer(db, first_name="Ada", last_name="Lovelace", emails=[
        {"email": "ada.l@example.com", "is_primary": True}])
    _merge(db, admin, a, b)
    listed = client.get("/api/v1/customers", headers=admin.headers).json()["items"]
    assert [c["id"] for c in listed] == [a]
    found = client.get("/api/v1/customers", params={"q": "ada.l@example.com"},
                       headers=admin.headers).json()["items"]
    assert [c["id"] for c in found] == [a]  # the e-mail moved to the survivor
    got = client.get(f"/api/v1/customers/{b}", headers=admin.headers, follow_redirects=False)
    assert got.status_code == 307 and got.headers["location"] == f"/api/v1/customers/{a}"
    view = client.get(f"/api/v1/customers/{b}/360", headers=admin.headers,
                      follow_redirects=False)
    assert view.status_code == 307
    assert view.headers["location"] == f"/api/v1/customers/{a}/360"
    assert client.get(view.headers["location"], headers=admin.headers).json()["customer"][
        "id"] == a
    change = client.patch(f"/api/v1/customers/{b}", json={"first_name": "Augusta"},
                          headers={**admin.headers, "If-Match": '"1"'})
    assert change.status_code == 409
    assert change.headers["content-type"].startswith("application/problem+json")


def test_deleting_the_survivor_deletes_the_customers_merged_into_it(db, client, make_actor):
    admin = make_actor("admin")
    a = seed_customer(db, first_name="Alan", last_name="Turing")
    b = seed_customer(db, first_name="Alan", last_name="Turing")
    _merge(db, admin, a, b)
    etag = client.get(f"/api/v1/customers/{a}", headers=admin.headers).headers["etag"]
    gone = client.delete(f"/api/v1/customers/{a}", headers={**admin.headers, "If-Match": etag})
    assert gone.status_code == 204
    with dbmod.session_scope(db, write=False) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0
