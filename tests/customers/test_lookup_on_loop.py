"""Which customer reads run on the event loop (embedded SQLite): the 360 view and a lookup of
one e-mail or phone; any other list query (filters, free text) keeps its thread."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from accord.customers.api import _lookup


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/api/v1/customers",
                    "query_string": query.encode(), "headers": []})


@pytest.mark.parametrize(("query", "expected"), [
    ("email=ada%40example.com", True),
    ("phone=%2B4930123456&limit=5", True),
    ("", False),  # the first page of everyone
    ("q=ada", False),
    ("email=a%40x.io&email=b%40x.io", False),
    ("email=a%40x.io&country=DE", False),
    ("email__in=a%40x.io", False),
    ("country=DE", False),
    ("limit=10", False),
])
def test_only_single_contact_lookups_run_on_the_loop(query: str, expected: bool) -> None:
    assert _lookup(_request(query)) is expected


def test_a_lookup_answers_the_same_on_the_loop(client, admin) -> None:
    """The search by e-mail gives the list endpoint's answer whichever way it runs."""
    made = client.post("/api/v1/customers", headers=admin.headers, json={
        "first_name": "Ada", "last_name": "Loop", "emails": [{"email": "ada.loop@example.com"}]})
    assert made.status_code == 201, made.text
    found = client.get("/api/v1/customers", headers=admin.headers,
                       params={"email": "Ada.Loop@Example.com"}).json()
    listed = client.get("/api/v1/customers", headers=admin.headers,
                        params={"email": "ada.loop@example.com", "country__isnull": "true"}
                        ).json()
    assert [c["id"] for c in found["items"]] == [made.json()["id"]]
    assert found["items"] == listed["items"]
