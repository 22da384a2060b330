"""Property-based fuzzing of list parameters and JSON bodies: whatever arrives, the answer is a
2xx or a 4xx problem+json, never a 500, and a refused write changes nothing."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.access.helpers import seed_customer, snapshot

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NAMES = [
    "id",
    "lifecycle_stage",
    "value_tier",
    "preferred_channel",
    "preferred_language",
    "country",
    "account_id",
    "owner_id",
    "team_id",
    "created_at",
    "updated_at",
    "date_of_birth",
    "national_id",
    "name",
    "email",
    "phone",
    "cf.size",
    "cf.nope",
    "q",
    "limit",
    "cursor",
    "sort",
    "notes",
    "user",
    "__",
    "id__in",
    "name__prefix",
]
OPS = [
    "",
    "__eq",
    "__ne",
    "__lt",
    "__lte",
    "__gt",
    "__gte",
    "__in",
    "__prefix",
    "__isnull",
    "__like",
    "__",
]
TEXT = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "true",
            "null",
            "1,2,3",
            "2024-01-01",
            "2024-01-01T00:00:00+05:00",
            "9999-12-31",
            "0001-01-01",
            "NaN",
            "Infinity",
            "1e999",
            "-id",
            "name",
            "-name",
            "date_of_birth",
            "\x00",
            "' OR 1=1 --",
            "%",
            "_",
            "a@b.co",
            "+44 20 7946 0018",
            "eyJ4IjoxfQ",
            "WyJpZCIsMSwxXQ",
            "WyJuYW1lIiwxLDFd",
            "W251bGwsbnVsbCxudWxsXQ",
        ]
    ),
)
PARAMS = st.dictionaries(
    st.one_of(
        st.builds(lambda n, o: n + o, st.sampled_from(NAMES), st.sampled_from(OPS)),
        st.text(min_size=1, max_size=12),
    ),
    TEXT,
    max_size=4,
)


@pytest.fixture
def fuzz_env(db, client, admin, make_actor):
    r = client.post(
        "/api/v1/custom-fields",
        json={"key": "size", "label": "Size", "type": "number"},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    for i in range(3):
        seed_customer(db, admin.id, first_name=f"Fuzz{i}", country="GB", custom={"size": i})
    return client, [admin, make_actor("support", team="alpha")]


def _check(r) -> None:
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        body = r.json()
        assert {"type", "title", "status", "detail"} <= set(body)


def test_fuzz_list_params(fuzz_env):
    client, actors = fuzz_env

    @FUZZ
    @given(params=PARAMS, who=st.integers(0, 1))
    def run(params, who):
        r = client.get("/api/v1/customers", params=params, headers=actors[who].headers)
        _check(r)
        if r.status_code == 200:
            assert isinstance(r.json()["items"], list)

    run()


JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "GB",
            "2024-02-30",
            "1990-01-01",
            "a@b.co",
            "+442079460018",
            "\x00",
            "awareness",
            "gold",
            "email",
        ]
    ),
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = [
    "first_name",
    "last_name",
    "title",
    "gender",
    "date_of_birth",
    "national_id",
    "notes",
    "lifecycle_stage",
    "value_tier",
    "preferred_channel",
    "preferred_language",
    "country",
    "account_id",
    "emails",
    "phones",
    "addresses",
    "custom",
    "stage_reason",
    "id",
    "version",
]
EMAIL = st.fixed_dictionaries(
    {"email": JSON_LEAF}, optional={"kind": JSON_LEAF, "is_primary": JSON_LEAF}
)
PHONE = st.fixed_dictionaries({"phone": JSON_LEAF}, optional={"kind": JSON_LEAF})
BODY = st.one_of(
    JSON,
    st.dictionaries(
        st.sampled_from(FIELDS),
        st.one_of(
            JSON,
            st.lists(EMAIL, max_size=2),
            st.lists(PHONE, max_size=2),
            st.dictionaries(st.sampled_from(["size", "x"]), JSON_LEAF, max_size=2),
        ),
        max_size=5,
    ),
)


def test_fuzz_bodies(fuzz_env, db):
    client, actors = fuzz_env
    cid = seed_customer(db, actors[0].id, first_name="Target")

    @FUZZ
    @given(body=BODY, who=st.integers(0, 1), patch=st.booleans())
    def run(body, who, patch):
        headers = {**actors[who].headers, "Content-Type": "application/json"}
        raw = json.dumps(body)
        version = client.get(f"/api/v1/customers/{cid}", headers=actors[0].headers).json()[
            "version"
        ]
        before = snapshot(db)
        if patch:
            r = client.patch(
                f"/api/v1/customers/{cid}",
                content=raw,
                headers={**headers, "If-Match": f'"{version}"'},
            )
        else:
            r = client.post("/api/v1/customers", content=raw, headers=headers)
        _check(r)
        if r.status_code >= 400:
            assert snapshot(db) == before

    run()
