"""The interaction timeline over HTTP: CRUD, validation, record scope, concurrency, pagination."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from accord.core import db as dbmod
from accord.models import AuditEntry, Interaction, OutboxEvent

BASE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def new_customer(client, actor, name: str = "Ada") -> int:
    r = client.post(
        "/api/v1/customers", json={"first_name": name, "last_name": "Test"}, headers=actor.headers
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def post_interaction(client, actor, cid: int, **body: Any):
    payload = {
        "channel": "email",
        "direction": "inbound",
        "department": "support",
        "subject": "Hello",
        "body": "Where is my parcel?",
        **body,
    }
    return client.post(f"/api/v1/customers/{cid}/interactions", json=payload, headers=actor.headers)


def counts(db: str) -> tuple[int, int, int]:
    """Interactions, outbox events and audit rows of changes: a refused write adds none (the
    refusal itself and successful reads are audited too, so those rows are left out)."""
    with dbmod.session_factory(db)() as s:
        return (
            s.scalar(select(func.count()).select_from(Interaction)),
            s.scalar(select(func.count()).select_from(OutboxEvent)),
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action.not_in(("denied", "read")))
            ),
        )


def events(db: str, type_: str) -> list[OutboxEvent]:
    with dbmod.session_factory(db)() as s:
        return list(s.execute(select(OutboxEvent).where(OutboxEvent.type == type_)).scalars())


@pytest.fixture
def team_a(make_actor):
    """Two sales users in team A (a1 owns the customer) and one sales user in team B."""
    return (
        make_actor("sales", team="A"),
        make_actor("sales", team="A"),
        make_actor("sales", team="B"),
    )


def test_crud_happy_path(client, admin, db):
    cid = new_customer(client, admin)
    at = "2024-03-01T14:30:00+02:00"
    r = post_interaction(
        client,
        admin,
        cid,
        occurred_at=at,
        channel="phone",
        metadata={"call_id": "c-1", "duration_s": 42},
        source="pbx",
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["ETag"] == '"1"'
    assert r.headers["Location"] == f"/api/v1/interactions/{created['id']}"
    assert created["customer_id"] == cid
    assert created["channel"] == "phone"
    assert created["metadata"] == {"call_id": "c-1", "duration_s": 42}
    assert created["created_by"] == admin.id
    assert datetime.fromisoformat(created["occurred_at"]) == datetime(
        2024, 3, 1, 12, 30, tzinfo=UTC
    )

    iid = created["id"]
    r = client.get(f"/api/v1/interactions/{iid}", headers=admin.headers)
    assert r.status_code == 200
    assert r.headers["ETag"] == '"1"'
    assert r.json()["subject"] == "Hello"

    r = client.patch(
        f"/api/v1/interactions/{iid}",
        json={"subject": "Parcel lost", "department": "service"},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    assert r.json()["subject"] == "Parcel lost"
    assert r.json()["department"] == "service"
    assert r.json()["channel"] == "phone"

    r = client.delete(f"/api/v1/interactions/{iid}", headers={**admin.headers, "If-Match": '"2"'})
    assert r.status_code == 204
    assert client.get(f"/api/v1/interactions/{iid}", headers=admin.headers).status_code == 404

    assert [e.aggregate_id for e in events(db, "interaction.created")] == [str(iid)]
    assert events(db, "interaction.updated")[0].payload["fields"] == ["department", "subject"]
    assert len(events(db, "interaction.deleted")) == 1
    with dbmod.session_factory(db)() as s:
        actions = list(
            s.execute(
                select(AuditEntry.action)
                .where(AuditEntry.resource == "interactions", AuditEntry.record_id == str(iid))
                .order_by(AuditEntry.id)
            ).scalars()
        )
    assert actions == ["create", "read", "update", "delete"]


def test_post_on_collection_and_default_time(client, admin):
    cid = new_customer(client, admin)
    before = datetime.now(UTC)
    r = client.post(
        "/api/v1/interactions",
        json={"customer_id": cid, "channel": "web", "direction": "inbound"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["customer_id"] == cid
    assert body["department"] == "other"
    assert (
        before - timedelta(seconds=5)
        <= datetime.fromisoformat(body["occurred_at"])
        <= datetime.now(UTC) + timedelta(seconds=5)
    )


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"channel": "pigeon"}, "channel"),
        ({"direction": "sideways"}, "direction"),
        ({"department": "legal"}, "department"),
        ({"occurred_at": "2024-03-01T12:00:00"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"subject": "x" * 301}, "subject"),
        ({"body": "x" * 50_001}, "body"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"metadata": {"blob": "x" * 17_000}}, "metadata"),
        ({"metadata": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}, "metadata"),
        ({"created_by": 1}, "created_by"),
        ({"customer_id": 1}, "customer_id"),
        ({"version": 3}, "version"),
    ],
)
def test_create_validation(client, admin, db, patch, field):
    cid = new_customer(client, admin)
    before = counts(db)
    r = post_interaction(client, admin, cid, **patch)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field
    assert counts(db) == before


def test_update_validation_and_read_only_fields(client, admin):
    cid = new_customer(client, admin)
    iid = post_interaction(client, admin, cid).json()["id"]
    headers = {**admin.headers, "If-Match": '"1"'}
    for body, field in [
        ({"customer_id": cid}, "customer_id"),
        ({"channel": None}, "channel"),
        ({"occurred_at": None}, "occurred_at"),
        ({"id": 5}, "id"),
        ({"metadata": {"x": "y" * 20_000}}, "metadata"),
    ]:
        r = client.patch(f"/api/v1/interactions/{iid}", json=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["field"] == field
    assert client.get(f"/api/v1/interactions/{iid}", headers=admin.headers).json()["version"] == 1


def test_unknown_customer_is_404(client, admin, db):
    before = counts(db)
    r = client.post(
        "/api/v1/interactions",
        json={"customer_id": 999_999, "channel": "web", "direction": "inbound"},
        headers=admin.headers,
    )
    assert r.status_code == 404
    assert counts(db) == before


def test_if_match_required_and_checked(client, admin, db):
    cid = new_customer(client, admin)
    iid = post_interaction(client, admin, cid).json()["id"]
    url = f"/api/v1/interactions/{iid}"
    r = client.patch(url, json={"subject": "new"}, headers=admin.headers)
    assert r.status_code == 428
    assert r.json()["field"] == "If-Match"
    assert client.delete(url, headers=admin.headers).status_code == 428
    assert (
        client.patch(
            url, json={"subject": "v2"}, headers={**admin.headers, "If-Match": '"1"'}
        ).status_code
        == 200
    )
    before = counts(db)
    r = client.patch(
        url, json={"subject": "lost update"}, headers={**admin.headers, "If-Match": '"1"'}
    )
    assert r.status_code == 412
    assert client.delete(url, headers={**admin.headers, "If-Match": '"1"'}).status_code == 412
    assert counts(db) == before
    assert client.get(url, headers=admin.headers).json()["subject"] == "v2"


def test_idempotent_post_replay(client, admin, db):
    cid = new_customer(client, admin)
    headers = {**admin.headers, "Idempotency-Key": "mail-123"}
    body = {"channel": "email", "direction": "inbound", "subject": "once"}
    first = client.post(f"/api/v1/customers/{cid}/interactions", json=body, headers=headers)
    again = client.post(f"/api/v1/customers/{cid}/interactions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"]
    assert counts(db)[0] == 1
    other = client.post(
        f"/api/v1/customers/{cid}/interactions", json={**body, "subject": "twice"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["field"] == "Idempotency-Key"
    assert counts(db)[0] == 1


def test_other_team_gets_404_everywhere(client, db, team_a):
    a1, _a2, b = team_a
    cid = new_customer(client, a1)
    iid = post_interaction(client, a1, cid).json()["id"]
    other_cid = new_customer(client, b, "Bea")
    post_interaction(client, b, other_cid)
    before = counts(db)

    assert client.get(f"/api/v1/customers/{cid}/interactions", headers=b.headers).status_code == 404
    assert client.get(f"/api/v1/interactions/{iid}", headers=b.headers).status_code == 404
    assert post_interaction(client, b, cid).status_code == 404
    r = client.post(
        "/api/v1/interactions",
        json={"customer_id": cid, "channel": "web", "direction": "inbound"},
        headers=b.headers,
    )
    assert r.status_code == 404
    r = client.patch(
        f"/api/v1/interactions/{iid}",
        json={"subject": "x"},
        headers={**b.headers, "If-Match": '"1"'},
    )
    assert r.status_code == 404
    listed = client.get("/api/v1/interactions", headers=b.headers).json()["items"]
    assert {i["customer_id"] for i in listed} == {other_cid}
    # filtering on the other team's customer finds nothing rather than leaking it
    r = client.get(f"/api/v1/interactions?customer_id={cid}", headers=b.headers)
    assert r.status_code == 200 and r.json()["items"] == []
    assert counts(db)[:2] == before[:2]


def test_readable_but_not_writable_is_403(client, db, make_actor, team_a):
    a1, a2, _b = team_a
    cid = new_customer(client, a1)
    iid = post_interaction(client, a1, cid).json()["id"]
    analyst = make_actor("analyst")

    # a team mate reads and may log a new touchpoint (create: team), but not edit a1's (update: own)
    assert client.get(f"/api/v1/interactions/{iid}", headers=a2.headers).status_code == 200
    assert post_interaction(client, a2, cid).status_code == 201
    before = counts(db)
    r = client.patch(
        f"/api/v1/interactions/{iid}",
        json={"subject": "x"},
        headers={**a2.headers, "If-Match": '"1"'},
    )
    assert r.status_code == 403
    # sales has no delete grant on interactions at all, even for the owner
    assert (
        client.delete(
            f"/api/v1/interactions/{iid}", headers={**a1.headers, "If-Match": '"1"'}
        ).status_code
        == 403
    )
    assert client.get(f"/api/v1/interactions/{iid}", headers=analyst.headers).status_code == 200
    assert post_interaction(client, analyst, cid).status_code == 403
    assert counts(db) == before
    # the owner may edit
    r = client.patch(
        f"/api/v1/interactions/{iid}",
        json={"subject": "mine"},
        headers={**a1.headers, "If-Match": '"1"'},
    )
    assert r.status_code == 200


def test_marketing_logs_on_customers_it_cannot_edit(client, make_actor, team_a):
    a1, _a2, _b = team_a
    cid = new_customer(client, a1)
    marketing = make_actor("marketing")
    assert post_interaction(client, marketing, cid, department="marketing").status_code == 201


def test_manager_deletes_within_team(client, make_actor, team_a):
    a1, _a2, b = team_a
    manager = make_actor("manager", team="A")
    cid = new_customer(client, a1)
    iid = post_interaction(client, a1, cid).json()["id"]
    b_iid = post_interaction(client, b, new_customer(client, b)).json()["id"]
    r = client.delete(
        f"/api/v1/interactions/{b_iid}", headers={**manager.headers, "If-Match": '"1"'}
    )
    assert r.status_code == 404
    r = client.delete(f"/api/v1/interactions/{iid}", headers={**manager.headers, "If-Match": '"1"'})
    assert r.status_code == 204


def test_token_scope_without_interactions_is_403(client, admin, make_actor):
    cid = new_customer(client, admin)
    reader = make_actor("admin", scopes=["customers:read"])
    assert (
        client.get(f"/api/v1/customers/{cid}/interactions", headers=reader.headers).status_code
        == 403
    )
    assert client.get("/api/v1/interactions", headers=reader.headers).status_code == 403


def test_filters(client, admin):
    c1, c2 = new_customer(client, admin), new_customer(client, admin, "Bob")
    post_interaction(
        client,
        admin,
        c1,
        channel="sms",
        direction="outbound",
        occurred_at=(BASE - timedelta(days=2)).isoformat(),
    )
    post_interaction(client, admin, c1, channel="email", occurred_at=BASE.isoformat())
    post_interaction(
        client,
        admin,
        c2,
        channel="chat",
        department="sales",
        occurred_at=(BASE + timedelta(days=1)).isoformat(),
    )

    def subjects(query: str) -> list[tuple[int, str]]:
        r = client.get(f"/api/v1/interactions?{query}", headers=admin.headers)
        assert r.status_code == 200, r.text
        return [(i["customer_id"], i["channel"]) for i in r.json()["items"]]

    assert subjects("") == [(c2, "chat"), (c1, "email"), (c1, "sms")]
    assert subjects(f"customer_id={c1}") == [(c1, "email"), (c1, "sms")]
    assert subjects("channel=sms") == [(c1, "sms")]
    assert subjects("channel__in=sms,chat&sort=occurred_at") == [(c1, "sms"), (c2, "chat")]
    assert subjects("direction=outbound") == [(c1, "sms")]
    assert subjects("department=sales") == [(c2, "chat")]
    assert subjects("occurred_at__gte=2024-03-01T12:00:00Z") == [(c2, "chat"), (c1, "email")]
    assert subjects("occurred_at__lt=2024-03-01T12:00:00%2B00:00") == [(c1, "sms")]
    r = client.get(f"/api/v1/customers/{c2}/interactions", headers=admin.headers)
    assert [i["channel"] for i in r.json()["items"]] == ["chat"]

    for query, field in [
        ("channel=pigeon", "channel"),
        ("body=x", "body"),
        ("sort=subject", "sort"),
        ("occurred_at__gte=soon", "occurred_at__gte"),
        ("limit=0", "limit"),
        ("cursor=garbage", "cursor"),
        ("metadata=1", "metadata"),
    ]:
        r = client.get(f"/api/v1/interactions?{query}", headers=admin.headers)
        assert r.status_code == 422, query
        assert r.json()["field"] == field


def test_pagination_without_duplicates_or_gaps(client, admin):
    cid = new_customer(client, admin)
    other = new_customer(client, admin, "Bob")
    # ties on occurred_at are broken by id, so pages neither repeat nor skip
    times = [
        BASE,
        BASE,
        BASE + timedelta(hours=1),
        BASE - timedelta(hours=1),
        BASE,
        BASE,
        BASE + timedelta(days=3),
        BASE - timedelta(days=3),
    ]
    ids = [
        post_interaction(client, admin, cid if i % 3 else other, occurred_at=t.isoformat()).json()[
            "id"
        ]
        for i, t in enumerate(times)
    ]
    expected = [
        i for _, i in sorted(zip(times, ids, strict=True), key=lambda p: (p[0], p[1]), reverse=True)
    ]

    for url, want in [
        ("/api/v1/interactions", expected),
        (
            f"/api/v1/customers/{cid}/interactions",
            [i for i in expected if i in ids and ids.index(i) % 3],
        ),
    ]:
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            q = f"{url}?limit=3" + (f"&cursor={cursor}" if cursor else "")
            page = client.get(q, headers=admin.headers).json()
            seen += [i["id"] for i in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == want
        assert pages == -(-len(want) // 3)

    # ascending by id as well
    r = client.get("/api/v1/interactions?sort=id&limit=5", headers=admin.headers).json()
    r2 = client.get(
        f"/api/v1/interactions?sort=id&limit=5&cursor={r['next_cursor']}", headers=admin.headers
    ).json()
    assert [i["id"] for i in r["items"] + r2["items"]] == sorted(ids)
    assert r2["next_cursor"] is None


def test_a_narrower_interactions_grant_narrows_the_customer_scope(client, monkeypatch, team_a):
    """Interactions take the customer's scope *and* the role's interactions grant: with
    interactions read narrowed to `own`, a team mate still reads the customer but not its
    timeline."""
    from accord.access.policy import GRANTS

    a1, a2, _b = team_a
    cid = new_customer(client, a1)
    iid = post_interaction(client, a1, cid).json()["id"]
    own_cid = new_customer(client, a2, "Own")
    own_iid = post_interaction(client, a2, own_cid).json()["id"]
    monkeypatch.setitem(GRANTS["sales"]["interactions"], "read", "own")

    assert client.get(f"/api/v1/customers/{cid}", headers=a2.headers).status_code == 200
    assert client.get(f"/api/v1/interactions/{iid}", headers=a2.headers).status_code == 404
    r = client.get(f"/api/v1/customers/{cid}/interactions", headers=a2.headers)
    assert r.status_code == 404
    listed = client.get("/api/v1/interactions", headers=a2.headers).json()["items"]
    assert [i["id"] for i in listed] == [own_iid]
    assert client.get(f"/api/v1/interactions/{iid}", headers=a1.headers).status_code == 200
