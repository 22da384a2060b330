"""The append-only, hash-chained audit trail.

Each row's hash is SHA-256 over its canonical content and the previous row's hash, so editing or
deleting a row breaks the chain from that row on (`accord audit verify`). Appends are serialised:
SQLite writing sessions hold the write lock from BEGIN, PostgreSQL takes an advisory lock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from accord.access.policy import Principal
from accord.core.clock import utcnow
from accord.core.db import is_postgres, session_scope
from accord.models import AuditEntry

GENESIS = "0" * 64
_PG_LOCK = 0x61636364  # "accd"


def _canonical(at: datetime, actor_id: int | None, actor: str, action: str, resource: str,
               record_id: str | None, fields: list[Any], detail: dict[str, Any], reason: str,
               prev_hash: str) -> bytes:
    doc = {
        "at": at.isoformat(timespec="microseconds"), "actor_id": actor_id, "actor": actor,
        "action": action, "resource": resource, "record_id": record_id, "fields": fields,
        "detail": detail, "reason": reason, "prev": prev_hash,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()


def record(session: Session, principal: Principal, action: str, resource: str,
           record_id: Any = None, fields: Iterable[str] = (), detail: dict[str, Any] | None = None,
           reason: str = "") -> AuditEntry:
    """Append one entry inside the caller's transaction (commits with the change it records)."""
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    prev = session.execute(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).scalar()
    prev = prev or GENESIS
    at = utcnow()
    field_list = sorted(set(fields))
    detail = json.loads(json.dumps(detail or {}, default=str))
    rid = None if record_id is None else str(record_id)
    entry = AuditEntry(
        at=at, actor_id=principal.user_id, actor=principal.label, action=action, resource=resource,
        record_id=rid, fields=field_list, detail=detail, reason=reason, prev_hash=prev,
        hash=hashlib.sha256(_canonical(at, principal.user_id, principal.label, action, resource,
                                       rid, field_list, detail, reason, prev)).hexdigest(),
    )
    session.add(entry)
    session.flush()
    return entry


def record_read(principal: Principal, resource: str, record_ids: Iterable[Any],
                fields: Iterable[str], detail: dict[str, Any] | None = None,
                url: str | None = None) -> None:
    """Log a read of personal data in its own short write transaction (reads stay read-only)."""
    ids = [str(i) for i in record_ids]
    if not ids:
        return
    with session_scope(url) as session:
        record(session, principal, "read", resource, ids[0] if len(ids) == 1 else None, fields,
               {**(detail or {}), **({"records": ids} if len(ids) > 1 else {})})


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    prev = GENESIS
    checked = 0
    last_id = 0
    while True:
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch)
        ).scalars().all()
        if not rows:
            return VerifyResult(True, checked)
        for row in rows:
            if row.prev_hash != prev:
                return VerifyResult(False, checked, row.id, "previous-hash link broken (row removed or reordered)")
            expected = hashlib.sha256(_canonical(
                row.at, row.actor_id, row.actor, row.action, row.resource, row.record_id,
                list(row.fields or []), dict(row.detail or {}), row.reason or "", row.prev_hash,
            )).hexdigest()
            if expected != row.hash:
                return VerifyResult(False, checked, row.id, "content does not match its hash (row edited)")
            prev = row.hash
            checked += 1
            last_id = row.id
        session.expunge_all()
