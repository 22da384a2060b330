"""Segment-compatible collection: identify, track, page, screen, group and alias calls → ingest.

Every call is kept raw as an `event` record whose external id is its `messageId`, so delivery
is idempotent on the message id alone: a retry is dropped before anything is written, even when
the library stamped it with a new `sentAt`. Transport fields (`sentAt`, `receivedAt`,
`writeKey`) are not part of the stored payload; `timestamp` is corrected for the client's clock
skew as Segment does (`receivedAt - (sentAt - timestamp)`).

* identify → the person's profile in this source (external id = `userId`, or `anon:<anonymousId>`
  for an anonymous identify), with Segment's reserved traits mapped to canonical fields and other
  traits kept as `cf.<snake_case trait>`; successive identifies merge their traits, as in Segment.
* track / page / screen / group / alias → an interaction on the person's timeline, pending until
  the person is known.
* A call carrying both `userId` and `anonymousId`, and `alias(previousId → userId)`, record an
  `IdentityAlias`, so the anonymous events already received follow the person once known, and
  the two ids' profiles in the source end on one golden customer (`link_identified`): the
  source said they are one person, which no match score should second-guess.
* group → additionally links a known person to the Account named by the group's `name` trait
  (found by its folded name, created when absent); the group call of a person not known yet is
  linked when that person is resolved.

What needs a person who is not resolved yet is left to `follow_up`, a job queued ahead of the
batch's match job (`integration.match`), so that it runs after the match jobs of earlier batches
and before this batch's own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import SYSTEM, Principal
from accord.core import jobs
from accord.core.clock import utcnow
from accord.core.contact import InvalidValue, fold
from accord.core.db import dumps_json
from accord.core.errors import Problem, Unauthorized
from accord.core.events import emit, emit_each
from accord.core.settings import get_settings
from accord.integration import ingest
from accord.integration.ingest import Incoming, Outcome, parse_datetime
from accord.integration.sources import source_for_write_key
from accord.models import (
    Account,
    Customer,
    IdentityAlias,
    MatchReview,
    Source,
    SourceProfile,
    SourceRecord,
)

CALLS = ("identify", "track", "page", "screen", "group", "alias")
MAX_CALL_BYTES = 32 * 1024  # Segment: 32 KB per call
MAX_BATCH_BYTES = 500 * 1024  # Segment: 500 KB per batch request
MAX_ID = 190  # ids become external ids and alias keys ("anon:" + id fits the 200-char columns)
TRANSPORT = frozenset({"sentAt", "receivedAt", "writeKey"})
ANON_PREFIX = "anon:"
FOLLOW_UP_JOB = "integration.collection"
_SUBJECT = 300
_CHUNK = 500

# Segment's reserved traits (camelCase as the spec, snake_case as some server libraries send)
# → canonical profile fields. Segment's `title` is a job title; `name` is the full name.
TRAIT_FIELDS = {
    "firstName": "first_name", "first_name": "first_name",
    "lastName": "last_name", "last_name": "last_name",
    "name": "full_name",
    "email": "email",
    "phone": "phone",
    "birthday": "date_of_birth",
    "gender": "gender",
    "title": "job_title",
    "language": "language",
}
ADDRESS_FIELDS = {
    "street": "address_line1", "street2": "address_line2", "city": "city", "state": "region",
    "postalCode": "postcode", "postal_code": "postcode", "country": "country",
}
# context keys worth keeping on the timeline; ip and userAgent are left in the raw record only
CONTEXT_KEYS = {
    "page": ("url", "path", "referrer", "title", "search"),
    "campaign": ("name", "source", "medium", "term", "content"),
    "library": ("name", "version"),
    "app": ("name", "version"),
    "device": ("type", "manufacturer", "model"),
    "os": ("name", "version"),
}
_CF_KEY = re.compile(r"[^a-z0-9_]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


class MessageError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(slots=True)
class Message:
    """One validated call, ready to become records."""

    index: int
    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    payload: dict[str, Any]
    occurred_at: datetime
    received_at: datetime

    @property
    def subject(self) -> str:
        return self.user_id or ANON_PREFIX + (self.anonymous_id or "")


@dataclass(slots=True)
class Result:
    """What became of a request: counts by outcome and the calls that were refused."""

    counts: dict[str, int] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, index: int, field_name: str | None, reason: str | None) -> None:
        self.rejected.append({"index": index, "field": field_name, "reason": reason})


def source_principal(source: Source) -> Principal:
    """Who writes on behalf of a source: audited as `source:<name>`, never a user."""
    return Principal(user_id=None, email=f"source:{source.name}", role="admin", via="system")


# --- parsing the request ------------------------------------------------------------------------


def decode_body(raw: bytes, encoding: str | None, limit: int) -> Any:
    """The JSON document of a request (gzip allowed, as Segment's libraries may send it)."""
    if encoding and encoding.strip().lower() == "gzip":
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise Problem("the body is not valid gzip", field="body") from None
    elif encoding and encoding.strip().lower() not in ("identity", ""):
        raise Problem(f"unsupported Content-Encoding {encoding!r}", field="Content-Encoding",
                      status=415, title="Unsupported media type")
    if len(raw) > limit:
        raise Problem(f"the request is larger than {limit // 1024} KB", field="body",
                      title="Payload too large")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem("the request body is not valid JSON", field="body",
                      title="Malformed JSON") from None


def write_key_of(authorization: str | None, body: Any) -> str | None:
    """HTTP Basic with the write key as user name, or `writeKey` in the body (Segment's two)."""
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic" and value.strip():
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            return decoded.partition(":")[0] or None
        return None
    if isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        return body["writeKey"] or None
    return None


def unauthorized() -> Unauthorized:
    return Unauthorized(
        "a valid write key is required (HTTP Basic, the key as user name)",
        field="Authorization", headers={"WWW-Authenticate": 'Basic realm="accord"'})


def authenticate(session: Session, key: str | None) -> Source:
    source = source_for_write_key(session, key) if key else None
    if source is None:
        raise unauthorized()
    return source


def _id(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise MessageError(key, "must be a string")
    text = str(value).strip()
    if len(text) > MAX_ID:
        raise MessageError(key, f"longer than {MAX_ID} characters")
    return text or None


def _object(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MessageError(key, "must be an object")
    return value


def _moment(raw: dict[str, Any], key: str) -> datetime | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):  # the common shape, ISO 8601 with an offset or Z: parse directly
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.astimezone(UTC)
    try:
        return parse_datetime(value)
    except InvalidValue as exc:
        raise MessageError(key, str(exc)) from None


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(ingest.canonical_json(payload).encode()).hexdigest()


def prepare(raw: Any, index: int, *, received_at: datetime, call: str | None = None,
            sent_at: Any = None, context: dict[str, Any] | None = None,
            integrations: dict[str, Any] | None = None) -> Message:
    """Validate one call and build its stored payload; `MessageError` names the field at fault.

    `call` is the endpoint's type (single calls); batch messages carry their own `type`.
    `context`, `integrations` and `sent_at` are the batch-level values, which apply to every
    message of the batch unless the message sets its own.
    """
    if not isinstance(raw, dict):
        raise MessageError("message", "must be a JSON object")
    kind = call or raw.get("type")
    if kind not in CALLS:
        raise MessageError("type", f"must be one of {', '.join(CALLS)}")
    user_id = _id(raw, "userId")
    anonymous_id = _id(raw, "anonymousId")
    if kind == "alias":
        if _id(raw, "previousId") is None:
            raise MessageError("previousId", "an alias call needs the previousId")
        if user_id is None:
            raise MessageError("userId", "an alias call needs the userId")
    elif user_id is None and anonymous_id is None:
        raise MessageError("userId", "a userId or an anonymousId is required")
    if kind == "track":
        event = raw.get("event")
        if not isinstance(event, str) or not event.strip():
            raise MessageError("event", "a track call needs the event name")
    if kind == "group" and _id(raw, "groupId") is None:
        raise MessageError("groupId", "a group call needs the groupId")
    for key in ("traits", "properties", "context", "integrations"):
        _object(raw, key)
    message_id = _id(raw, "messageId")

    payload = {k: v for k, v in raw.items() if k not in TRANSPORT}
    payload["type"] = kind
    if context:
        payload["context"] = {**context, **_object(raw, "context")}
    if integrations:
        payload["integrations"] = {**integrations, **_object(raw, "integrations")}
    if message_id is None:  # a retry of the same call without an id hashes the same
        message_id = "hash:" + _digest(payload)[:56]
        payload["messageId"] = message_id

    # Segment's clock-skew correction: the client's timestamp shifted by how far its clock was
    # off when it sent the request (sentAt against our receivedAt).
    stamp = _moment(raw, "timestamp") or _moment(raw, "originalTimestamp")
    sent = _moment(raw, "sentAt")
    if sent is None and sent_at not in (None, ""):
        sent = sent_at if isinstance(sent_at, datetime) else _moment({"sentAt": sent_at},
                                                                      "sentAt")
    if stamp is None:
        occurred = received_at
    elif sent is not None:
        occurred = received_at - (sent - stamp)
    else:
        occurred = stamp
    return Message(index, kind, message_id, user_id, anonymous_id, payload, occurred,
                   received_at)


# --- mapping to canonical fields ----------------------------------------------------------------


def custom_key(trait: str) -> str:
    """`createdAt` → `created_at`; other characters become `_` (custom field key rules)."""
    key = _CF_KEY.sub("_", _CAMEL.sub(r"_\1", trait.strip()).lower()).strip("_")
    if not key or not key[0].isalpha():
        key = "t_" + key
    return key[:60]


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def trait_fields(traits: dict[str, Any]) -> dict[str, Any]:
    """Segment traits → canonical profile fields (`cf.<key>` for the unreserved ones)."""
    out: dict[str, Any] = {}
    for name, value in traits.items():
        if value is None or value == "":
            continue
        if name in TRAIT_FIELDS:
            out[TRAIT_FIELDS[name]] = _scalar(value)
        elif name == "address" and isinstance(value, dict):
            for part, target in ADDRESS_FIELDS.items():
                if value.get(part) not in (None, ""):
                    out[target] = _scalar(value[part])
        elif name == "company":
            company = value.get("name") if isinstance(value, dict) else value
            if company not in (None, ""):
                out["company"] = _scalar(company)
        elif name not in ("id", "userId", "anonymousId"):
            out[f"cf.{custom_key(name)}"] = _scalar(value)
    return out


def channel_of(message: Message) -> str:
    if message.type == "page":
        return "web"
    if message.type == "screen":
        return "app"
    context = message.payload.get("context") or {}
    library = str((context.get("library") or {}).get("name") or "").lower()
    if "analytics.js" in library or "analytics-next" in library or context.get("page"):
        return "web"
    if context.get("app") or context.get("device") or any(
            m in library for m in ("ios", "android", "react-native", "flutter", "swift",
                                   "kotlin")):
        return "app"
    return "web"


def _page_name(payload: dict[str, Any]) -> str:
    parts = [str(payload[k]).strip() for k in ("category", "name") if payload.get(k)]
    return " ".join(p for p in parts if p)


def subject_of(message: Message) -> str:
    p = message.payload
    traits = p.get("traits") or {}
    if message.type == "track":
        text = str(p["event"]).strip()
    elif message.type == "page":
        name = _page_name(p) or str((p.get("properties") or {}).get("title") or "").strip()
        text = f"Viewed {name} page" if name else "Viewed a page"
    elif message.type == "screen":
        name = _page_name(p)
        text = f"Viewed {name} screen" if name else "Viewed a screen"
    elif message.type == "identify":
        text = "Identified" + (f" ({', '.join(sorted(traits)[:8])})" if traits else "")
    elif message.type == "group":
        text = f"Joined group {traits.get('name') or p.get('groupId')}"
    else:
        text = f"Linked the identity {p.get('previousId')}"
    return text if len(text) <= _SUBJECT else text[:_SUBJECT - 1] + "…"


def metadata_of(message: Message) -> dict[str, Any]:
    p = message.payload
    meta: dict[str, Any] = {"type": message.type, "message_id": message.message_id}
    if message.anonymous_id:
        meta["anonymous_id"] = message.anonymous_id
    if message.type == "track":
        meta["event"] = p["event"]
    if message.type in ("page", "screen"):
        for key in ("name", "category"):
            if p.get(key):
                meta[key] = p[key]
    if p.get("properties"):
        meta["properties"] = p["properties"]
    if message.type == "group":
        meta["group_id"] = str(p.get("groupId"))
        if p.get("traits"):
            meta["group_traits"] = p["traits"]
    if message.type == "identify" and p.get("traits"):
        meta["traits"] = sorted(p["traits"])  # the names only: the values live on the profile
    if message.type == "alias":
        meta["previous_id"] = str(p.get("previousId"))
    context = p.get("context") or {}
    kept: dict[str, Any] = {}
    for key, names in CONTEXT_KEYS.items():
        part = context.get(key)
        if isinstance(part, dict):
            picked = {n: part[n] for n in names if part.get(n) not in (None, "")}
            if picked:
                kept[key] = picked
    if isinstance(context.get("locale"), str):
        kept["locale"] = context["locale"]
    if kept:
        meta["context"] = kept
    return meta


def event_fields(message: Message) -> dict[str, Any]:
    return {
        "interaction.channel": channel_of(message),
        "interaction.direction": "inbound",
        "interaction.occurred_at": message.occurred_at.isoformat(),
        "interaction.subject": subject_of(message),
        "interaction.metadata": metadata_of(message),
    }


# --- landing a request --------------------------------------------------------------------------


def _chunks(seq: Sequence[Any], size: int = _CHUNK) -> Any:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


def _known_messages(session: Session, source: Source, ids: list[str]) -> set[str]:
    """Message ids already delivered; one kept only as rejected is refused again, not a
    duplicate."""
    known: set[str] = set()
    for chunk in _chunks(sorted(set(ids))):
        # both columns are in the unique index: no table row is read (a rejected record's
        # hash is marked, see ingest.rejected_hash)
        known.update(ext for ext, digest in session.execute(
            select(SourceRecord.external_id, SourceRecord.content_hash).where(
                SourceRecord.source_id == source.id, SourceRecord.kind == "event",
                SourceRecord.external_id.in_(chunk)))
            if not digest.startswith(ingest.REJECTED_MARK))
    return known


def _link_aliases(session: Session, source: Source, links: dict[str, str]
                  ) -> tuple[list[str], dict[str, str]]:
    """Record alias → user id links; returns the aliases that now point somewhere new, and
    where each alias of `links` points now.

    An alias already pointing at a known user id keeps it (the events it carried were applied to
    that person); one pointing at an anonymous profile moves to the user id that identified it.
    """
    links = {a: u for a, u in links.items() if a != u}
    if not links:
        return [], {}
    existing: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(sorted(links)):
        existing.update({alias: (rid, user) for rid, alias, user in session.execute(
            select(IdentityAlias.id, IdentityAlias.alias, IdentityAlias.user_id)
            .where(IdentityAlias.source_id == source.id, IdentityAlias.alias.in_(chunk))
        )})
    now = utcnow()
    new_rows, moved, changed = [], [], []
    targets: dict[str, str] = {}
    for alias, user in links.items():
        targets[alias] = user
        if alias not in existing:
            new_rows.append({"source_id": source.id, "alias": alias, "user_id": user,
                             "created_at": now, "updated_at": now})
            changed.append(alias)
            continue
        row_id, current = existing[alias]
        if current != user and current.startswith(ANON_PREFIX) and not user.startswith(
                ANON_PREFIX):
            moved.append({"id": row_id, "user_id": user, "updated_at": now})
            changed.append(alias)
        else:
            targets[alias] = current
    if new_rows:
        session.execute(insert(IdentityAlias), new_rows)
    if moved:
        session.execute(update(IdentityAlias), moved)
    return sorted(changed), targets


def _identified_pairs(session: Session, source: Source, targets: dict[str, str],
                      changed: set[str], created: set[str], via: dict[str, str]
                      ) -> list[tuple[str, str, str]]:
    """The (alias, user id, how) statements of a batch whose two profiles may still have to be
    joined: the alias is new, or one of the profiles is, and both exist (or are being created).
    """
    candidates = {a: u for a, u in targets.items()
                  if not u.startswith(ANON_PREFIX)
                  and (a in changed or {u, a, ANON_PREFIX + a} & created)}
    if not candidates:
        return []
    keys = {k for a, u in candidates.items() for k in (u, a, ANON_PREFIX + a)}
    have = set(created)
    for chunk in _chunks(sorted(keys)):
        have.update(session.scalars(select(SourceProfile.external_id).where(
            SourceProfile.source_id == source.id, SourceProfile.external_id.in_(chunk))))
    return [(a, u, via.get(a, "identify")) for a, u in sorted(candidates.items())
            if u in have and {a, ANON_PREFIX + a} & have]


def _profile_bases(session: Session, source: Source, external_ids: list[str]
                   ) -> dict[str, dict[str, Any]]:
    """The current canonical values of the profiles an identify will update (traits merge)."""
    bases: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(set(external_ids))):
        for profile in session.scalars(select(SourceProfile).where(
                SourceProfile.source_id == source.id, SourceProfile.external_id.in_(chunk))):
            values: dict[str, Any] = {}
            for column in ingest.PROFILE_COLUMNS:
                value = getattr(profile, column)
                if value is not None:
                    values[column] = value.isoformat() if hasattr(value, "isoformat") else value
            values.update(profile.extra or {})
            bases[profile.external_id] = values
    return bases


def _merge(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    if "full_name" in new and not ({"first_name", "last_name"} & new.keys()):
        merged.pop("first_name", None)
        merged.pop("last_name", None)
    merged.update(new)
    return merged


def collect(session: Session, source: Source, raws: Sequence[Any], *,
            received_at: datetime | None = None, call: str | None = None, sent_at: Any = None,
            context: dict[str, Any] | None = None,
            integrations: dict[str, Any] | None = None,
            prepared: list[Message | MessageError] | None = None) -> Result:
    """Land a request's calls in the caller's transaction (one ingest batch for all of them)."""
    received_at = received_at or utcnow()
    if prepared is None:
        prepared = prepare_all(raws, received_at=received_at, call=call, sent_at=sent_at,
                               context=context, integrations=integrations)
    result = Result()
    messages: list[Message] = []
    for index, item in enumerate(prepared):
        if isinstance(item, MessageError):
            result.reject(index, item.field, item.reason)
        else:
            messages.append(item)
    known = _known_messages(session, source, [m.message_id for m in messages])
    fresh: list[Message] = []
    for m in messages:
        if m.message_id in known:
            result.counts["unchanged"] = result.counts.get("unchanged", 0) + 1
            continue
        known.add(m.message_id)  # a second copy inside the batch is a replay too
        fresh.append(m)
    if not fresh:
        return result

    links: dict[str, str] = {}
    via: dict[str, str] = {}  # how the batch said an alias is its user: identify or alias
    for m in fresh:
        if m.anonymous_id and m.user_id:
            # the first user id wins, over the anonymous profile an earlier call named too
            if links.get(m.anonymous_id, ANON_PREFIX).startswith(ANON_PREFIX):
                links[m.anonymous_id] = m.user_id
                via[m.anonymous_id] = "identify"
        elif m.anonymous_id and m.type == "identify":
            links.setdefault(m.anonymous_id, m.subject)
        if m.type == "alias":
            previous = str(m.payload["previousId"]).strip()
            links[previous] = m.user_id or ""
            via[previous] = "alias"
    linked, targets = _link_aliases(session, source, links)

    identifies = [m for m in fresh if m.type == "identify"]
    bases = _profile_bases(session, source, [m.subject for m in identifies]) if identifies else {}
    existing = set(bases)
    items: list[Incoming] = []
    owners: list[Message] = []
    for m in fresh:
        subject = m.user_id or m.anonymous_id
        if m.type == "identify":
            new = trait_fields(m.payload.get("traits") or {})
            if new:
                merged = _merge(bases.get(m.subject, {}), new)
                bases[m.subject] = merged
                if any(not k.startswith("cf.") for k in merged):
                    items.append(Incoming("profile", m.payload, merged, m.subject,
                                          received_at=m.received_at))
                    owners.append(m)
        items.append(Incoming("event", m.payload, event_fields(m), m.message_id,
                              subject_key=subject, received_at=m.received_at))
        owners.append(m)

    created = {i.external_id or "" for i in items if i.kind == "profile"} - existing
    _queue_follow_up(session, source, fresh, targets, set(linked), created, via)
    # the events' message ids were looked up above (`_known_messages`)
    outcomes = ingest.ingest_batch(session, source_principal(source), source, items,
                                   unseen_kinds=frozenset({"event"}))
    landed_groups = []
    tracked: list[tuple[Any, dict[str, Any] | None]] = []
    lead_worthy = get_settings().lead_event_names
    for outcome, owner, item in zip(outcomes, owners, items, strict=True):
        _count(result, outcome, item)
        if outcome.status == "rejected":
            result.reject(owner.index, outcome.field, outcome.reason)
        elif owner.type == "group" and item.kind == "event":
            landed_groups.append(owner)
        elif (owner.type == "track" and item.kind == "event"
              and str(owner.payload.get("event", "")).strip().casefold() in lead_worthy):
            # sales turns these into leads (accord.sales.lead_events); the payload names the
            # stored call, so no personal data is copied into the outbox
            tracked.append((source.id, {
                "event": owner.payload.get("event"), "message_id": owner.message_id,
                "source_id": source.id, "occurred_at": owner.occurred_at}))
    emit_each(session, "collection.tracked", "source", tracked)
    if landed_groups:
        link_groups(session, source, [(_subject_key(m), m.payload) for m in landed_groups])
    if linked:
        apply_pending(session, source, linked)
    return result


def _subject_key(message: Message) -> str:
    """The key a call's records are stored under: its user id, else its anonymous id."""
    return message.user_id or message.anonymous_id or ""


def _queue_follow_up(session: Session, source: Source, fresh: list[Message],
                     targets: dict[str, str], changed: set[str], created: set[str],
                     via: dict[str, str]) -> None:
    """Queue `follow_up` for what this batch leaves to people not resolved yet: ids it says are
    one user, its group calls of unknown people, and the waiting group calls of the people whose
    profiles it creates. Queued before the batch is ingested, hence before its match job."""
    pairs = _identified_pairs(session, source, targets, changed, created, via)
    groups = [m for m in fresh if m.type == "group" and _group_name(m.payload)]
    known = ingest.resolve_subjects(session, source.id, map(_subject_key, groups)) \
        if groups else {}
    unknown = [m.message_id for m in groups if _subject_key(m) not in known]
    keys = {k[len(ANON_PREFIX):] if k.startswith(ANON_PREFIX) else k for k in created}
    keys.update(a for a, u in targets.items() if u in created)
    subjects = sorted({r.subject for r in _group_records(session, source.id, subjects=keys)}) \
        if keys else []
    if pairs or unknown or subjects:
        jobs.enqueue(session, FOLLOW_UP_JOB, {
            "source_id": source.id, "pairs": [list(p) for p in pairs], "groups": unknown,
            "subjects": subjects})


def apply_pending(session: Session, source: Source, keys: Iterable[str]) -> int:
    """`ingest.apply_pending`, and the group calls among the records it applies link their
    accounts (their people are known now)."""
    keys = sorted(set(keys))
    waiting = _group_records(session, source.id, subjects=keys)
    applied = ingest.apply_pending(session, source.id, keys)
    if waiting:
        _link_applied(session, source, waiting)
    return applied


def _count(result: Result, outcome: Outcome, item: Incoming) -> None:
    if item.kind == "event":
        result.counts[outcome.status] = result.counts.get(outcome.status, 0) + 1


def _encoded_size(raw: Any) -> int:
    """The length of `json.dumps(raw, separators=(",", ":"), default=str)` (ASCII-escaped)."""
    text = dumps_json(raw, default_str=True)
    if not text.isascii():
        text = json.dumps(raw, separators=(",", ":"), default=str)
    return len(text)


def prepare_all(raws: Sequence[Any], *, received_at: datetime, call: str | None = None,
                sent_at: Any = None, context: dict[str, Any] | None = None,
                integrations: dict[str, Any] | None = None, check_size: bool = False
                ) -> list[Message | MessageError]:
    """Validate every call (pure: done before the write transaction starts).

    A batch-level `sentAt` that is not a date-time raises `MessageError` for the whole batch.
    """
    if sent_at is not None and not isinstance(sent_at, datetime):
        sent_at = _moment({"sentAt": sent_at}, "sentAt")
    out: list[Message | MessageError] = []
    for index, raw in enumerate(raws):
        try:
            if check_size and _encoded_size(raw) > MAX_CALL_BYTES:
                raise MessageError("message", f"larger than {MAX_CALL_BYTES // 1024} KB")
            out.append(prepare(raw, index, received_at=received_at, call=call, sent_at=sent_at,
                               context=context, integrations=integrations))
        except MessageError as exc:
            out.append(exc)
    return out


# --- group → account ------------------------------------------------------------------------------


def _group_name(payload: dict[str, Any]) -> str:
    traits = payload.get("traits")
    return str((traits or {}).get("name") or "").strip()[:200] if isinstance(traits, dict) \
        else ""


def link_groups(session: Session, source: Source,
                groups: Sequence[tuple[str, dict[str, Any]]]) -> int:
    """Link known people to the Account their group names; returns how many links changed.

    `groups` are (subject key, stored payload) of group calls. Only groups with a `name` trait
    link (the account is found by its folded name, or created); a call of a person not known yet
    waits with its pending record and is linked when that record is applied (`apply_pending`,
    `follow_up`), so each call links once.
    """
    customers = ingest.resolve_subjects(session, source.id, (key for key, _ in groups))
    principal = source_principal(source)
    changed = 0
    for key, payload in groups:
        traits = payload.get("traits") or {}
        name = _group_name(payload)
        customer_id = customers.get(key)
        if not name or customer_id is None:
            continue
        account = _account_named(session, principal, name, traits)
        customer = session.get(Customer, customer_id)
        if customer is None or customer.account_id == account.id:
            continue
        customer.account_id = account.id
        session.flush()
        audit.record(session, principal, "update", "customers", customer.id, ["account_id"],
                     {"via": "collection.group", "source": source.name,
                      "group_id": str(payload.get("groupId"))})
        emit(session, "customer.updated", "customer", customer.id, {"fields": ["account_id"]})
        changed += 1
    return changed


def _account_named(session: Session, principal: Principal, name: str,
                   traits: dict[str, Any]) -> Account:
    key = fold(name)
    account = session.scalar(select(Account).where(Account.name_key == key)
                             .order_by(Account.id).limit(1))
    if account is not None:
        return account
    employees = traits.get("employees")
    industry = traits.get("industry")
    account = Account(
        name=name, name_key=key,
        industry=str(industry)[:100] if isinstance(industry, str) and industry else None,
        employees=employees if isinstance(employees, int) and not isinstance(employees, bool)
        and 0 <= employees <= 100_000_000 else None,
    )
    session.add(account)
    session.flush()
    audit.record(session, principal, "create", "accounts", account.id, ["name", "industry",
                                                                         "employees"],
                 {"via": "collection.group"})
    emit(session, "account.created", "account", account.id, {"name": account.name})
    return account


@dataclass(frozen=True, slots=True)
class _GroupCall:
    """A stored group call: its record, whom it is about and whether it is still pending."""

    record_id: int
    subject: str
    payload: dict[str, Any]
    status: str


def _group_records(session: Session, source_id: int, *, subjects: Iterable[str] = (),
                   message_ids: Iterable[str] = ()) -> list[_GroupCall]:
    """The source's group calls with an account name: the pending ones of `subjects` (looked up
    by the records' subject index), and those with `message_ids` whatever their status."""
    found: dict[int, _GroupCall] = {}
    base = select(SourceRecord.id, SourceRecord.subject_key, SourceRecord.payload,
                  SourceRecord.status).where(SourceRecord.source_id == source_id,
                                             SourceRecord.kind == "event")
    for chunk in _chunks(sorted(set(subjects))):
        for rid, key, payload, status in session.execute(base.where(
                SourceRecord.subject_key.in_(chunk), SourceRecord.status == "pending",
                SourceRecord.payload["type"].as_string() == "group")):
            found[rid] = _GroupCall(rid, key or "", payload, status)
    for chunk in _chunks(sorted(set(message_ids))):
        for rid, key, payload, status in session.execute(
                base.where(SourceRecord.external_id.in_(chunk))):
            found[rid] = _GroupCall(rid, key or "", payload, status)
    return [g for _, g in sorted(found.items())
            if g.payload.get("type") == "group" and _group_name(g.payload)]


def _link_applied(session: Session, source: Source, calls: Sequence[_GroupCall]) -> int:
    """Link the accounts of those group calls whose records are applied now."""
    applied: set[int] = set()
    for chunk in _chunks(sorted({c.record_id for c in calls})):
        applied.update(session.scalars(select(SourceRecord.id).where(
            SourceRecord.id.in_(chunk), SourceRecord.status == "applied")))
    ready = [(c.subject, c.payload) for c in calls if c.record_id in applied]
    return link_groups(session, source, ready) if ready else 0


# --- people the batch could not resolve: after the match jobs before it -------------------------


def follow_up(session: Session, source: Source, *, pairs: Sequence[Sequence[str]] = (),
              groups: Sequence[str] = (), subjects: Sequence[str] = ()) -> None:
    """What a batch left to people not resolved when it landed (the `FOLLOW_UP_JOB`).

    `pairs` are (alias, user id, how) statements: their profiles join (`link_identified`).
    `groups` are the message ids of the batch's group calls whose person was unknown: this job
    links them, whether its own resolution applies them or an earlier match job did. `subjects`
    have older group calls still waiting: those are linked if applied here. People these need
    are resolved here, ahead of the batch's match job, which then finds them linked.
    """
    calls = _group_records(session, source.id, message_ids=groups)
    owned = {c.record_id for c in calls}
    calls += [c for c in _group_records(session, source.id, subjects=subjects)
              if c.record_id not in owned]
    link_identified(session, source, [(a, u, how) for a, u, how in pairs])
    waiting = sorted({c.subject for c in calls if c.status == "pending"})
    if waiting:
        _resolve_people(session, source.id, waiting)
        ingest.apply_pending(session, source.id, waiting)
    if calls:
        _link_applied(session, source, calls)


@jobs.handler(FOLLOW_UP_JOB)
def _follow_up_job(session: Session, payload: dict[str, Any]) -> None:
    source = session.get(Source, payload["source_id"])
    if source is not None:
        follow_up(session, source, pairs=payload.get("pairs", []),
                  groups=payload.get("groups", []), subjects=payload.get("subjects", []))


def _profiles(session: Session, source_id: int, external_ids: Iterable[str]
              ) -> dict[str, SourceProfile]:
    out: dict[str, SourceProfile] = {}
    for chunk in _chunks(sorted(set(external_ids))):
        out.update((p.external_id, p) for p in session.scalars(select(SourceProfile).where(
            SourceProfile.source_id == source_id, SourceProfile.external_id.in_(chunk))))
    return out


def _resolve_people(session: Session, source_id: int, keys: Iterable[str]) -> None:
    """Resolve now the unlinked profiles of these subjects (what the match job would do next;
    it then finds them linked); their pending records are applied as they link."""
    from accord.integration.resolution import resolve_pending

    people = _profiles(session, source_id, ingest.users_of(session, source_id, keys).values())
    unlinked = sorted(p.id for p in people.values() if p.customer_id is None)
    if unlinked:
        resolve_pending(session, SYSTEM, unlinked)


def link_identified(session: Session, source: Source,
                    pairs: Sequence[tuple[str, str, str]]) -> int:
    """Join the profiles of ids the source said are one user; returns how many it linked.

    `pairs` are (alias, user id, "identify" | "alias"): the alias's profile (keyed by the alias,
    or `anon:<alias>` for an anonymous identify) and the user's are one person. An unlinked one
    joins the other's customer by that rule (probability 1, audited, the statement as evidence);
    when neither is linked the user's profile is resolved first. One linked to another customer
    stays there and the pair goes to review: joining two customers is a merge.
    """
    from accord.integration.resolution import rebuild, resolve_pending

    current = ingest.users_of(session, source.id, (a for a, _, _ in pairs))
    pairs = [(a, u, how) for a, u, how in pairs if current.get(a) == u]
    if not pairs:
        return 0
    profiles = _profiles(session, source.id, (
        k for a, u, _ in pairs for k in (u, a, ANON_PREFIX + a)))

    def people(alias: str, user: str) -> tuple[SourceProfile | None, list[SourceProfile]]:
        return profiles.get(user), [profiles[k] for k in (alias, ANON_PREFIX + alias)
                                    if k in profiles and k != user]

    first = set()
    for alias, user, _ in pairs:
        own, others = people(alias, user)
        if own is not None and others and own.customer_id is None and all(
                p.customer_id is None for p in others):
            first.add(own.id)
    if first:
        resolve_pending(session, SYSTEM, sorted(first))
        session.execute(select(SourceProfile)  # their links, as the resolution wrote them
                        .where(SourceProfile.id.in_([p.id for p in profiles.values()]))
                        .execution_options(populate_existing=True)).all()
    principal = source_principal(source)
    joined: list[SourceProfile] = []
    for alias, user, how in pairs:
        own, others = people(alias, user)
        anchor = own if own is not None and own.customer_id else next(
            (p for p in others if p.customer_id), None)
        if own is None or anchor is None:
            continue
        said = (f"anonymous id {alias} identified as user {user}" if how == "identify"
                else f"{alias} aliased to user {user}")
        for p in (own, *others):
            if p is anchor:
                continue
            if p.customer_id is None:
                _link_profile(session, principal, p, anchor, {
                    "rule": said, "other_profile_id": anchor.id, "alias": alias,
                    "user_id": user})
                joined.append(p)
            elif p.customer_id != anchor.customer_id:
                _propose_review(session, p, anchor)
    if joined:
        rebuild(session, {p.customer_id for p in joined if p.customer_id})
        # what waited for the joined profiles follows them (their group calls link accounts)
        apply_pending(session, source, ingest.subject_keys(
            session, source.id, {p.external_id for p in joined}))
    return len(joined)


def _link_profile(session: Session, principal: Principal, profile: SourceProfile,
                  anchor: SourceProfile, evidence: dict[str, Any]) -> None:
    """Link `profile` to `anchor`'s customer by rule: recorded as a link (so a steward's unlink
    takes back exactly what it brought) and audited."""
    from accord.integration.stewardship import record_link

    customer = session.get(Customer, anchor.customer_id)
    assert customer is not None
    record_link(session, principal, customer, [profile.id])
    profile.customer_id = customer.id
    profile.link_method = "rule"
    profile.match_probability = 1.0
    profile.link_evidence = evidence
    profile.linked_at = utcnow()
    session.flush()
    audit.record(session, principal, "link", "source_profiles", profile.id,
                 ("customer_id", "link_method"), {"customer_id": customer.id, **evidence})


def _propose_review(session: Session, a: SourceProfile, b: SourceProfile) -> None:
    """Two customers the source says are one person: a merge for a steward, unless one was
    proposed (or refused) already."""
    from accord.integration.resolution import side_by_side

    left, right = sorted((a, b), key=lambda p: p.id)
    if session.scalar(select(MatchReview.id).where(MatchReview.left_id == left.id,
                                                   MatchReview.right_id == right.id)):
        return
    session.add(MatchReview(left_id=left.id, right_id=right.id, match_probability=1.0,
                            match_weight=0.0, fields=side_by_side(left, right),
                            model_version=None, status="pending"))
    session.flush()


# --- group commit ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Job:
    """One request waiting to be written: its write key and its validated calls."""

    key: str | None
    prepared: list[Message | MessageError]
    single: bool = False
    result: Result | None = None
    error: BaseException | None = None
    lead: bool = False
    finished: bool = False
    wake: threading.Event = field(default_factory=threading.Event)

    def finish(self, result: Result | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.finished = result, error, True
        self.wake.set()


class GroupCommit:
    """Concurrent collection requests share one write transaction and one durable commit.

    A write key's source is a single writer on SQLite anyway; instead of queueing for the lock
    one by one, the requests that arrive while a transaction is running are written together by
    the next one (a leader thread, promoted from the waiting requests, so no request waits for
    more than the group in front of it). Calls of the same source in a group form one ingest
    batch; each request still gets its own answer. If a group fails, its requests are retried
    one by one, so one bad request cannot fail the others. Nothing is answered before commit.
    """

    def __init__(self, max_messages: int = 5000) -> None:
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._pending: list[Job] = []
        self._leading = False

    def submit(self, job: Job) -> Result:
        with self._lock:
            self._pending.append(job)
            if not self._leading:
                self._leading = job.lead = True
        if not job.lead:
            job.wake.wait()
        if not job.finished:  # promoted to lead the next group (which starts with this job)
            self._lead()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _lead(self) -> None:
        with self._lock:
            group, size = [], 0
            while self._pending and (not group or size + len(self._pending[0].prepared)
                                     <= self.max_messages):
                job = self._pending.pop(0)
                group.append(job)
                size += len(job.prepared)
        try:
            write_group(group)
        finally:
            for job in group:
                if not job.finished:
                    job.finish(error=RuntimeError("the request was not written"))
            with self._lock:
                if self._pending:
                    successor = self._pending[0]
                    successor.lead = True
                    successor.wake.set()
                else:
                    self._leading = False


def write_group(group: list[Job]) -> None:
    """Write the jobs in one transaction; on failure, each alone (with one retry on a race)."""
    from accord.core.db import session_factory

    if len(group) > 1:
        session = session_factory(write=True)()
        try:
            done = _write(session, group)
            session.commit()
        except Exception:  # noqa: BLE001 - retried job by job below, where it is reported
            session.rollback()
            done = None
        finally:
            session.close()
        if done is not None:
            for job, (result, error) in zip(group, done, strict=True):
                job.finish(result, error)
            return
    for job in group:
        for attempt in (1, 2):
            session = session_factory(write=True)()
            try:
                [(result, error)] = _write(session, [job])
                session.commit()
                job.finish(result, error)
                break
            except IntegrityError as exc:
                # two deliveries of the same message raced (PostgreSQL): the retry sees the
                # winner and answers it as a replay
                session.rollback()
                if attempt == 2:
                    job.finish(error=exc)
            except Exception as exc:  # noqa: BLE001 - reported to the request that caused it
                session.rollback()
                job.finish(error=exc)
                break
            finally:
                session.close()


def _write(session: Session, group: list[Job]
           ) -> list[tuple[Result | None, BaseException | None]]:
    out: list[tuple[Result | None, BaseException | None]] = [(None, None)] * len(group)
    sources: dict[str | None, Source | None] = {}
    by_source: dict[int, list[int]] = {}
    for i, job in enumerate(group):
        if job.key not in sources:
            sources[job.key] = source_for_write_key(session, job.key) if job.key else None
        source = sources[job.key]
        if source is None:
            out[i] = (None, unauthorized())
            continue
        first = job.prepared[0] if job.prepared else None
        if job.single and isinstance(first, MessageError):
            out[i] = (None, Problem(f"{first.field}: {first.reason}", field=first.field))
            continue
        by_source.setdefault(source.id, []).append(i)
    for members in by_source.values():
        source = sources[group[members[0]].key]
        assert source is not None
        merged: list[Message | MessageError] = []
        owner: list[tuple[int, int]] = []
        for i in members:
            for local, item in enumerate(group[i].prepared):
                if isinstance(item, Message):
                    item.index = len(merged)
                merged.append(item)
                owner.append((i, local))
        result = collect(session, source, [], prepared=merged)
        per_job = {i: Result() for i in members}
        for rejection in result.rejected:
            i, local = owner[rejection["index"]]
            per_job[i].rejected.append({**rejection, "index": local})
        for i, res in per_job.items():
            res.rejected.sort(key=lambda r: r["index"])
            out[i] = (res, None)
    return out


WRITER = GroupCommit()
