"""Reading the audit trail back: filters by resource, record, action and time, paged newest
first. A record's changes come from an index; its reads (single views and list pages naming
several records) from a bounded scan. Following `next_before_id` must list every match once."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select

from accord.access import audit
from accord.access.policy import Principal
from accord.core.db import session_scope
from accord.models import AuditEntry


@pytest.fixture
def trail(db, admin) -> list[AuditEntry]:
    """~240 entries: changes and reads of two resources, reads of one record and of lists."""
    rnd = random.Random(11)
    principal: Principal = admin.principal
    for _ in range(240):
        resource = rnd.choice(["customers", "customers", "deals"])
        record = str(rnd.randint(1, 6))
        kind = rnd.random()
        if kind < 0.3:
            with session_scope(db) as s:
                audit.record(s, principal, rnd.choice(["update", "create"]), resource, record,
                             ["email"])
        elif kind < 0.7:
            audit.record_read(principal, resource, [record], ["email"], {"via": "test"}, url=db)
        else:
            listed = rnd.sample(range(1, 7), rnd.randint(2, 4))
            audit.record_read(principal, resource, listed, ["email"], {"via": "list"}, url=db)
    with session_scope(db) as s:
        rows = list(s.execute(select(AuditEntry).order_by(AuditEntry.id.desc())).scalars())
        s.expunge_all()
    return rows


def _matches(e: AuditEntry, resource: str | None, record: str | None, action: str | None,
             since) -> bool:
    if resource is not None and e.resource != resource:
        return False
    if action is not None and e.action != action:
        return False
    if since is not None and e.at < since:
        return False
    if record is None:
        return True
    listed = e.action == "read" and e.record_id is None and record in e.detail.get("records", [])
    return e.record_id == record or listed


def _pages(db, limit: int, scan_ids: int, **filters) -> list[list[int]]:
    pages: list[list[int]] = []
    before = None
    with session_scope(db, write=False) as s:
        while True:
            page = audit.entries(s, **filters, before_id=before, limit=limit, scan_ids=scan_ids)
            assert len(page.items) <= limit
            pages.append([e.id for e in page.items])
            if page.next_before_id is None:
                return pages
            assert not page.items or page.next_before_id <= page.items[-1].id
            assert before is None or page.next_before_id < before  # always moves on
            before = page.next_before_id


@pytest.mark.parametrize("resource", [None, "customers"])
@pytest.mark.parametrize("record", [None, "3", "99"])
@pytest.mark.parametrize("action", [None, "read", "update"])
def test_following_the_pages_lists_every_match_once_newest_first(db, trail, monkeypatch,
                                                                  resource, record, action):
    monkeypatch.setattr(audit, "_WINDOW", 7)  # many windows and cut-off scans in a small trail
    expected = [e.id for e in trail if _matches(e, resource, record, action, None)]
    from_index_only = resource is not None and action not in (None, "read")
    for limit, scan_ids in ((1, 1000), (4, 20), (50, 30), (1000, 10_000)):
        pages = _pages(db, limit, scan_ids, resource=resource, record_id=record, action=action)
        assert [i for page in pages for i in page] == expected, (limit, scan_ids)
        if scan_ids < len(trail) and expected and record and not from_index_only:
            # the scan stopped short of the trail's start: a short page that says go on
            assert any(len(page) < limit for page in pages[:-1])


def test_a_record_s_reads_include_list_pages_that_showed_it(db, trail):
    listed = [e for e in trail if e.action == "read" and e.record_id is None
              and "2" in e.detail["records"] and e.resource == "customers"]
    assert listed  # the trail has such list reads
    with session_scope(db, write=False) as s:
        page = audit.entries(s, resource="customers", record_id="2", action="read", limit=1000)
    found = {e.id for e in page.items}
    assert {e.id for e in listed} <= found
    assert all(e.record_id in ("2", None) for e in page.items)
    assert page.next_before_id is None


def test_since_keeps_entries_appended_at_or_after_it(db, trail):
    middle = trail[len(trail) // 2]
    expected = [e.id for e in trail if e.at >= middle.at and _matches(e, "customers", "4", None,
                                                                      None)]
    assert [i for page in _pages(db, 5, 50, resource="customers", record_id="4",
                                 since=middle.at) for i in page] == expected
    later = trail[0].at + timedelta(seconds=1)
    assert _pages(db, 5, 50, since=later) == [[]]


def test_the_api_lists_who_read_and_changed_a_customer(db, client, make_actor):
    admin, officer, sales = make_actor("admin"), make_actor("privacy_officer"), make_actor("sales")
    created = client.post("/api/v1/customers", headers=admin.headers,
                          json={"first_name": "Ada", "last_name": "Trail",
                                "emails": [{"email": "ada.trail@example.com"}]})
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert client.get(f"/api/v1/customers/{cid}/360", headers=admin.headers).status_code == 200
    listing = client.get("/api/v1/customers?limit=5", headers=admin.headers)
    assert cid in [c["id"] for c in listing.json()["items"]]

    r = client.get(f"/api/v1/audit?resource=customers&record_id={cid}", headers=officer.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    vias = [(e["action"], e["detail"].get("via")) for e in body["items"]]
    assert ("create", None) in vias  # the change, from the index
    assert ("read", "api.360") in vias and ("read", "api.list") in vias
    assert [e["id"] for e in body["items"]] == sorted((e["id"] for e in body["items"]),
                                                      reverse=True)
    assert body["next_before_id"] is None

    reads = client.get(f"/api/v1/audit?resource=customers&record_id={cid}&action=read",
                       headers=officer.headers).json()["items"]
    assert {e["action"] for e in reads} == {"read"} and len(reads) == 2

    assert client.get("/api/v1/audit", headers=sales.headers).status_code == 403
    bad = client.get("/api/v1/audit?since=yesterday", headers=officer.headers)
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "since" in bad.text
