"""`Idempotency-Key` on POST: same key and body → the saved response; other body → 422.

The key row is written in the same transaction as the change, so a replay after a crash either
finds both or neither.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.core.errors import ValidationProblem
from accord.models import IdempotencyKey


@dataclass
class Saved:
    status_code: int
    body: Any
    headers: dict[str, str]


def request_hash(method: str, path: str, body: Any) -> str:
    raw = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def lookup(
    session: Session, principal_key: str, key: str, method: str, path: str, body_hash: str
) -> Saved | None:
    if not key or len(key) > 200:
        raise ValidationProblem(
            "Idempotency-Key must be 1 to 200 characters", field="Idempotency-Key"
        )
    row = session.execute(
        select(IdempotencyKey).where(
            IdempotencyKey.principal == principal_key, IdempotencyKey.key == key
        )
    ).scalar()
    if row is None:
        return None
    if row.request_hash != body_hash or row.method != method or row.path != path:
        raise ValidationProblem(
            "this Idempotency-Key was used with a different request", field="Idempotency-Key"
        )
    return Saved(row.status_code, row.response.get("body"), dict(row.headers))


def store(
    session: Session,
    principal_key: str,
    key: str,
    method: str,
    path: str,
    body_hash: str,
    status_code: int,
    body: Any,
    headers: dict[str, str],
) -> None:
    session.add(
        IdempotencyKey(
            principal=principal_key,
            key=key,
            method=method,
            path=path,
            request_hash=body_hash,
            status_code=status_code,
            response={"body": json.loads(json.dumps(body, default=str))},
            headers=headers,
        )
    )
