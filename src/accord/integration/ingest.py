"""The one write path for everything a source sends: raw first, then standardised, then applied.

File imports, the collection API and signed webhooks all hand their records to `ingest_batch`.
In one transaction per batch it
1. keeps every record verbatim as an immutable `SourceRecord` (a replay of the same content is
   `unchanged` and writes nothing),
2. standardises profiles into the `SourceProfile` of their (source, external id), flagging the
   values that fail instead of dropping them; a profile remembers the fingerprint of the
   settings it was standardised with, and a replay of its record under other settings (a file
   re-imported with a corrected mapping) standardises that kept record again,
3. applies orders, interactions and tracked events to the golden customer their subject resolved
   to, or leaves them `pending` until that person is known (`apply_pending`),
4. enqueues incremental identity resolution for the new and changed profiles.
A row that cannot be used is `rejected` with its line number, field and reason; it never stops
the other rows of the batch. Inserts are executemany statements: a batch costs a handful of
round trips whatever its size.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any

from babel.numbers import get_territory_currencies
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.core import jobs
from accord.core.clock import as_utc, utcnow
from accord.core.contact import InvalidValue, fold
from accord.core.db import JSONText, dumps_json, executemany, executemany_columns
from accord.integration.standardise import (
    _MAX_LENGTH,
    PROFILE_FIELDS,
    standardise_amount,
    standardise_currency,
    standardise_date,
    standardise_profile,
)
from accord.models import (
    IdentityAlias,
    Interaction,
    Order,
    Source,
    SourceProfile,
    SourceRecord,
)
from accord.models.commerce import ORDER_STATUSES
from accord.models.customer import CHANNELS
from accord.models.integration import RECORD_KINDS
from accord.models.interaction import DEPARTMENTS, DIRECTIONS

MATCH_JOB = "integration.match"
# Canonical profile fields that are SourceProfile columns; anything else lands in `extra`.
PROFILE_COLUMNS = tuple(f for f in PROFILE_FIELDS if f in SourceProfile.__table__.columns)
IDENTIFYING = ("first_name", "last_name", "email", "phone", "national_id")
_COLUMN_LIMITS = {
    c.name: c.type.length
    for c in SourceProfile.__table__.columns
    if getattr(c.type, "length", None) and c.name in PROFILE_COLUMNS
}
# The columns narrower than the standardiser's own limit (its values longer than that are
# flagged already): only these can hold a value too long for them (the country, in theory).
_NARROWER = tuple((c, n) for c, n in _COLUMN_LIMITS.items() if n < _MAX_LENGTH.get(c, 1 << 30))
_DEPARTMENT_BY_KIND = {
    "billing": "billing",
    "webshop": "sales",
    "crm": "sales",
    "support": "support",
    "marketing": "marketing",
    "tracking": "marketing",
}
MONEY_LIMIT = Decimal("1e13")
_NO_EVIDENCE: dict[str, Any] = {}  # one object for every new profile: encoded once per batch
_EMPTY_JSON = JSONText("{}")  # what an empty dict is stored as, already encoded
_name_key = lru_cache(maxsize=65536)(fold)  # surnames repeat from record to record
# values the standardiser returns that are neither columns nor extra fields: the full name is
# split into first and last, the currency belongs to orders, the address line is split into
# address_line1, postcode and city
_NOT_EXTRA = frozenset({"full_name", "currency", "address"})
_CHUNK = 500


@dataclass(slots=True)
class Incoming:
    """One record from a source, before anything is decided about it.

    `payload` is kept verbatim; `fields` are its canonical fields, mapped from the payload by the
    caller (profile fields, `cf.<key>`, `order.*`, `interaction.*`). `subject_key` names the
    person an order, interaction or event is about (their external id in the source).
    """

    kind: str
    payload: dict[str, Any]
    fields: dict[str, Any]
    external_id: str | None = None
    line_no: int | None = None
    subject_key: str | None = None
    received_at: datetime | None = None


@dataclass(slots=True)
class Outcome:
    status: str  # accepted | updated | unchanged | rejected
    line_no: int | None = None
    external_id: str | None = None
    record_id: int | None = None
    profile_id: int | None = None
    field: str | None = None
    reason: str | None = None
    flags: dict[str, str] = dataclasses.field(default_factory=dict)


class Rejected(Exception):
    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field

    def __reduce__(self) -> tuple[Any, ...]:  # crosses process boundaries whole (`standardised`)
        return (Rejected, (self.reason, self.field))


def canonical_json(payload: dict[str, Any]) -> str:
    """Stable over key order and whitespace, so a re-sent record hashes (and reads) the same.

    The text of `json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    default=str)`, byte for byte: stored hashes were computed over it.
    """
    return dumps_json(payload, sort_keys=True, default_str=True)


def content_hash(kind: str, payload: dict[str, Any] | str) -> str:
    text = payload if isinstance(payload, str) else canonical_json(payload)
    return hashlib.sha256(f"{kind}\n{text}".encode()).hexdigest()


def parse_datetime(value: Any, *, country: str | None = None,
                   date_order: str | None = None, dates: bool = False) -> datetime:
    """ISO 8601 (with or without offset, `Z` included) or a date; naive means UTC. With
    `dates`, a date as people write it ("05/01/2024", "3 April 2024", read in `country` or by
    `date_order` as a profile's dates are) is taken too, at midnight UTC: what file exports
    of orders and interactions hold."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            if not dates:
                raise InvalidValue(f"{text!r} is not an ISO 8601 date-time") from None
            try:
                day = standardise_date(text, country=country, date_order=date_order)
            except InvalidValue:
                raise InvalidValue(f"{text!r} is not a date or date-time") from None
            moment = datetime.combine(day, time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return as_utc(moment)


def _money(value: Any, country: str | None = None) -> Decimal:
    amount = standardise_amount(value, country=country)
    if not amount.is_finite():
        raise InvalidValue(f"{value!r} is not an amount")
    if abs(amount) >= MONEY_LIMIT:
        raise InvalidValue("the amount is too large")
    return amount.quantize(Decimal("0.01"))


def _text(fields: dict[str, Any], key: str, limit: int, default: str = "") -> str:
    value = fields.get(key)
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        raise Rejected(f"longer than {limit} characters", key)
    return text or default


# --- preparing rows (pure, per record) -------------------------------------------------------


def _profile_row(fields: dict[str, Any], country: str | None,
                 date_order: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    std = standardise_profile(fields, default_country=country, date_order=date_order)
    values, flags = std.values, std.flags  # fresh dicts, this function's own
    row = dict.fromkeys(PROFILE_COLUMNS)
    extra: dict[str, Any] = {}
    for key, value in values.items():
        if key in row:
            row[key] = value
        elif key not in _NOT_EXTRA:
            extra[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
    for column, limit in _NARROWER:
        value = row[column]
        if isinstance(value, str) and len(value) > limit:
            return _profile_row_long(values, flags, country)
    return _finish_profile_row(row, extra, flags, country)


def _profile_row_long(values: dict[str, Any], flags: dict[str, str],
                      country: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    """`_profile_row` of values of which one is longer than its column (the standardiser flags
    those first, so hardly ever): flagged in the order of the columns."""
    values = dict(values)
    row: dict[str, Any] = {}
    for column in PROFILE_COLUMNS:
        value = values.pop(column, None)
        limit = _COLUMN_LIMITS.get(column)
        if isinstance(value, str) and limit and len(value) > limit:
            flags[column] = f"longer than {limit} characters"
            value = None
        row[column] = value
    extra = {k: v if isinstance(v, (str, int, float, bool)) else str(v)
             for k, v in values.items() if k not in _NOT_EXTRA}
    return _finish_profile_row(row, extra, flags, country)


def _finish_profile_row(row: dict[str, Any], extra: dict[str, Any], flags: dict[str, str],
                        country: str | None) -> tuple[dict[str, Any], dict[str, str]]:
    if not (row["first_name"] or row["last_name"] or row["email"] or row["phone"]
            or row["national_id"]):  # IDENTIFYING
        why = "; ".join(f"{k}: {v}" for k, v in flags.items())
        raise Rejected(
            "no usable name, e-mail, phone or national id" + (f" ({why})" if why else ""),
            next(iter(flags), None),
        )
    if row["country"] is None and country:
        row["country"] = country  # the source's (or the file's) records are from its country
    row["last_name_key"] = _name_key(row["last_name"]) if row["last_name"] else None
    # an empty document is stored as the same text whichever dict it came from: one shared,
    # already encoded value is written (and bound) once per batch instead of once per row
    row["extra"] = extra or _EMPTY_JSON
    row["flags"] = flags or _EMPTY_JSON
    return row, flags


def _order_row(item: Incoming, country: str | None = None,
               date_order: str | None = None) -> dict[str, Any]:
    """An order's row. Amounts, currencies and dates are read as people write them, in the
    source's (or the file's) country: "12,50" in Germany, "€", "$" in Canada; an order
    without a currency is in its country's."""
    f = item.fields
    number = _text(f, "order.number", 40) or (item.external_id or "")
    if not number:
        raise Rejected("an order needs a number", "order.number")
    if f.get("order.total") in (None, ""):
        raise Rejected("an order needs a total", "order.total")
    try:
        total = _money(f["order.total"], country)
    except InvalidValue as exc:
        raise Rejected(str(exc), "order.total") from None
    written = str(f.get("order.currency") or "").strip()
    try:
        currency = (standardise_currency(written, country=country) if written
                    else _country_currency(country))
    except InvalidValue as exc:
        raise Rejected(str(exc), "order.currency") from None
    status = _text(f, "order.status", 16, "paid").lower()
    if status not in ORDER_STATUSES:
        raise Rejected(f"unknown status {status!r}", "order.status")
    try:
        ordered_at = (parse_datetime(f["order.ordered_at"], country=country,
                                     date_order=date_order, dates=True)
                      if f.get("order.ordered_at") else None)
    except InvalidValue as exc:
        raise Rejected(str(exc), "order.ordered_at") from None
    channel = _text(f, "order.channel", 16) or None
    return {"number": number[:40], "total": total, "currency": currency, "status": status,
            "ordered_at": ordered_at or item.received_at or utcnow(), "channel": channel}


def _country_currency(country: str | None) -> str:
    currencies = get_territory_currencies(country) if country else []
    if not currencies:
        raise InvalidValue("no currency: map a currency column, or give the source or the "
                           "file its country")
    return currencies[0]


def _interaction_row(source: Source, item: Incoming, country: str | None = None,
                     date_order: str | None = None) -> dict[str, Any]:
    f = item.fields
    channel = _text(f, "interaction.channel", 16, "web").lower()
    if channel not in CHANNELS:
        raise Rejected(f"unknown channel {channel!r}", "interaction.channel")
    direction = _text(f, "interaction.direction", 16, "inbound").lower()
    if direction not in DIRECTIONS:
        raise Rejected(f"unknown direction {direction!r}", "interaction.direction")
    department = _text(f, "interaction.department", 20,
                       _DEPARTMENT_BY_KIND.get(source.kind, "other")).lower()
    if department not in DEPARTMENTS:
        raise Rejected(f"unknown department {department!r}", "interaction.department")
    try:
        occurred = (parse_datetime(f["interaction.occurred_at"], country=country,
                                   date_order=date_order, dates=True)
                    if f.get("interaction.occurred_at") else None)
    except InvalidValue as exc:
        raise Rejected(str(exc), "interaction.occurred_at") from None
    meta = f.get("interaction.metadata") or {}
    if not isinstance(meta, dict):
        raise Rejected("metadata must be an object", "interaction.metadata")
    return {"channel": channel, "direction": direction, "department": department,
            "occurred_at": occurred or item.received_at or utcnow(),
            "subject": _text(f, "interaction.subject", 300), "body": _text(f, "interaction.body",
                                                                           20000),
            "meta": meta, "source": source.name[:80]}


# --- the batch ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Prepared:
    index: int
    item: Incoming
    external_id: str
    digest: str
    payload: JSONText  # the canonical JSON the digest was computed over, stored as is
    row: dict[str, Any] = dataclasses.field(default_factory=dict)
    flags: dict[str, str] = dataclasses.field(default_factory=dict)
    existed: bool = False  # an earlier version of this kind + external id is already kept
    # a replay of the record its profile was made from, under other settings: that record's id
    record_id: int | None = None


def _chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


def prepare(source: Source, item: Incoming, *, default_country: str | None = None,
            date_order: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Standardise and validate one record without writing anything (also the import preview).

    Returns the row to store and the flags of rejected values; raises `Rejected`.
    """
    country = default_country or source.default_country
    if item.kind == "profile":
        return _profile_row(item.fields, country, date_order)
    row = (_order_row(item, country, date_order) if item.kind == "order"
           else _interaction_row(source, item, country, date_order))
    if item.subject_key is None:
        raise Rejected("no customer reference", "customer")
    return row, {}


Prepared = tuple[dict[str, Any], dict[str, str]] | Rejected


def prepare_profiles(fields: Sequence[dict[str, Any]], country: str | None,
                     date_order: str | None = None) -> list[Prepared]:
    """`prepare` of many profiles' fields (`country`: the file's or else the source's): pure, so
    an import runs it in other processes while it writes the batch before."""
    out: list[Prepared] = []
    for one in fields:
        try:
            out.append(_profile_row(one, country, date_order))
        except Rejected as exc:
            out.append(exc)
    return out


def ingest_batch(
    session: Session,
    principal: Principal,
    source: Source,
    items: Sequence[Incoming],
    *,
    import_id: int | None = None,
    default_country: str | None = None,
    date_order: str | None = None,
    unseen_kinds: frozenset[str] = frozenset(),
    standardised: Sequence[Prepared | None] | None = None,
    hashed: Sequence[tuple[str, str]] | None = None,
    standardised_with: str | None = None,
) -> list[Outcome]:
    """Land one batch in the caller's transaction; one outcome per item, in order.

    `default_country` and `date_order` override the source's for this batch (a file's mapping).
    Replays are recognised by their hash before anything is standardised, so re-importing a
    file costs little more than reading it. `unseen_kinds` are kinds whose external ids the
    caller has just found absent from the source in this transaction: not looked up again.
    `standardised`, one per item, are `prepare_profiles` results computed beforehand (None to
    prepare the item here); replays are dropped all the same. `hashed`, one per item, are their
    `canonical_json` and `content_hash`, computed beforehand. `standardised_with` fingerprints
    the caller's mapping and settings (a file's): a replayed profile record whose profile was
    standardised from it with other settings is standardised again from the record already
    kept, `updated` where a value changes and `unchanged` otherwise; no raw row is added.
    """
    now = utcnow()
    outcomes: list[Outcome | None] = [None] * len(items)
    keyed: list[_Prepared] = []
    for index, item in enumerate(items):
        external_id = (item.external_id or "").strip()
        if item.kind not in RECORD_KINDS:
            outcomes[index] = Outcome("rejected", item.line_no, item.external_id, field="kind",
                                      reason=f"unknown record kind {item.kind!r}")
            continue
        if len(external_id) > 200:
            outcomes[index] = Outcome("rejected", item.line_no, item.external_id,
                                      field="external_id",
                                      reason="external id longer than 200 characters")
            continue
        if hashed is not None:
            text, digest = hashed[index]
        else:
            text = canonical_json(item.payload)
            digest = content_hash(item.kind, text)
        keyed.append(_Prepared(index, item, external_id or f"sha256:{digest[:56]}", digest,
                               JSONText(text)))
    fresh: list[_Prepared] = []
    again: list[_Prepared] = []
    new, replayed = _drop_known(session, source, keyed, outcomes, unseen_kinds,
                                standardised_with)
    refused: list[tuple[_Prepared, Rejected]] = []
    for p in (*new, *replayed):
        try:
            ready = standardised[p.index] if standardised is not None else None
            if isinstance(ready, Rejected):
                raise ready
            p.row, p.flags = ready or prepare(source, p.item, default_country=default_country,
                                              date_order=date_order)
        except Rejected as exc:
            outcomes[p.index] = Outcome("rejected", p.item.line_no, p.item.external_id,
                                        field=exc.field, reason=exc.reason)
            if p.record_id is None:  # a kept record standardised again is kept already
                refused.append((p, exc))
            continue
        (fresh if p.record_id is None else again).append(p)
    changed: list[int] = []
    if again:
        changed = _standardise_again(session, source, again, standardised_with, outcomes)
    if fresh:
        others = [p for p in fresh if p.item.kind != "profile"]
        # whom orders and events are about, known before their records are written: the
        # events of known people are stored `applied` at once (no second write of each record)
        customers = resolve_subjects(session, source.id, (
            p.item.subject_key or "" for p in others)) if others else {}
        _insert_records(session, source, fresh, import_id, now, customers)
        profiles = [p for p in fresh if p.item.kind == "profile"]
        if profiles:
            changed += _upsert_profiles(session, source, profiles, now, outcomes,
                                        standardised_with)
        if others:
            _apply(session, source, others, customers, outcomes)
    if changed:
        jobs.enqueue(session, MATCH_JOB, {"profile_ids": sorted(changed)})
    if refused:
        _keep_rejected(session, source, refused, import_id, now)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        assert outcome is not None
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    if fresh or again:
        audit.record(session, principal, "ingest", "source_records", None, (),
                     {"source": source.name, "import_id": import_id, **counts})
    return [o for o in outcomes if o is not None]


def _drop_known(session: Session, source: Source, prepared: list[_Prepared],
                outcomes: list[Outcome | None], unseen_kinds: frozenset[str],
                standardised_with: str | None = None,
                ) -> tuple[list[_Prepared], list[_Prepared]]:
    """Mark replays (same kind, external id and content) unchanged; keep the rest. With
    `standardised_with`, replayed profile records whose profile was made from them with other
    settings are returned apart (their `record_id` set), to be standardised again."""
    known: dict[tuple[str, str, str], int] = {}  # -> the kept record's id (0: in this batch)
    by_kind: dict[str, set[str]] = {}
    for p in prepared:
        if p.item.kind not in unseen_kinds:
            by_kind.setdefault(p.item.kind, set()).add(p.external_id)
    for kind, externals in by_kind.items():
        # (source_id, kind, external_id) is the leading part of the unique index
        for ext, digest, record_id in _rows_in(
                session, "SELECT external_id, content_hash, id FROM source_records "
                "WHERE source_id = ? AND kind = ? AND external_id", (source.id, kind),
                sorted(externals)):
            known[(kind, ext, digest)] = record_id
    # a record kept as rejected is not an earlier version (its hash is marked)
    seen = {(kind, ext) for kind, ext, digest in known if not digest.startswith(REJECTED_MARK)}
    fresh, replayed = [], []
    for p in prepared:
        key = (p.item.kind, p.external_id, p.digest)
        if key in known:
            if known[key] and standardised_with is not None and p.item.kind == "profile":
                p.record_id = known[key]
                known[key] = 0  # a second copy inside the same batch is a plain replay
                replayed.append(p)
            else:
                outcomes[p.index] = Outcome("unchanged", p.item.line_no, p.external_id)
            continue
        known[key] = 0  # a second copy inside the same batch is a replay too
        p.existed = (p.item.kind, p.external_id) in seen
        seen.add((p.item.kind, p.external_id))
        fresh.append(p)
    if replayed:
        replayed = _made_otherwise(session, source, replayed, fresh, standardised_with, outcomes)
    return fresh, replayed


def _made_otherwise(session: Session, source: Source, replayed: list[_Prepared],
                    fresh: list[_Prepared], standardised_with: str | None,
                    outcomes: list[Outcome | None]) -> list[_Prepared]:
    """The replayed profile records to standardise again: those their profile was made from
    with settings other than `standardised_with`. The replay of an older version, or of a
    record a newer version in this batch replaces, stays a replay (`unchanged`)."""
    renewed = {p.external_id for p in fresh if p.item.kind == "profile"}
    current = {ext: (record_id, fingerprint) for ext, record_id, fingerprint in _rows_in(
        session, "SELECT external_id, record_id, standardised_with FROM source_profiles "
        "WHERE source_id = ? AND external_id", (source.id,),
        sorted({p.external_id for p in replayed}))}
    again = []
    for p in replayed:
        record_id, fingerprint = current.get(p.external_id, (None, None))
        if (record_id != p.record_id or fingerprint == standardised_with
                or p.external_id in renewed):
            outcomes[p.index] = Outcome("unchanged", p.item.line_no, p.external_id)
        else:
            again.append(p)
    return again


def _rows_in(session: Session, head: str, params: tuple[Any, ...],
             values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """The rows of `head IN (values)`, in chunks, straight through the driver. `head` is a
    SELECT over plain columns (no type conversion on the way back) ending in the column the
    values are looked up in, with `?` for `params`. A batch looks up every one of its ids this
    way; SQLAlchemy's rendering of an expanding IN cost more than the database's lookups."""
    connection = session.connection()
    style = connection.dialect.paramstyle
    if style not in ("qmark", "format", "pyformat"):  # pragma: no cover - sqlite and psycopg
        raise NotImplementedError(f"no IN lookups with the {style} parameter style")
    mark = "?" if style == "qmark" else "%s"
    head = head.replace("?", mark) if mark != "?" else head
    for chunk in _chunks(values):
        sql = f"{head} IN ({', '.join([mark] * len(chunk))})"
        yield from connection.exec_driver_sql(sql, (*params, *chunk))


def insert_many(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows with one executemany and return their ids, in order.

    On SQLite the write transaction holds the database lock (BEGIN IMMEDIATE), so the ids are
    allocated up front (set as each row's `id`) and the rows go straight to the driver's
    executemany: they must name every column that has a default. RETURNING would send one
    statement per row there. PostgreSQL batches RETURNING itself.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name == "sqlite":
        start = (session.scalar(select(func.max(table.c.id))) or 0) + 1
        ids = list(range(start, start + len(rows)))
        for row, row_id in zip(rows, ids, strict=True):
            row["id"] = row_id
        executemany(session, table.insert(), rows)
        return ids
    return list(session.scalars(
        table.insert().returning(table.c.id, sort_by_parameter_order=True), rows))


def insert_columns(session: Session, table: Table, columns: dict[str, list[Any]]) -> list[int]:
    """`insert_many` of rows given column by column (each list one value per row, an `id`
    column added): a batch's rows need not be built as dicts only to be taken apart again."""
    size = len(next(iter(columns.values()), []))
    if not size:
        return []
    if session.get_bind().dialect.name == "sqlite":
        start = (session.scalar(select(func.max(table.c.id))) or 0) + 1
        ids = list(range(start, start + size))
        columns["id"] = ids
        executemany_columns(session, table.insert(), columns)
        return ids
    names = list(columns)
    rows = [dict(zip(names, values, strict=True))
            for values in zip(*columns.values(), strict=True)]
    return list(session.scalars(
        table.insert().returning(table.c.id, sort_by_parameter_order=True), rows))


def _column(rows: list[dict[str, Any]], name: str) -> list[Any]:
    try:
        return list(map(itemgetter(name), rows))
    except KeyError:  # a row that does not name it: None there, as in a row-wise insert
        return [row.get(name) for row in rows]


def _initial_status(item: Incoming, customers: dict[str, int]) -> str:
    """Profiles are applied by being stored; an interaction of a known person is applied in the
    same batch; an order may still be refused there, and unknown people's records wait."""
    if item.kind == "profile":
        return "applied"
    if item.kind != "order" and item.subject_key in customers:
        return "applied"
    return "pending"


def _insert_records(session: Session, source: Source, fresh: list[_Prepared],
                    import_id: int | None, now: datetime, customers: dict[str, int]) -> None:
    size = len(fresh)
    items = [p.item for p in fresh]
    columns: dict[str, list[Any]] = {
        "source_id": [source.id] * size,
        "kind": [item.kind for item in items],
        "external_id": [p.external_id for p in fresh],
        "content_hash": [p.digest for p in fresh],
        "payload": [p.payload for p in fresh],
        "received_at": [item.received_at or now for item in items],
        "import_id": [import_id] * size,
        "line_no": [item.line_no for item in items],
        "subject_key": [item.subject_key for item in items],
        "fields": [None if item.kind == "profile" else JSONText(
            dumps_json(item.fields, default_str=True)) for item in items],
        "status": [_initial_status(item, customers) for item in items],
    }
    ids = insert_columns(session, SourceRecord.__table__, columns)
    for p, record_id in zip(fresh, ids, strict=True):
        p.row["record_id"] = record_id


REJECTED_MARK = "r:"


def rejected_hash(digest: str) -> str:
    """A rejected record's content hash: marked, so the accepted version of the same content
    (after a fix in Accord, or in the source's settings) is a row of its own."""
    return (REJECTED_MARK + digest)[:64]


def _keep_rejected(session: Session, source: Source, refused: list[tuple[_Prepared, Rejected]],
                   import_id: int | None, now: datetime) -> None:
    """Keep the records ingestion refused, raw, as `rejected` source records with the reason:
    every record that arrives is kept. A replay of one already kept adds nothing (rejections
    are rare: the lookup runs only when there are some)."""
    kept: set[tuple[str, str, str]] = set()
    by_kind: dict[str, set[str]] = {}
    for p, _ in refused:
        by_kind.setdefault(p.item.kind, set()).add(p.external_id)
    for kind, externals in by_kind.items():
        for ext, digest in _rows_in(
                session, "SELECT external_id, content_hash FROM source_records "
                "WHERE source_id = ? AND kind = ? AND external_id", (source.id, kind),
                sorted(externals)):
            kept.add((kind, ext, digest))
    rows: list[tuple[_Prepared, Rejected, str]] = []
    for p, exc in refused:
        key = (p.item.kind, p.external_id, rejected_hash(p.digest))
        if key not in kept:
            kept.add(key)
            rows.append((p, exc, key[2]))
    if not rows:
        return
    insert_columns(session, SourceRecord.__table__, {
        "source_id": [source.id] * len(rows),
        "kind": [p.item.kind for p, _, _ in rows],
        "external_id": [p.external_id for p, _, _ in rows],
        "content_hash": [digest for _, _, digest in rows],
        "payload": [p.payload for p, _, _ in rows],
        "received_at": [p.item.received_at or now for p, _, _ in rows],
        "import_id": [import_id] * len(rows),
        "line_no": [p.item.line_no for p, _, _ in rows],
        "subject_key": [p.item.subject_key for p, _, _ in rows],
        "fields": [None] * len(rows),
        "status": ["rejected"] * len(rows),
        "reason": [(f"{exc.field}: {exc.reason}" if exc.field else exc.reason)[:500]
                   for _, exc, _ in rows],
    })


def _upsert_profiles(session: Session, source: Source, profiles: list[_Prepared], now: datetime,
                     outcomes: list[Outcome | None],
                     standardised_with: str | None = None) -> list[int]:
    # the last version of an external id within the batch wins; earlier ones stay in raw
    latest: dict[str, _Prepared] = {}
    for p in profiles:
        latest[p.external_id] = p
    existing: dict[str, tuple[int, int]] = {
        ext: (pid, ver) for pid, ext, ver in _rows_in(
            session, "SELECT id, external_id, version FROM source_profiles "
            "WHERE source_id = ? AND external_id", (source.id,), sorted(latest))}
    new_preps, updates = [], []
    for ext, p in latest.items():
        if ext in existing:
            pid, version = existing[ext]
            updates.append({**p.row, "observed_at": p.item.received_at or now, "id": pid,
                            "version": version + 1, "standardised_with": standardised_with})
        else:
            new_preps.append(p)
    ids: dict[str, int] = {ext: pid for ext, (pid, _) in existing.items()}
    if new_preps:
        # column by column from the prepared rows: no copy of each row with the columns added
        rows = [p.row for p in new_preps]
        size = len(rows)
        columns = {name: _column(rows, name) for name in rows[0]}
        columns.update({
            "observed_at": [p.item.received_at or now for p in new_preps],
            "source_id": [source.id] * size,
            "external_id": [p.external_id for p in new_preps],
            "version": [1] * size,
            "link_evidence": [_NO_EVIDENCE] * size,
            "standardised_with": [standardised_with] * size,
        })
        new_ids = insert_columns(session, SourceProfile.__table__, columns)
        ids.update({p.external_id: pid for p, pid in zip(new_preps, new_ids, strict=True)})
    if updates:
        # Core, not ORM bulk: the ORM would check `version` against the value being written
        table = SourceProfile.__table__
        columns = [k for k in updates[0] if k != "id"]
        session.execute(
            table.update().where(table.c.id == bindparam("_id"))
            .values({c: bindparam(c) for c in columns}),
            [{**{c: u[c] for c in columns}, "_id": u["id"]} for u in updates],
        )
    for p in profiles:
        status = "updated" if p.external_id in existing else "accepted"
        outcomes[p.index] = Outcome(status, p.item.line_no, p.external_id, p.row["record_id"],
                                    ids[p.external_id], flags=p.flags)
    return sorted(ids[ext] for ext in latest)


# the values a profile is made of: what decides whether standardising it again changed it
_STANDARDISED = (*PROFILE_COLUMNS, "last_name_key", "extra", "flags")


def _document(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _standardise_again(session: Session, source: Source, again: list[_Prepared],
                       standardised_with: str | None,
                       outcomes: list[Outcome | None]) -> list[int]:
    """Profiles standardised again from the record they were made from, with other settings:
    `updated` (a new version) where a value changes, else `unchanged` with only the fingerprint
    recorded. The record and `observed_at` stay: nothing new was observed. Returns the ids of
    the profiles that changed."""
    table = SourceProfile.__table__
    stored: dict[str, Any] = {}
    for chunk in _chunks(sorted({p.external_id for p in again})):
        for row in session.execute(
            select(table.c.id, table.c.external_id, table.c.version,
                   *(table.c[c] for c in _STANDARDISED))
            .where(table.c.source_id == source.id, table.c.external_id.in_(chunk))
        ).mappings():
            stored[row["external_id"]] = row
    updates, marks = [], []
    for p in again:
        old = stored[p.external_id]
        new = {c: p.row[c] for c in _STANDARDISED}
        if all(_document(new[c]) == old[c] if c in ("extra", "flags") else new[c] == old[c]
               for c in _STANDARDISED):
            marks.append({"_id": old["id"], "standardised_with": standardised_with})
            outcomes[p.index] = Outcome("unchanged", p.item.line_no, p.external_id, p.record_id,
                                        old["id"])
            continue
        updates.append({**new, "version": old["version"] + 1,
                        "standardised_with": standardised_with, "_id": old["id"]})
        outcomes[p.index] = Outcome("updated", p.item.line_no, p.external_id, p.record_id,
                                    old["id"], flags=p.flags)
    for rows in (updates, marks):
        if rows:
            columns = [k for k in rows[0] if k != "_id"]
            session.execute(table.update().where(table.c.id == bindparam("_id"))
                            .values({c: bindparam(c) for c in columns}), rows)
    return [u["_id"] for u in updates]


# --- applying orders, interactions and events -----------------------------------------------


def users_of(session: Session, source_id: int, keys: Iterable[str]) -> dict[str, str]:
    """Subject keys -> the user ids (profile external ids) they are: their own, or the one
    their alias points at."""
    users = {k: k for k in sorted(set(keys))}
    for chunk in _chunks(list(users)):
        for alias, user_id in session.execute(
            select(IdentityAlias.alias, IdentityAlias.user_id)
            .where(IdentityAlias.source_id == source_id, IdentityAlias.alias.in_(chunk))
        ):
            users[alias] = user_id
    return users


def subject_keys(session: Session, source_id: int, user_ids: Iterable[str]) -> set[str]:
    """The keys records about these users may be stored under: their ids and their aliases."""
    keys = set(user_ids)
    for chunk in _chunks(sorted(keys)):
        keys.update(session.scalars(select(IdentityAlias.alias).where(
            IdentityAlias.source_id == source_id, IdentityAlias.user_id.in_(chunk))))
    return keys


def resolve_subjects(session: Session, source_id: int, keys: Iterable[str]) -> dict[str, int]:
    """Subject keys (user ids or aliases in the source) -> golden customer ids, where known."""
    users = users_of(session, source_id, keys)
    found: dict[str, int] = {}
    user_ids = sorted(set(users.values()))
    for chunk in _chunks(user_ids):
        for ext, customer_id in session.execute(
            select(SourceProfile.external_id, SourceProfile.customer_id)
            .where(SourceProfile.source_id == source_id, SourceProfile.external_id.in_(chunk),
                   SourceProfile.customer_id.is_not(None))
        ):
            found[ext] = customer_id
    return {k: found[u] for k, u in users.items() if u in found}


def _apply(session: Session, source: Source, items: list[_Prepared], customers: dict[str, int],
           outcomes: list[Outcome | None]) -> None:
    ready = []
    for p in items:
        status = "updated" if p.existed else "accepted"
        outcomes[p.index] = Outcome(status, p.item.line_no, p.external_id, p.row["record_id"])
        if p.item.subject_key in customers:
            ready.append((p.item.kind, p.row, customers[p.item.subject_key]))
    if ready:
        rejected = apply_rows(session, source, ready, interactions_marked=True)
        for p in items:
            reason = rejected.get(p.row["record_id"])
            if reason:
                outcomes[p.index] = Outcome("rejected", p.item.line_no, p.external_id,
                                            p.row["record_id"], field=reason[0], reason=reason[1])


def apply_rows(session: Session, source: Source, ready: list[tuple[str, dict[str, Any], int]],
               *, interactions_marked: bool = False) -> dict[int, tuple[str, str]]:
    """Create or update the orders and interactions of known customers; mark records applied
    (but for interactions whose records were stored `applied`: `interactions_marked`).

    Returns the records that could not be applied (record id -> (field, reason)): an order number
    already used by another source is refused rather than silently taken over.
    """
    rejected: dict[int, tuple[str, str]] = {}
    interactions = []
    applied: list[int] = []
    now = utcnow()
    for kind, row, customer_id in ready:
        record_id = row["record_id"]
        if kind == "order":
            problem = _upsert_order(session, source, row, customer_id)
            if problem:
                rejected[record_id] = problem
                continue
        else:
            fields = {k: v for k, v in row.items() if k not in ("record_id", "meta")}
            fields["metadata"] = row["meta"]  # the column's name (the mapped attribute is `meta`)
            interactions.append({**fields, "customer_id": customer_id,
                                 "source_record_id": record_id, "version": 1,
                                 "created_at": now, "updated_at": now})
            if interactions_marked:
                continue
        applied.append(record_id)
    if interactions:
        executemany(session, Interaction.__table__.insert(), interactions)
    for chunk in _chunks(applied):
        session.execute(update(SourceRecord).where(SourceRecord.id.in_(chunk))
                        .values(status="applied"))
    for chunk in _chunks(sorted(rejected)):
        session.execute(update(SourceRecord).where(SourceRecord.id.in_(chunk))
                        .values(status="rejected"))
    return rejected


def _upsert_order(session: Session, source: Source, row: dict[str, Any],
                  customer_id: int) -> tuple[str, str] | None:
    found = session.execute(
        select(Order, SourceRecord.source_id)
        .outerjoin(SourceRecord, SourceRecord.id == Order.source_record_id)
        .where(Order.number == row["number"])
    ).first()
    values = {k: row[k] for k in ("status", "currency", "total", "ordered_at", "channel")}
    if found is None:
        session.add(Order(customer_id=customer_id, number=row["number"],
                          source_record_id=row["record_id"], **values))
        session.flush()
        return None
    order, owner = found
    if owner != source.id:
        return ("order.number", f"order number {row['number']!r} belongs to another record")
    for key, value in values.items():
        setattr(order, key, value)
    order.source_record_id = row["record_id"]
    order.customer_id = customer_id
    return None


def apply_pending(session: Session, source_id: int, subject_keys: Iterable[str]) -> int:
    """Apply a source's pending orders and events whose subject has become known."""
    source = session.get(Source, source_id)
    if source is None:
        return 0
    waiting: set[str] = set()  # only subjects with something pending are worth resolving
    for chunk in _chunks(sorted(set(subject_keys))):
        waiting.update(session.scalars(
            select(SourceRecord.subject_key).where(SourceRecord.source_id == source_id,
                                                   SourceRecord.subject_key.in_(chunk),
                                                   SourceRecord.status == "pending")))
    if not waiting:
        return 0
    customers = resolve_subjects(session, source_id, waiting)
    if not customers:
        return 0
    ready = []
    for chunk in _chunks(sorted(customers)):
        for record in session.scalars(
            select(SourceRecord).where(SourceRecord.source_id == source_id,
                                       SourceRecord.subject_key.in_(chunk),
                                       SourceRecord.status == "pending")
            .order_by(SourceRecord.id)
        ):
            item = Incoming(record.kind, record.payload, record.fields or {},
                            record.external_id, record.line_no, record.subject_key,
                            record.received_at)
            try:
                row = (_order_row(item, source.default_country) if record.kind == "order"
                       else _interaction_row(source, item, source.default_country))
            except Rejected:
                continue
            row["record_id"] = record.id
            ready.append((record.kind, row, customers[record.subject_key or ""]))
    if ready:
        apply_rows(session, source, ready)
    return len(ready)
