"""Field-level rules in every query shape: a hidden field is absent from responses (and named in
`masked_fields`), and cannot be filtered, sorted, searched or written — a hidden field answers
exactly like an unknown one (422), so it cannot be probed.

Sensitive custom fields are stricter still: for roles that may not see them they do not exist
at all (not listed in `masked_fields`, 404 on their definition), so even their key stays secret.
"""

from __future__ import annotations

import pytest

from accord.access.policy import ROLES, SENSITIVE_CUSTOM_FIELD_ROLES, SENSITIVE_FIELDS
from tests.access.helpers import assert_problem, seed_customer, snapshot

SENSITIVE = SENSITIVE_FIELDS["customers"]
DOB, NID, NOTES = "1980-05-17", "QQ123456C", "prefers calls after six"


def _seed(db, owner) -> int:
    return seed_customer(
        db,
        owner.id,
        owner.team_id,
        first_name="Sam",
        last_name="Sensitive",
        date_of_birth=DOB,
        national_id=NID,
        notes=NOTES,
        custom={"shoe_size": 42, "risk": "high"},
    )


@pytest.fixture
def custom_defs(db, admin, client):
    for body in (
        {"key": "shoe_size", "label": "Shoe size", "type": "number"},
        {
            "key": "risk",
            "label": "Risk",
            "type": "choice",
            "choices": ["low", "high"],
            "sensitive": True,
        },
    ):
        r = client.post("/api/v1/custom-fields", json=body, headers=admin.headers)
        assert r.status_code == 201, r.text
    return ["shoe_size", "risk"]


@pytest.mark.parametrize("role", ROLES)
def test_read_masks_what_the_role_may_not_see(role, db, client, make_actor, custom_defs):
    actor = make_actor(role, team="alpha")
    cid = _seed(db, actor)
    hidden = sorted(f for f, roles in SENSITIVE.items() if role not in roles)
    values = {"date_of_birth": DOB, "national_id": NID, "notes": NOTES}
    for url in (f"/api/v1/customers/{cid}", f"/api/v1/customers/{cid}/360", "/api/v1/customers"):
        r = client.get(url, headers=actor.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        item = body["items"][0] if "items" in body else body.get("customer", body)
        assert item["masked_fields"] == hidden
        for name, value in values.items():
            if name in hidden:
                assert name not in item, (role, name)
                assert value not in r.text, (role, name)
            else:
                assert item[name] == value
        if role in SENSITIVE_CUSTOM_FIELD_ROLES:
            assert item["custom"] == {"shoe_size": 42, "risk": "high"}
        else:
            assert item["custom"] == {"shoe_size": 42}
            assert "risk" not in r.text


LOW = ("support", "analyst", "marketing")


HIDDEN_FILTERS = [
    ("date_of_birth__gte", "1900-01-01"),
    ("date_of_birth", DOB),
    ("date_of_birth__isnull", "false"),
    ("national_id", NID),
    ("notes", NOTES),
    ("notes__prefix", "pref"),
    ("cf.risk", "high"),
    ("cf.risk__isnull", "false"),
    ("cf.risk__in", "high,low"),
]


@pytest.mark.parametrize("role", LOW)
def test_hidden_fields_cannot_be_filtered(role, db, client, make_actor, custom_defs):
    actor = make_actor(role, team="alpha")
    _seed(db, actor)
    unknown = client.get("/api/v1/customers", params={"no_such_field": "1"}, headers=actor.headers)
    for param, value in HIDDEN_FILTERS:
        r = client.get("/api/v1/customers", params={param: value}, headers=actor.headers)
        body = assert_problem(r, 422, field=param)
        # ... and the answer is the same as for a field that does not exist at all.
        assert body["title"] == unknown.json()["title"]
        assert body["detail"].replace(param.split("__")[0], "?") == unknown.json()[
            "detail"
        ].replace("no_such_field", "?"), param


@pytest.mark.parametrize("role", LOW)
def test_hidden_fields_cannot_be_sorted(role, db, client, make_actor):
    actor = make_actor(role, team="alpha")
    for sort in ("date_of_birth", "-date_of_birth", "national_id", "notes"):
        r = client.get("/api/v1/customers", params={"sort": sort}, headers=actor.headers)
        assert_problem(r, 422, field="sort")


@pytest.mark.parametrize("role", LOW)
def test_hidden_fields_cannot_be_searched(role, db, client, make_actor, custom_defs):
    actor = make_actor(role, team="alpha")
    _seed(db, actor)
    for q in (NID, DOB, "prefers", "high", "17/05/1980"):
        r = client.get("/api/v1/customers", params={"q": q}, headers=actor.headers)
        assert r.status_code == 200 and r.json()["items"] == [], q
    # the same customer is findable by name, so the searches above really ran
    r = client.get("/api/v1/customers", params={"q": "sam"}, headers=actor.headers)
    assert len(r.json()["items"]) == 1


@pytest.mark.parametrize(
    "field,value", [("date_of_birth", DOB), ("national_id", NID), ("notes", NOTES)]
)
def test_support_cannot_write_hidden_fields(field, value, db, client, make_actor):
    support = make_actor("support", team="alpha")
    cid = seed_customer(db, support.id, support.team_id)
    before = snapshot(db)
    r = client.post(
        "/api/v1/customers", json={"first_name": "X", field: value}, headers=support.headers
    )
    assert_problem(r, 422, field=field)
    r = client.patch(
        f"/api/v1/customers/{cid}",
        json={field: value},
        headers={**support.headers, "If-Match": '"1"'},
    )
    assert_problem(r, 422, field=field)
    # even a null (clearing the field) is refused
    r = client.patch(
        f"/api/v1/customers/{cid}",
        json={field: None},
        headers={**support.headers, "If-Match": '"1"'},
    )
    assert_problem(r, 422, field=field)
    assert snapshot(db) == before


def test_support_cannot_write_sensitive_custom_fields(db, client, make_actor, custom_defs):
    support = make_actor("support", team="alpha")
    cid = seed_customer(db, support.id, support.team_id)
    before = snapshot(db)
    r = client.post(
        "/api/v1/customers",
        json={"first_name": "X", "custom": {"risk": "low"}},
        headers=support.headers,
    )
    assert_problem(r, 422, field="custom.risk")
    r = client.patch(
        f"/api/v1/customers/{cid}",
        json={"custom": {"risk": None}},
        headers={**support.headers, "If-Match": '"1"'},
    )
    assert_problem(r, 422, field="custom.risk")
    assert snapshot(db) == before
    # the definition itself is invisible
    defs = client.get("/api/v1/custom-fields", headers=support.headers).json()
    assert [d["key"] for d in defs] == ["shoe_size"]


@pytest.mark.parametrize("role", ["privacy_officer", "admin"])
def test_privileged_roles_filter_and_sort_on_sensitive_fields(
    role, db, client, make_actor, custom_defs
):
    actor = make_actor(role, team="alpha")
    cid = _seed(db, actor)
    seed_customer(db, actor.id, actor.team_id, first_name="Other", date_of_birth="1999-01-01")
    for params in (
        {"date_of_birth__lte": "1990-01-01"},
        {"national_id": NID},
        {"cf.risk": "high"},
        {"sort": "date_of_birth", "limit": "1"},
    ):
        r = client.get("/api/v1/customers", params=params, headers=actor.headers)
        assert r.status_code == 200, (params, r.text)
        assert [c["id"] for c in r.json()["items"]] == [cid], params


def test_admin_writes_sensitive_fields(db, client, admin, custom_defs):
    r = client.post(
        "/api/v1/customers",
        json={
            "first_name": "W",
            "date_of_birth": DOB,
            "national_id": NID,
            "custom": {"risk": "low"},
        },
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["date_of_birth"] == DOB and r.json()["custom"] == {"risk": "low"}
