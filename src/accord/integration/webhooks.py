"""Signed webhooks in: any system can push profiles, orders and interactions to a source.

A delivery is `POST /hooks/{source name}` with a JSON record or array of records, signed with
the source's webhook secret:

    Accord-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

The signature is checked over the exact bytes received, in constant time, before the body is
parsed; a timestamp more than five minutes away from our clock is refused, so a captured
delivery cannot be replayed later, and a replay inside the window writes nothing (the same
records are `unchanged` in ingest). Several `v1=` values may be sent while a secret is rotated.
Records: `{"type": "profile"|"order"|"interaction", "id": ..., "customer": ..., "data": {...}}`;
`data` holds canonical fields, bare order/interaction field names, or the source's own columns
translated by its mapping.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from accord.core.clock import utcnow
from accord.core.errors import Problem, Unauthorized
from accord.integration import ingest
from accord.integration.collection import source_principal
from accord.integration.ingest import PROFILE_COLUMNS, Incoming
from accord.models import Source

SIGNATURE_HEADER = "Accord-Signature"
TOLERANCE_SECONDS = 300
MAX_RECORDS = 1000
RECORD_TYPES = ("profile", "order", "interaction")
ORDER_FIELDS = ("number", "total", "currency", "status", "ordered_at", "channel")
INTERACTION_FIELDS = ("channel", "direction", "department", "occurred_at", "subject", "body",
                      "metadata")
CANONICAL = frozenset((*PROFILE_COLUMNS, "full_name",
                       *(f"order.{f}" for f in ORDER_FIELDS),
                       *(f"interaction.{f}" for f in INTERACTION_FIELDS)))
_BARE = {"order": ORDER_FIELDS, "interaction": INTERACTION_FIELDS}


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value a sender computes (used by tests, the docs and client examples)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def refuse(detail: str) -> Unauthorized:
    return Unauthorized(detail, field=SIGNATURE_HEADER,
                        headers={"WWW-Authenticate": f'{SIGNATURE_HEADER} realm="accord"'})


def verify(secret: str | None, body: bytes, header: str | None, now: float | None = None) -> int:
    """Check a delivery's signature; returns its timestamp or raises 401."""
    if not header:
        raise refuse(f"the {SIGNATURE_HEADER} header is missing")
    stamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit() and len(value) <= 12:
            stamp = int(value)
        elif name == "v1" and value:
            candidates.append(value.strip().lower())
    if stamp is None or not candidates:
        raise refuse(f"{SIGNATURE_HEADER} must be 't=<unix seconds>,v1=<hex signature>'")
    now = time.time() if now is None else now
    if abs(now - stamp) > TOLERANCE_SECONDS:
        raise refuse("the signature's timestamp is more than 5 minutes off; "
                      "sign each delivery when sending it")
    if not secret:
        raise refuse("the signature does not match")
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    # compare against every candidate so the time taken does not depend on which one matched
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise refuse("the signature does not match")
    return stamp


class RecordError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def mapped_columns(mapping: dict[str, Any]) -> dict[str, Any]:
    """The `column: field` pairs of a source's mapping (its `columns`, or the flat form)."""
    columns = mapping.get("columns")
    return columns if isinstance(columns, dict) else mapping


def map_fields(mapping: dict[str, Any], kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """Source columns → canonical fields; unmapped, unknown columns stay in the raw record only.

    A column the mapping maps to null is ignored, even when its name is a canonical field.
    """
    columns = mapped_columns(mapping)
    out: dict[str, Any] = {}
    for column, value in data.items():
        if column in columns:
            target = columns[column]
            if isinstance(target, str) and target.strip():
                out[target.strip()] = value
            continue
        if column in CANONICAL or column.startswith("cf."):
            out[column] = value
        elif column in _BARE.get(kind, ()):
            out[f"{kind}.{column}"] = value
    return out


def _text_id(record: dict[str, Any], key: str) -> str | None:
    value = record.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(key, "must be a string")
    text = str(value).strip()
    if len(text) > 200:
        raise RecordError(key, "longer than 200 characters")
    return text or None


def to_incoming(source: Source, record: Any, index: int) -> Incoming:
    if not isinstance(record, dict):
        raise RecordError("record", "must be a JSON object")
    kind = record.get("type")
    if kind not in RECORD_TYPES:
        raise RecordError("type", f"must be one of {', '.join(RECORD_TYPES)}")
    external_id = _text_id(record, "id")
    customer = _text_id(record, "customer")
    data = record.get("data")
    if not isinstance(data, dict):
        raise RecordError("data", "must be an object of fields")
    if kind == "profile" and external_id is None:
        raise RecordError("id", "a profile needs the person's id in the source")
    if kind != "profile" and customer is None:
        raise RecordError("customer", f"an {kind} needs the id of its customer in the source"
                          if kind == "order" else "an interaction needs its customer's id")
    fields = map_fields(source.mapping or {}, kind, data)
    return Incoming(kind, record, fields, external_id, line_no=index + 1,
                    subject_key=customer if kind != "profile" else None)


@dataclass(slots=True)
class Delivery:
    counts: dict[str, int] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"received": sum(self.counts.values()) + len(self.rejected),
                **{k: self.counts.get(k, 0) for k in ("accepted", "updated", "unchanged")},
                "rejected": self.rejected}


def decode(body: bytes) -> list[Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Problem("the request body is not valid JSON", field="body",
                      title="Malformed JSON") from None
    records = doc if isinstance(doc, list) else [doc]
    if len(records) > MAX_RECORDS:
        raise Problem(f"at most {MAX_RECORDS} records per delivery", field="body")
    return records


def deliver(session: Session, source: Source, records: list[Any]) -> Delivery:
    """Land a verified delivery in the caller's transaction (one ingest batch)."""
    result = Delivery()
    items: list[Incoming] = []
    received_at = utcnow()
    for index, record in enumerate(records):
        try:
            item = to_incoming(source, record, index)
        except RecordError as exc:
            result.rejected.append({"index": index, "field": exc.field, "reason": exc.reason})
            continue
        item.received_at = received_at
        items.append(item)
    outcomes = ingest.ingest_batch(session, source_principal(source), source, items)
    for item, outcome in zip(items, outcomes, strict=True):
        if outcome.status == "rejected":
            result.rejected.append({"index": (item.line_no or 1) - 1, "field": outcome.field,
                                    "reason": outcome.reason})
        else:
            result.counts[outcome.status] = result.counts.get(outcome.status, 0) + 1
    result.rejected.sort(key=lambda r: r["index"])
    return result
