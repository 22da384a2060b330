"""Keyset pagination: every sort walks the whole set without duplicates or gaps, stays stable
when rows are inserted between pages, and honours the limit bounds."""

from __future__ import annotations

from datetime import date

import pytest

from accord.core.settings import get_settings
from tests.access.helpers import assert_problem, seed_customer

URL = "/api/v1/customers"
# Repeated names and stages (ties broken by id) and missing birth dates (NULLs) on purpose.
FIRST = ["Ann", "Bob", "Ann", "Çelik", "bob", "Dora", "Ann", "Émile", "Zed", "ann", "Bo", "Ann"]
STAGES = ["awareness", "purchase", "loyalty", "awareness", "churned", "purchase"]


@pytest.fixture
def people(db, admin):
    ids = []
    for i, first in enumerate(FIRST):
        dob = None if i % 3 == 0 else date(1970 + i % 4, 1 + i % 12, 1)
        ids.append(
            seed_customer(
                db,
                admin.id,
                first_name=first,
                last_name="Same" if i % 2 else f"L{i}",
                lifecycle_stage=STAGES[i % len(STAGES)],
                date_of_birth=dob,
            )
        )
    return ids


def walk(client, headers, sort: str, limit: int, between=None) -> list[dict]:
    seen: list[dict] = []
    params: dict = {"sort": sort, "limit": limit}
    pages = 0
    while True:
        r = client.get(URL, params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= limit
        seen += page["items"]
        pages += 1
        assert pages < 100
        if not page["next_cursor"]:
            return seen
        if between:
            between(pages)
        params = {"sort": sort, "limit": limit, "cursor": page["next_cursor"]}


SORTS = [
    "id",
    "-id",
    "name",
    "-name",
    "created_at",
    "-created_at",
    "updated_at",
    "lifecycle_stage",
    "-lifecycle_stage",
    "date_of_birth",
    "-date_of_birth",
]


def test_every_sort_walks_all_rows_once(db, client, admin, people):
    for sort in SORTS:
        check_sort(sort, client, admin, people)


def check_sort(sort, client, admin, people):
    items = walk(client, admin.headers, sort, limit=5)
    ids = [c["id"] for c in items]
    assert len(ids) == len(set(ids)) == len(people), sort
    assert set(ids) == set(people), sort
    # single-page order == multi-page order
    whole = client.get(URL, params={"sort": sort, "limit": 100}, headers=admin.headers).json()
    assert [c["id"] for c in whole["items"]] == ids, sort
    assert whole["next_cursor"] is None
    field = sort.lstrip("-")
    if field in ("id", "lifecycle_stage", "created_at"):
        values = [c[field] for c in items]
        assert values == sorted(values, reverse=sort.startswith("-")), sort
    if field == "date_of_birth":
        # missing dates come last in ascending order and first in descending order
        present = [c["date_of_birth"] is not None for c in items]
        assert present == sorted(present, reverse=not sort.startswith("-")), sort
        dates = [c["date_of_birth"] for c in items if c["date_of_birth"]]
        assert dates == sorted(dates, reverse=sort.startswith("-")), sort


@pytest.mark.parametrize("sort", ["id", "-id", "name", "-created_at", "date_of_birth"])
def test_stable_under_inserts_between_pages(sort, db, client, admin, people):
    added: list[int] = []

    def insert(page: int) -> None:
        added.append(
            seed_customer(
                db,
                admin.id,
                first_name="Ann",
                last_name="Inserted",
                date_of_birth=None if page % 2 else date(1971, 6, 1),
            )
        )

    items = walk(client, admin.headers, sort, limit=4, between=insert)
    ids = [c["id"] for c in items]
    assert len(ids) == len(set(ids)), "a row was returned twice"
    assert set(people) <= set(ids), "a row that existed before the walk was skipped"
    assert set(ids) <= set(people) | set(added)


def test_filters_with_pagination(db, client, admin, people):
    items = walk(client, admin.headers, "name", limit=2)
    anns = [c["id"] for c in items if c["first_name"].lower() == "ann"]
    r = client.get(
        URL, params={"name__prefix": "ann", "sort": "name", "limit": 100}, headers=admin.headers
    )
    got = {c["id"] for c in r.json()["items"]}
    assert set(anns) <= got


def test_limit_bounds(db, client, admin, people):
    settings = get_settings()
    r = client.get(URL, headers=admin.headers)
    assert len(r.json()["items"]) == min(len(people), settings.page_size_default)
    r = client.get(URL, params={"limit": 1}, headers=admin.headers)
    assert len(r.json()["items"]) == 1 and r.json()["next_cursor"]
    r = client.get(URL, params={"limit": settings.page_size_max}, headers=admin.headers)
    assert r.status_code == 200
    for bad in (0, -1, settings.page_size_max + 1, "1.5", ""):
        assert_problem(client.get(URL, params={"limit": bad}, headers=admin.headers), 422, "limit")


def test_exact_page_has_no_dangling_cursor(db, client, admin):
    for i in range(4):
        seed_customer(db, admin.id, first_name=f"P{i}")
    r = client.get(URL, params={"limit": 4}, headers=admin.headers)
    assert len(r.json()["items"]) == 4 and r.json()["next_cursor"] is None
    r = client.get(URL, params={"limit": 2}, headers=admin.headers)
    r = client.get(
        URL, params={"limit": 2, "cursor": r.json()["next_cursor"]}, headers=admin.headers
    )
    assert len(r.json()["items"]) == 2 and r.json()["next_cursor"] is None
