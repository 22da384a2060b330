"""Golden records: survivorship over the source profiles linked to a customer, with lineage.

Each golden field takes its value by a configurable rule (`ACCORD_SURVIVORSHIP`, a JSON object
of field -> rule): the most trusted source, the most recent observation, the most complete value
or the most frequent one. Every profile whose value equals the winning value is recorded as its
lineage, so a steward sees all the sources that agree. Contact points are additive: every
distinct e-mail, phone and address of a linked profile becomes a contact point of the golden
customer, and the rule picks the primary one; nothing entered by hand is ever removed by a
rebuild (an unmerge restores exact prior state from its own snapshot).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from accord.core.clock import utcnow
from accord.core.contact import InvalidValue, fold, name_keys
from accord.core.db import executemany
from accord.core.settings import get_settings
from accord.models import (
    Base,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    CustomFieldValue,
    GoldenLineage,
    Source,
    SourceProfile,
)

RULES = ("most_trusted", "most_recent", "most_complete", "most_frequent")
SCALAR_FIELDS = ("title", "first_name", "last_name", "gender", "date_of_birth", "national_id",
                 "country", "language")
CONTACT_FIELDS = ("email", "phone", "address")
DEFAULT_RULES: dict[str, str] = {
    "title": "most_trusted",
    "first_name": "most_trusted",
    "last_name": "most_trusted",
    "gender": "most_trusted",
    "date_of_birth": "most_trusted",
    "national_id": "most_trusted",
    "country": "most_recent",
    "language": "most_recent",
    "email": "most_trusted",
    "phone": "most_trusted",
    "address": "most_recent",
}
# Customer column for a golden field, where the names differ.
_CUSTOMER_COLUMN = {"language": "preferred_language"}
_LIMITS = {"title": 40, "first_name": 100, "last_name": 100, "gender": 20, "national_id": 64,
           "language": 20}


def rules() -> dict[str, str]:
    configured = get_settings().survivorship
    unknown = {f: r for f, r in configured.items() if f not in DEFAULT_RULES or r not in RULES}
    if unknown:
        raise ValueError(f"ACCORD_SURVIVORSHIP: unknown field or rule in {unknown}")
    return {**DEFAULT_RULES, **configured}


@dataclass(slots=True)
class ProfileView:
    """What survivorship needs to know about one linked source profile."""

    id: int
    record_id: int
    trust_rank: int
    observed_at: datetime
    values: dict[str, Any]


@dataclass
class Golden:
    values: dict[str, Any] = field(default_factory=dict)
    emails: list[tuple[str, bool]] = field(default_factory=list)  # (value, is_primary)
    phones: list[tuple[str, bool]] = field(default_factory=list)
    addresses: list[tuple[tuple[Any, ...], bool]] = field(default_factory=list)
    lineage: dict[int, dict[str, str]] = field(default_factory=dict)  # profile id -> field -> rule


def _address(values: dict[str, Any]) -> tuple[Any, ...] | None:
    """A postal address needs its first line; one without a city (an address a source gave as
    one unsplit line) is still the customer's address, not dropped."""
    if not values.get("address_line1"):
        return None
    return (values["address_line1"], values.get("address_line2"), values.get("city") or "",
            values.get("region"), values.get("postcode"), values.get("country"))


def _value(view: ProfileView, name: str) -> Any:
    return _address(view.values) if name == "address" else view.values.get(name)


def _choose_ranked(values: list[Any], rule: str, trusted: list[tuple[Any, ...]],
                   recent: list[tuple[Any, ...]], ids: list[int]) -> tuple[Any, list[int]]:
    """The surviving value of one field (the views' values, in view order) and the ids of the
    profiles that carry it (empty: no value). Rank keys are computed once per build, not once
    per field and candidate: a batch builds half a million customers."""
    present = [k for k, v in enumerate(values) if v is not None and v != ""]
    if len(present) <= 1:
        return (values[present[0]], [ids[present[0]]]) if present else (None, [])
    if rule == "most_trusted":
        best = present[_most_trusted([trusted[k] for k in present],
                                     [values[k] for k in present])]
    elif rule == "most_recent":
        best = min(present, key=recent.__getitem__)
    elif rule == "most_complete":
        best = min(present, key=lambda k: (-len(str(values[k])), *trusted[k]))
    else:
        counts = Counter(values[k] for k in present)
        best = min(present, key=lambda k: (-counts[values[k]], *trusted[k]))
    winner = values[best]
    return winner, sorted(ids[k] for k in present if values[k] == winner)


def _most_trusted(ranks: Sequence[tuple[Any, ...]], values: Sequence[Any]) -> int:
    """Which of the values wins by trust: `ranks` are (trust rank, -observed, id) each. Among
    the sources of the best rank, the value most of them agree on, then the most recent: one
    source's typo must not outvote two that agree at the same trust."""
    best = min(r[0] for r in ranks)
    tied = [k for k, r in enumerate(ranks) if r[0] == best]
    counts = Counter(values[k] for k in tied)
    return min(tied, key=lambda k: (-counts[values[k]], *ranks[k]))


def build(views: Sequence[ProfileView], field_rules: dict[str, str] | None = None) -> Golden:
    field_rules = field_rules or rules()
    golden = Golden()
    targets = {"email": golden.emails, "phone": golden.phones, "address": golden.addresses}
    if len(views) == 1:  # most customers: every present value is that profile's
        view = views[0]
        supplied: dict[str, str] = {}
        for name in (*SCALAR_FIELDS, *CONTACT_FIELDS):
            value = _value(view, name)
            present = value not in (None, "")
            if name in targets:
                if present:
                    targets[name].append((value, True))
            else:
                golden.values[name] = value if present else None
            if present:
                supplied[name] = field_rules[name]
        if supplied:
            golden.lineage[view.id] = supplied
        return golden

    def credit(ids: Iterable[int], name: str, rule: str) -> None:
        for pid in ids:
            golden.lineage.setdefault(pid, {})[name] = rule

    stamps = [-view.observed_at.timestamp() for view in views]
    trusted = [(v.trust_rank, t, v.id) for v, t in zip(views, stamps, strict=True)]
    recent = [(t, v.trust_rank, v.id) for v, t in zip(views, stamps, strict=True)]
    ids = [view.id for view in views]
    for name in SCALAR_FIELDS:
        value, winners = _choose_ranked([view.values.get(name) for view in views],
                                        field_rules[name], trusted, recent, ids)
        golden.values[name] = value
        credit(winners, name, field_rules[name])
    order = sorted(range(len(views)), key=lambda k: (views[k].trust_rank, views[k].id))
    for name in CONTACT_FIELDS:
        values = [_value(view, name) for view in views]
        primary, winners = _choose_ranked(values, field_rules[name], trusted, recent, ids)
        credit(winners, name, field_rules[name])
        seen: list[Any] = []
        for k in order:
            value = values[k]
            if value not in (None, "") and value not in seen:
                seen.append(value)
        targets[name].extend((value, value == primary) for value in seen)
    return golden


# --- reading profiles and writing customers -------------------------------------------------


_VIEW_COLUMNS = ("title", "first_name", "last_name", "gender", "date_of_birth", "national_id",
                 "country", "language", "email", "phone", "address_line1", "address_line2",
                 "city", "region", "postcode")


def views_by_profile(session: Session, profile_ids: Sequence[int],
                     chunk: int = 5000) -> dict[int, ProfileView]:
    """Profiles not linked yet, by id (a batch builds their golden customers before linking)."""
    t, s = SourceProfile.__table__, Source.__table__
    query = select(t.c.id, t.c.record_id, s.c.trust_rank, t.c.observed_at,
                   *(t.c[c] for c in _VIEW_COLUMNS)).join(s, s.c.id == t.c.source_id)
    ids = sorted(set(profile_ids))
    out: dict[int, ProfileView] = {}
    for start in range(0, len(ids), chunk):
        for row in session.execute(query.where(t.c.id.in_(ids[start:start + chunk]))):
            out[row[0]] = ProfileView(row[0], row[1], row[2], row[3],
                                      dict(zip(_VIEW_COLUMNS, row[4:], strict=True)))
    return out


def profile_views(session: Session, customer_ids: Sequence[int]) -> dict[int, list[ProfileView]]:
    columns = [getattr(SourceProfile, c) for c in _VIEW_COLUMNS]
    out: dict[int, list[ProfileView]] = {cid: [] for cid in customer_ids}
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start:start + 500]
        rows = session.execute(
            select(SourceProfile.customer_id, SourceProfile.id, SourceProfile.record_id,
                   Source.trust_rank, SourceProfile.observed_at, *columns)
            .join(Source, Source.id == SourceProfile.source_id)
            .where(SourceProfile.customer_id.in_(chunk))
        ).all()
        names = [c.key for c in columns]
        for row in rows:
            out[row[0]].append(ProfileView(row[1], row[2], row[3], row[4],
                                           dict(zip(names, row[5:], strict=True))))
    return out


_SCALAR_COLUMNS = tuple(_CUSTOMER_COLUMN.get(n, n) for n in SCALAR_FIELDS)
_NAME_COLUMNS = ("display_name", "name_key", "name_key_alt")
_ADDRESS_PARTS = ("line1", "line2", "city", "region", "postcode", "country")


@dataclass(slots=True)
class _Point:
    """An existing contact point of a customer, as far as a rebuild needs it."""

    id: int
    key: Any
    is_primary: bool


@dataclass
class _Plan:
    """The writes one rebuild needs, collected for all its customers and run set-based."""

    customers: list[dict[str, Any]] = field(default_factory=list)
    inserts: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"email": [], "phone": [], "address": []})
    primaries: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"email": [], "phone": [], "address": []})
    lineage: list[dict[str, Any]] = field(default_factory=list)
    now: datetime | None = None  # when it was planned: new customers' and lineage's update time


def _scalars(current: dict[str, Any], golden: Golden) -> dict[str, Any]:
    """The customer's golden columns: a field no source supplies keeps its current value."""
    out = dict(current)
    for name in SCALAR_FIELDS:
        value = golden.values.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            value = value[:_LIMITS.get(name, 200)]
        out[_CUSTOMER_COLUMN.get(name, name)] = value
    first, last = out["first_name"] or "", out["last_name"] or ""
    out["display_name"] = f"{first} {last}".strip() or current["display_name"] or "?"
    out["name_key"], out["name_key_alt"] = name_keys(first, last)
    return out


def _plan_points(plan: _Plan, kind: str, customer_id: int, existing: list[_Point],
                 values: list[tuple[Any, bool]], key: Callable[[Any], Any],
                 row: Callable[[Any], dict[str, Any]]) -> None:
    """Add the points the customer lacks; the rule's winner becomes primary (without one, an
    existing primary stays, or the first point becomes primary)."""
    if not existing and len(values) == 1:  # a new customer's one point: primary, no key needed
        plan.inserts[kind].append({"customer_id": customer_id, **row(values[0][0]),
                                   "is_primary": True})
        return
    known = {p.key: p.is_primary for p in existing}
    added: list[tuple[Any, dict[str, Any]]] = []
    primary = None
    for value, is_primary in values:
        k = key(value)
        if is_primary:
            primary = k
        if k not in known:
            known[k] = False
            added.append((k, {"customer_id": customer_id, **row(value)}))
    order = [p.key for p in existing] + [k for k, _ in added]
    if primary is None:
        wanted = dict(known)
        if order and not any(known.values()):
            wanted[order[0]] = True
    else:
        wanted = {k: k == primary for k in order}
    for p in existing:
        if wanted[p.key] != p.is_primary:
            plan.primaries[kind].append({"_id": p.id, "_primary": wanted[p.key]})
    for k, data in added:
        plan.inserts[kind].append({**data, "is_primary": wanted[k]})


def _address_key(parts: Sequence[Any]) -> tuple[str, ...]:
    return tuple(fold(str(part or "")) for part in parts)


def _plan_customer(plan: _Plan, current: dict[str, Any], points: dict[str, list[_Point]],
                   views: Sequence[ProfileView], field_rules: dict[str, str],
                   now: datetime, *, fresh: bool = False) -> None:
    golden = build(views, field_rules)
    customer_id = current["id"]
    values = _scalars(current, golden)
    if fresh:
        plan.customers.append({c: values[c] for c in (*_SCALAR_COLUMNS, *_NAME_COLUMNS)})
    elif any(values[c] != current[c] for c in (*_SCALAR_COLUMNS, *_NAME_COLUMNS)):
        plan.customers.append({f"_{c}": values[c] for c in (*_SCALAR_COLUMNS, *_NAME_COLUMNS)}
                              | {"_id": customer_id, "_now": now})
    _plan_points(plan, "email", customer_id, points["email"], golden.emails, lambda v: v,
                 lambda v: {"email": v, "email_normalized": v, "kind": "personal",
                            "verified": False})
    _plan_points(plan, "phone", customer_id, points["phone"], golden.phones, lambda v: v,
                 lambda v: {"phone": v, "e164": v, "kind": "mobile"})
    # an address without a country is in the customer's country ("ZZ": unknown region)
    country = values["country"] or "ZZ"
    addresses = [((line1[:200], line2 or None, city[:120], region, postcode, cc or country), p)
                 for (line1, line2, city, region, postcode, cc), p in golden.addresses]
    _plan_points(plan, "address", customer_id, points["address"], addresses, _address_key,
                 lambda v: {"kind": "home", **dict(zip(_ADDRESS_PARTS, v, strict=True))})
    plan.lineage += [{"customer_id": customer_id, "source_profile_id": view.id,
                      "source_record_id": view.record_id,
                      "fields": _lineage_json(golden.lineage[view.id]), "updated_at": now}
                     for view in views if view.id in golden.lineage]


_LINEAGE: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


def _lineage_json(supplied: dict[str, str]) -> dict[str, str]:
    """One shared (never mutated) object per distinct lineage entry, so that a bulk write
    encodes each of the few hundred distinct entries once, not a million rows one by one."""
    key = tuple(supplied.items())
    shared = _LINEAGE.get(key)
    if shared is None:
        if len(_LINEAGE) > 10_000:
            _LINEAGE.clear()
        shared = _LINEAGE[key] = supplied
    return shared


_POINT_TABLES = {"email": CustomerEmail.__table__, "phone": CustomerPhone.__table__,
                 "address": CustomerAddress.__table__}


def _current(session: Session, ids: Sequence[int]) -> tuple[dict[int, dict[str, Any]],
                                                             dict[int, dict[str, list[_Point]]]]:
    """The customers' golden columns and contact points as they are now (Core rows)."""
    t = Customer.__table__
    columns = [t.c.id, *(t.c[c] for c in (*_SCALAR_COLUMNS, *_NAME_COLUMNS))]
    current = {row.id: dict(row._mapping) for row in session.execute(
        select(*columns).where(t.c.id.in_(ids)))}
    points: dict[int, dict[str, list[_Point]]] = {
        cid: {"email": [], "phone": [], "address": []} for cid in current}
    e, p, a = _POINT_TABLES["email"], _POINT_TABLES["phone"], _POINT_TABLES["address"]
    for cid, pid, value, primary in session.execute(
            select(e.c.customer_id, e.c.id, e.c.email_normalized, e.c.is_primary)
            .where(e.c.customer_id.in_(ids)).order_by(e.c.id)):
        if cid in points:
            points[cid]["email"].append(_Point(pid, value, primary))
    for cid, pid, value, primary in session.execute(
            select(p.c.customer_id, p.c.id, p.c.e164, p.c.is_primary)
            .where(p.c.customer_id.in_(ids)).order_by(p.c.id)):
        if cid in points:
            points[cid]["phone"].append(_Point(pid, value, primary))
    for row in session.execute(
            select(a.c.customer_id, a.c.id, a.c.is_primary, *(a.c[c] for c in _ADDRESS_PARTS))
            .where(a.c.customer_id.in_(ids)).order_by(a.c.id)):
        if row[0] in points:
            points[row[0]]["address"].append(_Point(row[1], _address_key(row[3:]), row[2]))
    return current, points


def _write(session: Session, plan: _Plan, ids: Sequence[int]) -> None:
    t = Customer.__table__
    executemany(session, update(t).where(t.c.id == bindparam("_id")).values(
        {**{c: bindparam(f"_{c}") for c in (*_SCALAR_COLUMNS, *_NAME_COLUMNS)},
         "version": t.c.version + 1, "updated_at": bindparam("_now")}), plan.customers)
    for kind, table in _POINT_TABLES.items():
        executemany(session, update(table).where(table.c.id == bindparam("_id"))
                    .values(is_primary=bindparam("_primary")), plan.primaries[kind])
        executemany(session, insert(table), plan.inserts[kind])
    lineage_table = GoldenLineage.__table__
    session.execute(delete(lineage_table).where(lineage_table.c.customer_id.in_(ids)))
    executemany(session, insert(lineage_table), plan.lineage)


def _expire(session: Session, ids: set[int]) -> None:
    """Objects of these customers already in the session reload what the rebuild wrote."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Customer) and obj.id in ids or isinstance(
                obj, CustomerEmail | CustomerPhone | CustomerAddress) and obj.customer_id in ids:
            session.expire(obj)


# --- custom fields from sources ---------------------------------------------------------------


def _custom_definitions(session: Session) -> dict[str, Any]:
    from accord.customers.custom_fields import definitions

    return {d.key: d for d in definitions(session)}


def _custom_claims(session: Session, ids: Sequence[int]) -> set[tuple[int, str]]:
    """(customer, key) of the custom values sources supplied: their lineage says so. A value
    no lineage claims was entered by hand, and no source overwrites it."""
    t = GoldenLineage.__table__
    return {(cid, name[3:]) for cid, fields in session.execute(
        select(t.c.customer_id, t.c.fields).where(t.c.customer_id.in_(ids)))
        for name in (fields or {}) if name.startswith("cf.")}


def _custom_value(defn: Any, raw: Any) -> Any:
    """A source's value in the field's type (read as people write numbers and dates), or None
    when it is not one: a choice is matched whatever its case."""
    from accord.core.errors import ValidationProblem
    from accord.customers.custom_fields import coerce
    from accord.integration.standardise import standardise_amount, standardise_date

    try:
        if defn.type == "choice":
            raw = next((c for c in defn.choices if fold(str(c)) == fold(str(raw))), raw)
        elif defn.type == "number":
            raw = str(standardise_amount(raw))
        elif defn.type == "date":
            raw = standardise_date(raw)
        elif not isinstance(raw, str):
            raw = str(raw)
        return coerce(defn, raw, f"custom.{defn.key}")
    except (ValidationProblem, InvalidValue):
        return None


_CUSTOM_COLUMN = {"text": "value_text", "choice": "value_text", "number": "value_number",
                  "date": "value_date"}


def sync_custom(session: Session, customer_ids: Sequence[int],
                claimed: set[tuple[int, str]] | None = None) -> None:
    """The customers' custom fields from the `cf.<key>` values of their source profiles, for
    the keys an admin defined: the most trusted source's value (the one most of them give,
    then the most recent), as for the other golden fields, with its lineage. A value entered by
    hand (`claimed` says which ones sources supplied before) is left as it is."""
    defs = _custom_definitions(session)
    if not defs or not customer_ids:
        return
    every = sorted(set(customer_ids))
    for start in range(0, len(every), 500):
        ids = every[start:start + 500]
        _sync_custom(session, defs, ids,
                     _custom_claims(session, ids) if claimed is None else claimed)


def _sync_custom(session: Session, defs: dict[str, Any], ids: list[int],
                 claimed: set[tuple[int, str]]) -> None:
    p, src = SourceProfile.__table__, Source.__table__
    offers: dict[tuple[int, str], list[tuple[int, float, int, int, Any]]] = {}
    for cid, pid, rid, observed, rank, extra in session.execute(
            select(p.c.customer_id, p.c.id, p.c.record_id, p.c.observed_at, src.c.trust_rank,
                   p.c.extra).join(src, src.c.id == p.c.source_id)
            .where(p.c.customer_id.in_(ids))):
        for name, raw in (extra or {}).items():
            defn = defs.get(name[3:]) if name.startswith("cf.") else None
            value = _custom_value(defn, raw) if defn is not None and raw not in (None, "") \
                else None
            if value is not None:
                offers.setdefault((cid, defn.key), []).append(
                    (rank, -observed.timestamp(), pid, rid, value))
    if not offers:
        return
    v = CustomFieldValue.__table__
    have = {(row["record_id"], row["field_id"]): row for row in session.execute(
        select(v).where(v.c.record_id.in_(ids))).mappings()}
    lineage = {(cid, pid): dict(fields or {}) for cid, pid, fields in session.execute(
        select(GoldenLineage.customer_id, GoldenLineage.source_profile_id, GoldenLineage.fields)
        .where(GoldenLineage.customer_id.in_(ids)))}
    before = {key: dict(fields) for key, fields in lineage.items()}
    records: dict[tuple[int, int], int] = {}
    inserts: list[dict[str, Any]] = []
    updates: dict[str, list[dict[str, Any]]] = {}
    for (cid, key), candidates in sorted(offers.items()):
        defn = defs[key]
        existing = have.get((cid, defn.id))
        if existing is not None and (cid, key) not in claimed:
            continue  # entered by hand
        value = candidates[_most_trusted([c[:3] for c in candidates],
                                         [c[4] for c in candidates])][4]
        column = _CUSTOM_COLUMN[defn.type]
        if existing is None:
            inserts.append({"field_id": defn.id, "record_id": cid, "value_text": None,
                            "value_number": None, "value_date": None, column: value})
        elif existing[column] != value:
            updates.setdefault(column, []).append({"_id": existing["id"], "_value": value})
        rank = min(c[0] for c in candidates)
        for c in candidates:
            if c[0] == rank and c[4] == value:  # every source giving the winning value
                lineage.setdefault((cid, c[2]), {})[f"cf.{key}"] = "most_trusted"
                records[(cid, c[2])] = c[3]
    executemany(session, insert(v), inserts)
    for column, rows in updates.items():
        executemany(session, update(v).where(v.c.id == bindparam("_id"))
                    .values({column: bindparam("_value")}), rows)
    now = utcnow()
    t = GoldenLineage.__table__
    changed = [(key, fields) for key, fields in lineage.items() if fields != before.get(key)]
    executemany(session, update(t).where(t.c.customer_id == bindparam("_cid"),
                                         t.c.source_profile_id == bindparam("_pid"))
                .values(fields=bindparam("_fields"), updated_at=now),
                [{"_cid": cid, "_pid": pid, "_fields": fields}
                 for (cid, pid), fields in changed if (cid, pid) in before])
    executemany(session, insert(t), [
        {"customer_id": cid, "source_profile_id": pid, "source_record_id": records[(cid, pid)],
         "fields": fields, "updated_at": now}
        for (cid, pid), fields in changed if (cid, pid) not in before])


def rebuild(session: Session, customer_ids: Iterable[int], chunk: int = 2000) -> None:
    """Recompute golden values and lineage of these customers from their linked profiles.

    Set-based: a few statements per chunk of customers whatever their number (a batch
    resolution rebuilds every customer it created), then objects of those customers already
    in the session are expired so that they read the new values.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return
    session.flush()
    field_rules = rules()
    now = utcnow()
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        views = profile_views(session, part)
        current, points = _current(session, part)
        plan = _Plan()
        for cid in part:
            if cid in current:
                _plan_customer(plan, current[cid], points[cid], views.get(cid, []),
                               field_rules, now)
        # which custom values sources supplied, read before the lineage is written anew
        claimed = _custom_claims(session, part) if _custom_definitions(session) else set()
        _write(session, plan, [cid for cid in part if cid in current])
        sync_custom(session, [cid for cid in part if cid in current], claimed)
    _expire(session, set(ids))


BULK_INDEX_MIN_ROWS = 10_000  # below this, keeping the indexes costs less than any DDL


@contextmanager
def bulk_indexes(session: Session, table: str, rows: int, *, column: str | None = None,
                 minimum: int = BULK_INDEX_MIN_ROWS) -> Iterator[None]:
    """SQLite: a table's secondary indexes (those on `column`, when given) dropped while a
    batch writes at least as many rows into it as it holds, and built again from sorted data
    afterwards; a random insert into each of a table's indexes per row cost more than
    building them once. All in the caller's transaction: other connections and a rollback
    never see an index missing. Indexes are recreated from their own stored definitions."""
    if session.get_bind().dialect.name != "sqlite" or rows < max(minimum, 1):
        yield
        return
    connection = session.connection()
    held = session.scalar(select(func.count()).select_from(Base.metadata.tables[table])) or 0
    indexes = [(name, sql) for name, sql in connection.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
        "AND sql IS NOT NULL ORDER BY name", (table,))
        if column is None or column in {row[2] for row in connection.exec_driver_sql(
            f'PRAGMA index_info("{name}")')}]
    if rows < held or not indexes:
        yield
        return
    for name, _ in indexes:
        connection.exec_driver_sql(f'DROP INDEX "{name}"')
    try:
        yield
    finally:
        for _, sql in indexes:
            connection.exec_driver_sql(sql)


def _blank(customer_id: int) -> dict[str, Any]:
    """A new customer's golden columns before any profile supplied a value."""
    return {"id": customer_id, **dict.fromkeys(_SCALAR_COLUMNS), "first_name": "",
            "last_name": "", "display_name": "", "name_key": "", "name_key_alt": ""}


ViewSource = Callable[[Sequence[int]], dict[int, ProfileView]]
"""Profile ids -> their views: read from the database, or off the batch's profile frame."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FrameViews:
    """Views of unlinked profiles read off the batch's columnar profile frame (`profile_frame`
    with `golden=True`, ordered by id) instead of a second read of a million rows from the
    database. Holds only the columns it needs, as Arrow-backed arrays; the values are the same
    Python objects `views_by_profile` returns (dates from ISO text, the observation time from
    its microseconds)."""

    def __init__(self, frame: Any, trust: dict[int, int]) -> None:
        self.ids = frame["unique_id"].to_numpy(dtype="int64")
        self.record_ids = frame["record_id"].to_numpy(dtype="int64")
        self.sources = frame["source_id"].to_numpy(dtype="int64")
        self.observed = frame["observed_us"].to_numpy(dtype="int64")
        self.columns = {c: frame[c].array for c in _VIEW_COLUMNS}
        self.trust = trust

    def __call__(self, profile_ids: Sequence[int]) -> dict[int, ProfileView]:
        import numpy as np

        ids = sorted(set(profile_ids))
        at = np.searchsorted(self.ids, np.asarray(ids, dtype="int64"))
        if len(ids) and not np.array_equal(self.ids[at.clip(max=len(self.ids) - 1)], ids):
            raise KeyError("a profile is not in the batch's frame")
        values = []
        for name in _VIEW_COLUMNS:
            column = self.columns[name].take(at).to_numpy(dtype=object, na_value=None).tolist()
            if name == "date_of_birth":
                column = [None if v is None else date.fromisoformat(v) for v in column]
            values.append(column)
        trust = self.trust
        return {i: ProfileView(i, r, trust[s], _EPOCH + timedelta(microseconds=us),
                               dict(zip(_VIEW_COLUMNS, row, strict=True)))
                for i, r, s, us, row in zip(ids, self.record_ids[at].tolist(),
                                            self.sources[at].tolist(),
                                            self.observed[at].tolist(), zip(*values, strict=True),
                                            strict=True)}


CREATE_CHUNK = 20_000  # new customers planned and written together


def planner(session: Session, clusters: Sequence[Sequence[int]],
            views: ViewSource | None = None,
            chunk: int | None = None) -> Callable[[], Iterator[_Plan]]:
    """The plans of `create`, chunk by chunk: values, contact points and lineage of the golden
    customers of these clusters, each customer numbered by its place in its chunk. Rules and
    time are fixed here, so the plans are the same wherever they are computed (the batch
    computes them in a second process while this one writes); without `views`, profiles are
    read from the session."""
    field_rules = rules()
    now = utcnow()
    chunk = chunk or CREATE_CHUNK
    read = views or (lambda ids: views_by_profile(session, ids))

    def plans() -> Iterator[_Plan]:
        empty: dict[str, list[_Point]] = {"email": [], "phone": [], "address": []}
        for start in range(0, len(clusters), chunk):
            part = clusters[start:start + chunk]
            found = read([i for members in part for i in members])
            plan = _Plan()
            for k, members in enumerate(part):
                _plan_customer(plan, _blank(k), empty, sorted((found[i] for i in members),
                                                              key=lambda v: v.id),
                               field_rules, now, fresh=True)
            plan.now = now
            yield plan

    return plans


def create(session: Session, clusters: Sequence[Sequence[int]], created: datetime,
           insert_customers: Callable[[list[dict[str, Any]]], list[int]],
           chunk: int | None = None, *, plans: Iterable[_Plan] | None = None) -> list[int]:
    """Golden customers for clusters of profiles that no customer has yet, in cluster order.

    The same values, contact points and lineage as creating each customer blank and then
    rebuilding it (its version is 2, as after that rebuild), written in one insert per table
    and chunk instead of an insert, a re-read and an update of every customer: a batch
    resolution creates hundreds of thousands. `insert_customers` inserts rows and returns
    their ids in order. `plans` (from `planner` over the same clusters) are computed here when
    not given. Profiles are linked by the caller.
    """
    if plans is None:
        plans = planner(session, clusters, chunk=chunk)()
    ids: list[int] = []
    with ExitStack() as stack:
        profiles = sum(len(members) for members in clusters)
        for table, rows in (("customers", len(clusters)), ("customer_emails", len(clusters)),
                            ("customer_phones", len(clusters)),
                            ("customer_addresses", len(clusters)),
                            ("golden_lineage", profiles)):
            stack.enter_context(bulk_indexes(session, table, rows))
        for plan in plans:
            _write_new(session, plan, created, insert_customers, ids)
    return ids


def _write_new(session: Session, plan: _Plan, created: datetime,
               insert_customers: Callable[[list[dict[str, Any]]], list[int]],
               ids: list[int]) -> None:
    made = insert_customers([
        {**values, "lifecycle_stage": "awareness", "created_at": created,
         "updated_at": plan.now, "version": 2} for values in plan.customers])
    ids += made
    for rows in (*plan.inserts.values(), plan.lineage):
        for row in rows:
            row["customer_id"] = made[row["customer_id"]]
    for kind, table in _POINT_TABLES.items():
        executemany(session, insert(table), plan.inserts[kind])
    executemany(session, insert(GoldenLineage.__table__), plan.lineage)


def lineage(session: Session, customer_id: int) -> list[dict[str, Any]]:
    """For the 360 page: each linked profile, its source and the golden fields it supplied."""
    rows = session.execute(
        select(SourceProfile, Source.name, Source.kind, Source.trust_rank, GoldenLineage.fields)
        .join(Source, Source.id == SourceProfile.source_id)
        .outerjoin(GoldenLineage, (GoldenLineage.source_profile_id == SourceProfile.id)
                   & (GoldenLineage.customer_id == customer_id))
        .where(SourceProfile.customer_id == customer_id)
        .order_by(Source.trust_rank, SourceProfile.id)
    ).all()
    return [{"profile_id": p.id, "source": name, "source_kind": kind, "trust_rank": rank,
             "external_id": p.external_id, "record_id": p.record_id,
             "link_method": p.link_method, "match_probability": p.match_probability,
             "linked_at": p.linked_at, "supplied": fields or {}, "flags": p.flags,
             "evidence": p.link_evidence}
            for p, name, kind, rank, fields in rows]
