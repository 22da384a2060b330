"""Bad input never gets a 500 or changes the database: every error is problem+json with the
field at fault."""

from __future__ import annotations

import pytest

from accord.core.settings import get_settings
from tests.access.helpers import assert_problem, seed_customer, snapshot

URL = "/api/v1/customers"


@pytest.fixture
def cid(db, admin) -> int:
    return seed_customer(db, admin.id, country="GB")


def test_malformed_json(db, client, admin, cid):
    before = snapshot(db)
    for raw in (b"{bad", b'{"first_name": "A",}', b"\xff\xfe", b'{"first_name": "A"'):
        r = client.post(
            URL, content=raw, headers={**admin.headers, "Content-Type": "application/json"}
        )
        assert_problem(r, 400, field="body")
        r = client.patch(
            f"{URL}/{cid}",
            content=raw,
            headers={**admin.headers, "Content-Type": "application/json", "If-Match": '"1"'},
        )
        assert_problem(r, 400, field="body")
    assert snapshot(db) == before


INVALID_BODIES = [
    ({"first_name": 5}, "first_name"),
    ({"first_name": "A", "emails": "a@example.com"}, "emails"),
    (
        {"first_name": "A", "emails": [{"email": "a@example.com", "is_primary": "maybe"}]},
        "emails.0.is_primary",
    ),
    ({"first_name": "A", "date_of_birth": "yesterday"}, "date_of_birth"),
    ({"first_name": "A", "date_of_birth": "1850-01-01"}, "date_of_birth"),
    ({"first_name": "A", "account_id": "x"}, "account_id"),
    ({"first_name": "A", "account_id": 424242}, "account_id"),
    ({"first_name": "A", "lifecycle_stage": "zombie"}, "lifecycle_stage"),
    ({"first_name": "A", "preferred_language": "not a language!"}, "preferred_language"),
    ({"first_name": "A", "first_name_x": 1}, "first_name_x"),
    ({"first_name": "A" * 101}, "first_name"),
    ({"last_name": ""}, "body"),
    ([1, 2], "body"),
    ("text", "body"),
    ({"first_name": "A", "emails": [{"email": "not-an-email"}]}, "emails.0.email"),
    ({"first_name": "A", "emails": [{"email": "a@@example.com"}]}, "emails.0.email"),
    ({"first_name": "A", "phones": [{"phone": "12345"}]}, "phones.0.phone"),
    (
        {"first_name": "A", "phones": [{"phone": "+44 20 7946 0018"}, {"phone": "hello there"}]},
        "phones.1.phone",
    ),
    ({"first_name": "A", "country": "XX"}, "country"),
    ({"first_name": "A", "country": "Germany"}, "country"),
    (
        {"first_name": "A", "addresses": [{"line1": "1 Way", "city": "C", "country": "ZZ"}]},
        "addresses.0.country",
    ),
    ({"first_name": "A", "custom": {"nope": 1}}, "custom.nope"),
    ({"first_name": "A", "account_id": 2**70}, "account_id"),
    ({"first_name": "A", "account_id": 0}, "account_id"),
]


def test_invalid_bodies(db, client, admin, cid):
    before = snapshot(db)
    for body, field in INVALID_BODIES:
        r = client.post(URL, json=body, headers=admin.headers)
        problem = assert_problem(r, 422, field=field)
        assert problem["title"] and problem["detail"]
        if isinstance(body, dict) and field != "body":
            patch = {k: v for k, v in body.items() if k != "first_name"} or body
            r = client.patch(
                f"{URL}/{cid}", json=patch, headers={**admin.headers, "If-Match": '"1"'}
            )
            assert_problem(r, 422, field=field)
    assert snapshot(db) == before


def test_oversized_body_with_content_length(db, client, admin):
    limit = get_settings().max_body_bytes
    before = snapshot(db)
    body = b'{"first_name": "' + b"x" * (limit + 10) + b'"}'
    r = client.post(
        URL, content=body, headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert_problem(r, 413, field="body")
    assert snapshot(db) == before


def _chunks(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_oversized_streamed_body_without_content_length(db, client, admin):
    limit = get_settings().max_body_bytes
    before = snapshot(db)
    body = b'{"first_name": "' + b"x" * (limit + 10) + b'"}'
    r = client.post(
        URL, content=_chunks(body), headers={**admin.headers, "Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_problem(r, 413, field="body")
    assert snapshot(db) == before


def test_oversized_body_with_lying_content_length(db, app, admin):
    """A client claiming a small body but sending a large one is cut off at the limit."""
    import anyio

    limit = get_settings().max_body_bytes
    before = snapshot(db)
    chunks = [b'{"first_name": "', *([b"x" * 65536] * (limit // 65536 + 2)), b'"}']
    sent: list[dict] = []

    async def run() -> None:
        pending = list(chunks)

        async def receive() -> dict:
            if not pending:
                return {"type": "http.disconnect"}
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": URL,
            "raw_path": URL.encode(),
            "query_string": b"",
            "root_path": "",
            "client": ("127.0.0.1", 1),
            "server": ("testserver", 80),
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/json"),
                (b"content-length", b"20"),
                (b"authorization", admin.headers["Authorization"].encode()),
            ],
        }
        await app(scope, receive, send)

    anyio.run(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413, sent
    assert snapshot(db) == before


INVALID_PARAMS = [
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "W10"}, "cursor"),
    ({"cursor": "WyJpZCIsIDEsICJ4Il0"}, "cursor"),
    ({"sort": "password"}, "sort"),
    ({"sort": "-id;DROP TABLE customers"}, "sort"),
    ({"nope": "1"}, "nope"),
    ({"country__like": "G%"}, "country__like"),
    ({"country__lt": "GB"}, "country__lt"),
    ({"created_at__gte": "yesterday"}, "created_at__gte"),
    ({"id": "1 OR 1=1"}, "id"),
    ({"id__in": "1,x"}, "id__in"),
    ({"lifecycle_stage": "zombie"}, "lifecycle_stage"),
    ({"limit": "0"}, "limit"),
    ({"limit": "100000"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"email": "not-an-email"}, "email"),
    ({"phone": "abc"}, "phone"),
    ({"q": "x" * 300}, "q"),
    ({"cf.missing": "1"}, "cf.missing"),
    ({"id": "99999999999999999999"}, "id"),
    ({"created_at__gte": "9999-12-31T23:59:59-14:00"}, "created_at__gte"),
    ({"updated_at__lt": "0001-01-01T00:00:00+14:00"}, "updated_at__lt"),
    ({"owner_id__in": f"1,{2**64}"}, "owner_id__in"),
]


def test_invalid_list_params(db, client, admin, cid):
    for params, field in INVALID_PARAMS:
        r = client.get(URL, params=params, headers=admin.headers)
        assert_problem(r, 422, field=field)


def test_cursor_from_another_sort(db, client, admin):
    for i in range(3):
        seed_customer(db, admin.id, first_name=f"N{i}")
    r = client.get(URL, params={"sort": "name", "limit": 1}, headers=admin.headers)
    cursor = r.json()["next_cursor"]
    assert cursor
    r = client.get(URL, params={"sort": "created_at", "cursor": cursor}, headers=admin.headers)
    assert_problem(r, 422, field="cursor")


def test_if_match_rules(db, client, admin, cid):
    before = snapshot(db)
    h = admin.headers
    assert_problem(
        client.patch(f"{URL}/{cid}", json={"first_name": "B"}, headers=h), 428, "If-Match"
    )
    assert_problem(client.delete(f"{URL}/{cid}", headers=h), 428, "If-Match")
    assert_problem(
        client.patch(f"{URL}/{cid}", json={"first_name": "B"}, headers={**h, "If-Match": '"7"'}),
        412,
        "If-Match",
    )
    assert_problem(client.delete(f"{URL}/{cid}", headers={**h, "If-Match": '"0"'}), 412, "If-Match")
    assert_problem(
        client.patch(
            f"{URL}/{cid}", json={"first_name": "B"}, headers={**h, "If-Match": "garbage"}
        ),
        422,
        "If-Match",
    )
    assert snapshot(db) == before
    r = client.patch(f"{URL}/{cid}", json={"first_name": "B"}, headers={**h, "If-Match": 'W/"1"'})
    assert r.status_code == 200 and r.headers["ETag"] == '"2"'


BAD_AUTH = [
    None,
    "Bearer",
    "Bearer acc_wrong",
    "Basic YWRtaW46YWRtaW4=",
    "Bearer " + "acc_" + "x" * 300,
    "bearer\tacc_x",
    "Token abc",
]


def test_missing_or_invalid_auth(db, client, cid):
    before = snapshot(db)
    for auth in BAD_AUTH:
        headers = {"Authorization": auth} if auth else {}
        for method, url in (
            ("GET", URL),
            ("GET", f"{URL}/{cid}"),
            ("POST", URL),
            ("PATCH", f"{URL}/{cid}"),
            ("DELETE", f"{URL}/{cid}"),
        ):
            r = client.request(method, url, headers=headers, json={"first_name": "X"})
            assert_problem(r, 401)
            assert r.headers["WWW-Authenticate"].startswith("Bearer"), (auth, method, url)
    assert snapshot(db) == before


def test_invalid_session_cookie_is_401(db, client, cid):
    client.cookies.set("accord_session", "forged")
    r = client.get(f"{URL}/{cid}")
    assert_problem(r, 401)
    assert "WWW-Authenticate" in r.headers


OTHER_ERRORS = [
    ("GET", "/api/v1/customers/abc"),
    ("GET", "/api/v1/customers/99999999999999999999"),
    ("GET", "/api/v1/customers/-1"),
    ("PUT", "/api/v1/customers/1"),
    ("GET", "/api/v1/nowhere"),
    ("GET", "/api/v1/customers/1/360?x=%00"),
    ("DELETE", "/api/v1/customers/99999999999999999999"),
]


def test_other_errors_are_problems(db, client, admin):
    for method, url in OTHER_ERRORS:
        r = client.request(method, url, headers={**admin.headers, "If-Match": '"1"'})
        assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text)
        assert_problem(r, r.status_code)


def test_nul_bytes_are_refused_not_500(db, client, admin, cid):
    before = snapshot(db)
    r = client.post(URL, json={"first_name": "a\u0000b"}, headers=admin.headers)
    assert_problem(r, 422)
    for params in ({"q": "\u0000abc"}, {"country": "\u0000"}, {"name__prefix": "a\u0000"}):
        r = client.get(URL, params=params, headers=admin.headers)
        assert r.status_code in (200, 422), (params, r.text)
        if r.status_code == 422:
            assert_problem(r, 422)
    assert snapshot(db) == before


def test_custom_numbers_beyond_storage_are_refused_on_both_engines(db, client, admin):
    r = client.post(
        "/api/v1/custom-fields",
        json={"key": "size", "label": "Size", "type": "number"},
        headers=admin.headers,
    )
    assert r.status_code == 201
    before = snapshot(db)
    for value in (1e30, "1e18", -1e308, "NaN", "Infinity", True, [1]):
        r = client.post(
            URL, json={"first_name": "A", "custom": {"size": value}}, headers=admin.headers
        )
        assert_problem(r, 422, field="custom.size")
    assert_problem(
        client.get(URL, params={"cf.size__gt": "1e40"}, headers=admin.headers), 422, "cf.size"
    )
    assert snapshot(db) == before
    r = client.post(
        URL,
        json={"first_name": "A", "custom": {"size": "999999999999.123456"}},
        headers=admin.headers,
    )
    assert r.status_code == 201 and r.json()["custom"] == {"size": 999999999999.123456}


def test_blanking_both_names_and_non_numeric_custom_values_are_refused(client, admin) -> None:
    field = client.post("/api/v1/custom-fields", headers=admin.headers,
                        json={"key": "shoe_size", "label": "Shoe size", "type": "number"})
    assert field.status_code == 201, field.text
    created = client.post("/api/v1/customers", headers=admin.headers,
                          json={"first_name": "Ada", "last_name": "Byron"})
    cid, etag = created.json()["id"], created.headers["ETag"]
    headers = {**admin.headers, "If-Match": etag}
    r = client.patch(f"/api/v1/customers/{cid}", headers=headers,
                     json={"first_name": "", "last_name": ""})
    assert r.status_code == 422 and r.json()["field"] == "first_name"
    r = client.patch(f"/api/v1/customers/{cid}", headers=headers,
                     json={"custom": {"shoe_size": "forty"}})
    assert r.status_code == 422
    assert r.json()["field"] == "custom.shoe_size"
    assert "must be a number" in r.json()["detail"]
    after = client.get(f"/api/v1/customers/{cid}", headers=admin.headers).json()
    assert after["first_name"] == "Ada" and after["version"] == created.json()["version"]
