"""Leads from the collection API: lead-worthy `track` calls become leads and engagements.

The collection API emits `collection.tracked` for each track call it lands whose event is on the
allow-list (`ACCORD_SALES_LEAD_EVENTS`, in the same transaction); the outbox relay turns each into
a `sales.lead_event` job. The event names the stored raw call (source and message id) rather than
copying it, so no personal data sits in the outbox. The handler reads the person's e-mail (and
name, phone, company ...) from the call's `context.traits`, then its `properties`, then a
`userId` that is an e-mail address, and captures the lead like a form does (matching,
assignment, SLA). The engagement's dedupe key is the source and the call's
message id, so a redelivered event adds nothing. Page and screen views never reach here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.access.policy import Principal
from accord.core import jobs
from accord.core.errors import ValidationProblem
from accord.core.settings import get_settings
from accord.integration.collection import TRAIT_FIELDS
from accord.models import SourceRecord
from accord.sales import leads
from accord.sales.leads_schemas import FIELD_LIMITS

EVENT = "collection.tracked"
JOB = "sales.lead_event"
# Segment trait names (camelCase and snake_case) → lead fields, beyond the profile ones.
_EXTRA = {"company": "company", "industry": "industry", "employees": "employees",
          "website": "website", "country": "country", "job_title": "job_title",
          "jobTitle": "job_title"}


def lead_events() -> frozenset[str]:
    """Event names that make a lead, compared case-insensitively."""
    return get_settings().lead_event_names


def _stored_call(session: Session, source_id: Any, message_id: str) -> dict[str, Any] | None:
    """The raw track call as the collection API kept it (None once erased)."""
    raw = session.scalar(select(SourceRecord.payload).where(
        SourceRecord.source_id == source_id, SourceRecord.kind == "event",
        SourceRecord.external_id == message_id).limit(1))
    if not isinstance(raw, dict):
        return None
    context = raw.get("context")
    return {"properties": raw.get("properties") or {},
            "traits": (context.get("traits") if isinstance(context, dict) else None) or {},
            "user_id": raw.get("userId")}


def source_principal(source_id: Any) -> Principal:
    return Principal(user_id=None, email=f"collection:{source_id}", role="admin", via="system")


def _person(payload: dict[str, Any]) -> dict[str, Any]:
    """Lead fields from the call: context traits win over properties."""
    values: dict[str, Any] = {}
    for bag in (payload.get("properties") or {}, payload.get("traits") or {}):
        if not isinstance(bag, dict):
            continue
        for name, value in bag.items():
            target = TRAIT_FIELDS.get(name) or _EXTRA.get(name)
            if name == "company" and isinstance(value, dict):
                value = value.get("name")
            if name == "address" and isinstance(value, dict):
                target, value = "country", value.get("country")
            if target is None or value in (None, "") or isinstance(value, (dict, list, bool)):
                continue
            values[target] = value
    if "full_name" in values:
        full = str(values.pop("full_name")).strip()
        first, _, last = full.rpartition(" ")
        values.setdefault("first_name", first or None)
        values.setdefault("last_name", last or None)
    user_id = str(payload.get("user_id") or "")
    if "email" not in values and "@" in user_id:
        values["email"] = user_id
    out: dict[str, Any] = {}
    for name, limit in FIELD_LIMITS.items():
        value = values.get(name)
        if value is None:
            continue
        if name == "employees":
            if isinstance(value, int) and 0 <= value <= 10_000_000:
                out[name] = value
            continue
        text = str(value).strip()[:limit]
        if text:
            out[name] = text
    return out


@jobs.handler(JOB)
def handle_tracked(session: Session, job: dict[str, Any]) -> None:
    payload = job.get("payload") or {}
    event = str(payload.get("event") or "")
    if event.strip().casefold() not in lead_events():
        return
    message_id = str(payload.get("message_id") or "")
    source_id = payload.get("source_id")
    call = _stored_call(session, source_id, message_id)
    if call is None:
        return
    values = _person(call)
    if not values.get("email"):
        return  # nobody to follow up: an anonymous visitor stays on the timeline only
    occurred = payload.get("occurred_at")
    at = None
    if isinstance(occurred, str):
        try:
            at = datetime.fromisoformat(occurred)
        except ValueError:
            at = None
    detail = {"event": event[:200], "message_id": message_id[:200], "source_id": source_id}
    kind = "_".join(event.strip().lower().split())[:40] or "event"
    while True:
        try:
            leads.capture(session, source_principal(source_id), values, source="event",
                          source_detail=event[:200], kind=kind, detail=detail,
                          dedupe_key=f"event:{source_id}:{message_id}"[:128], occurred_at=at)
            return
        except ValidationProblem as exc:  # an unreadable phone or country: capture without it
            if exc.field in (None, "email") or exc.field not in values:
                return
            values.pop(exc.field)


jobs.subscribe(EVENT, JOB)
