"""Interactions and orders created through their APIs appear in the customer 360° timeline."""

from __future__ import annotations

from datetime import datetime


def test_360_timeline_merges_interactions_and_orders_in_time_order(client, admin):
    cid = client.post(
        "/api/v1/customers",
        json={"first_name": "Grace", "last_name": "Hopper"},
        headers=admin.headers,
    ).json()["id"]
    first = client.post(
        f"/api/v1/customers/{cid}/interactions",
        headers=admin.headers,
        json={
            "channel": "web",
            "direction": "inbound",
            "department": "marketing",
            "subject": "Visited pricing page",
            "occurred_at": "2024-01-10T08:00:00Z",
        },
    ).json()
    order = client.post(
        "/api/v1/orders",
        headers=admin.headers,
        json={
            "customer_id": cid,
            "currency": "EUR",
            "ordered_at": "2024-02-01T12:00:00+01:00",
            "channel": "app",
            "lines": [{"description": "Plan", "quantity": 1, "unit_price": "120.00"}],
        },
    ).json()
    last = client.post(
        "/api/v1/interactions",
        headers=admin.headers,
        json={
            "customer_id": cid,
            "channel": "email",
            "direction": "outbound",
            "department": "support",
            "subject": "Welcome aboard",
            "occurred_at": "2024-03-05T09:30:00-05:00",
        },
    ).json()
    # another customer's records stay out of this timeline
    other = client.post(
        "/api/v1/customers", json={"first_name": "Alan"}, headers=admin.headers
    ).json()["id"]
    client.post(
        f"/api/v1/customers/{other}/interactions",
        headers=admin.headers,
        json={"channel": "sms", "direction": "inbound", "occurred_at": "2024-02-15T00:00:00Z"},
    )

    r = client.get(f"/api/v1/customers/{cid}/360", headers=admin.headers)
    assert r.status_code == 200, r.text
    view = r.json()
    timeline = view["timeline"]
    assert [(e["kind"], e["record_id"]) for e in timeline] == [
        ("interaction", last["id"]),
        ("order", order["id"]),
        ("interaction", first["id"]),
    ]
    times = [datetime.fromisoformat(e["at"]) for e in timeline]
    assert times == sorted(times, reverse=True)
    assert times[0] == datetime.fromisoformat("2024-03-05T14:30:00+00:00")
    assert timeline[0]["subject"] == "Welcome aboard"
    assert timeline[1]["subject"] == f"Order {order['number']}"
    assert (timeline[1]["total"], timeline[1]["currency"], timeline[1]["channel"]) == (
        "120.00",
        "EUR",
        "app",
    )
    assert view["purchase_summary"]["orders"] == 1
    assert view["purchase_summary"]["revenue"] == {"EUR": "120.00"}


def test_360_of_another_teams_customer_is_404(client, make_actor):
    a, b = make_actor("sales", team="A"), make_actor("sales", team="B")
    cid = client.post(
        "/api/v1/customers", json={"first_name": "Private"}, headers=a.headers
    ).json()["id"]
    client.post(
        f"/api/v1/customers/{cid}/interactions",
        headers=a.headers,
        json={"channel": "chat", "direction": "inbound"},
    )
    assert client.get(f"/api/v1/customers/{cid}/360", headers=b.headers).status_code == 404
    view = client.get(f"/api/v1/customers/{cid}/360", headers=a.headers).json()
    assert [e["kind"] for e in view["timeline"]] == ["interaction"]
