"""Guards that keep users from locking themselves (or records) out of reach."""

from __future__ import annotations


def test_admin_cannot_deactivate_or_demote_themself(client, admin) -> None:
    me = client.get(f"/api/v1/users/{admin.id}", headers=admin.headers)
    etag = me.headers["ETag"]
    for body, field in (({"is_active": False}, "is_active"), ({"role": "analyst"}, "role")):
        r = client.patch(f"/api/v1/users/{admin.id}", json=body,
                         headers={**admin.headers, "If-Match": etag})
        assert r.status_code == 409, r.text
        assert r.json()["field"] == field
    after = client.get(f"/api/v1/users/{admin.id}", headers=admin.headers).json()
    assert after["is_active"] is True and after["role"] == "admin"


def test_team_manager_cannot_move_a_customer_out_of_the_team(client, make_actor) -> None:
    manager = make_actor("manager", team="North")
    created = client.post("/api/v1/customers", json={"first_name": "Kim", "last_name": "Lee"},
                          headers=manager.headers)
    assert created.status_code == 201, created.text
    cid, etag = created.json()["id"], created.headers["ETag"]
    r = client.post(f"/api/v1/customers/{cid}/assign", json={"team_id": None},
                    headers={**manager.headers, "If-Match": etag})
    assert r.status_code == 403, r.text
    assert r.json()["field"] == "team_id"
    still = client.get(f"/api/v1/customers/{cid}", headers=manager.headers)
    assert still.status_code == 200 and still.json()["team_id"] == manager.team_id
