"""Shared helpers for the trust tests: database snapshots, problem+json checks, seeding."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from accord.access.policy import Principal
from accord.core import db as dbmod

# Every table a customer write can touch; compared whole before and after a refused request.
DATA_TABLES = (
    "customers",
    "customer_emails",
    "customer_phones",
    "customer_addresses",
    "custom_field_values",
    "custom_field_definitions",
    "lifecycle_changes",
    "outbox_events",
    "jobs",
    "idempotency_keys",
    "users",
    "teams",
    "api_tokens",
)
# A refused request is itself audited as "denied" (TRUST.md, item 2); every other audit row is
# a data row that a refused request must not add or change.
DENIED = "denied"


def snapshot(url: str, tables: tuple[str, ...] = DATA_TABLES) -> dict[str, Any]:
    """Every row of `tables` (by default the customer data tables) and the audit chain's data
    rows (denials left out): what a refused request must not change."""
    engine = dbmod.get_engine(url)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for table in tables:
            sql = text(f'SELECT * FROM "{table}" ORDER BY 1')  # noqa: S608 - fixed names
            out[table] = [dict(r) for r in conn.execute(sql).mappings()]
        sql = text("SELECT * FROM audit_log WHERE action <> :denied ORDER BY id")
        out["audit_log"] = [dict(r) for r in conn.execute(sql, {"denied": DENIED}).mappings()]
    return out


def audit_actions(url: str) -> list[tuple[str, str, str | None]]:
    with dbmod.get_engine(url).connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                text("SELECT action, resource, record_id FROM audit_log ORDER BY id")
            )
        ]


def count(url: str, table: str, where: str = "") -> int:
    with dbmod.get_engine(url).connect() as conn:
        return conn.execute(text(f'SELECT COUNT(*) FROM "{table}" {where}')).scalar_one()  # noqa: S608


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """An RFC 9457 problem with the expected status (and `field`, when given)."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    for key in ("type", "title", "status", "detail"):
        assert key in body, body
    assert body["status"] == status
    if field is not None:
        assert body.get("field") == field, body
    return body


def as_admin(owner_id: int, team_id: int | None, email: str = "seed@example.com") -> Principal:
    """A principal that owns what it creates as `owner_id`/`team_id` and may do anything."""
    return Principal(user_id=owner_id, email=email, role="admin", team_id=team_id)


def seed_customer(
    url: str, owner_id: int | None = None, team_id: int | None = None, **fields: Any
) -> int:
    """Create a customer through the service (so audit and events are as in production)."""
    from accord.customers import service
    from accord.customers.schemas import CustomerCreate

    fields.setdefault("first_name", "Seed")
    fields.setdefault("last_name", "Customer")
    with dbmod.session_scope(url) as s:
        principal = (
            as_admin(owner_id, team_id)
            if owner_id
            else Principal(user_id=None, email="system", role="admin", via="system")
        )
        return service.create_customer(s, principal, CustomerCreate(**fields)).id


def etag_of(client: Any, headers: dict[str, str], customer_id: int) -> str:
    r = client.get(f"/api/v1/customers/{customer_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.headers["ETag"]
