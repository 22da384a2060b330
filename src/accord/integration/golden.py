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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, selectinload

from accord.core.clock import utcnow
from accord.core.contact import fold, name_keys
from accord.core.settings import get_settings
from accord.models import (
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
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
    if not (values.get("address_line1") and values.get("city")):
        return None
    return (values["address_line1"], values.get("address_line2"), values["city"],
            values.get("region"), values.get("postcode"), values.get("country"))


def _value(view: ProfileView, name: str) -> Any:
    return _address(view.values) if name == "address" else view.values.get(name)


def _rank_key(rule: str, counts: Counter[Any]) -> Callable[[tuple[Any, ProfileView]], Any]:
    trusted = lambda v: (v.trust_rank, -v.observed_at.timestamp(), v.id)  # noqa: E731
    recent = lambda v: (-v.observed_at.timestamp(), v.trust_rank, v.id)  # noqa: E731
    if rule == "most_trusted":
        return lambda pair: trusted(pair[1])
    if rule == "most_recent":
        return lambda pair: recent(pair[1])
    if rule == "most_complete":
        return lambda pair: (-len(str(pair[0])), *trusted(pair[1]))
    return lambda pair: (-counts[pair[0]], *trusted(pair[1]))


def choose(name: str, rule: str, views: Sequence[ProfileView]) -> tuple[Any, list[int]]:
    """The surviving value of one field and the profiles that carry it (empty: no value)."""
    candidates = [(v, view) for view in views if (v := _value(view, name)) not in (None, "")]
    if not candidates:
        return None, []
    counts = Counter(v for v, _ in candidates)
    winner = min(candidates, key=_rank_key(rule, counts))[0]
    return winner, sorted(view.id for v, view in candidates if v == winner)


def build(views: Sequence[ProfileView], field_rules: dict[str, str] | None = None) -> Golden:
    field_rules = field_rules or rules()
    golden = Golden()

    def credit(ids: Iterable[int], name: str, rule: str) -> None:
        for pid in ids:
            golden.lineage.setdefault(pid, {})[name] = rule

    for name in SCALAR_FIELDS:
        value, ids = choose(name, field_rules[name], views)
        golden.values[name] = value
        credit(ids, name, field_rules[name])
    for name in CONTACT_FIELDS:
        primary, ids = choose(name, field_rules[name], views)
        credit(ids, name, field_rules[name])
        seen: list[Any] = []
        for view in sorted(views, key=lambda v: (v.trust_rank, v.id)):
            value = _value(view, name)
            if value not in (None, "") and value not in seen:
                seen.append(value)
        target = {"email": golden.emails, "phone": golden.phones, "address": golden.addresses}
        target[name].extend((value, value == primary) for value in seen)
    return golden


# --- reading profiles and writing customers -------------------------------------------------


def profile_views(session: Session, customer_ids: Sequence[int]) -> dict[int, list[ProfileView]]:
    columns = [getattr(SourceProfile, c) for c in (
        "title", "first_name", "last_name", "gender", "date_of_birth", "national_id", "country",
        "language", "email", "phone", "address_line1", "address_line2", "city", "region",
        "postcode")]
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


def apply(session: Session, customer: Customer, views: Sequence[ProfileView],
          field_rules: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Set one customer's golden values from its linked profiles; returns its lineage rows
    (the caller replaces the lineage of many customers in one statement)."""
    golden = build(views, field_rules)
    for name in SCALAR_FIELDS:
        value = golden.values.get(name)
        if value is None:
            continue  # a field no source supplies keeps its hand-entered value
        if isinstance(value, str):
            value = value[:_LIMITS.get(name, 200)]
        setattr(customer, _CUSTOMER_COLUMN.get(name, name), value)
    first, last = customer.first_name or "", customer.last_name or ""
    customer.display_name = f"{first} {last}".strip() or customer.display_name or "?"
    customer.name_key, customer.name_key_alt = name_keys(first, last)
    _merge_contact_points(session, customer, golden)
    now = utcnow()
    return [{"customer_id": customer.id, "source_profile_id": view.id,
             "source_record_id": view.record_id, "fields": golden.lineage[view.id],
             "updated_at": now} for view in views if view.id in golden.lineage]


def rebuild(session: Session, customer_ids: Iterable[int], chunk: int = 500) -> None:
    """Recompute golden values and lineage of these customers from their linked profiles."""
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        views = profile_views(session, part)
        lineage_rows: list[dict[str, Any]] = []
        with session.no_autoflush:
            for customer in session.scalars(
                select(Customer).where(Customer.id.in_(part)).options(
                    selectinload(Customer.emails), selectinload(Customer.phones),
                    selectinload(Customer.addresses))
            ):
                lineage_rows += apply(session, customer, views.get(customer.id, []))
        session.execute(delete(GoldenLineage).where(GoldenLineage.customer_id.in_(part)))
        if lineage_rows:
            session.execute(insert(GoldenLineage), lineage_rows)
        session.flush()


def _merge_contact_points(session: Session, customer: Customer, golden: Golden) -> None:
    _add_points(customer.emails, golden.emails, lambda e: e.email_normalized,
                lambda v: CustomerEmail(email=v, email_normalized=v, is_primary=False))
    _add_points(customer.phones, golden.phones, lambda p: p.e164,
                lambda v: CustomerPhone(phone=v, e164=v, is_primary=False))
    addresses = {_address_key(a): a for a in customer.addresses}
    primary_key = None
    for value, is_primary in golden.addresses:
        line1, line2, city, region, postcode, country = value
        # an address without a country is in the customer's country ("ZZ": unknown region)
        value = (line1, line2, city, region, postcode, country or customer.country or "ZZ")
        key = tuple(fold(str(part or "")) for part in value)
        if is_primary:
            primary_key = key
        if key not in addresses:
            addresses[key] = CustomerAddress(
                line1=line1[:200], line2=(line2 or None), city=city[:120], region=region,
                postcode=postcode, country=value[5], is_primary=False)
            customer.addresses.append(addresses[key])
    _set_primary(list(addresses.values()), primary_key, key=_address_key)


def _add_points(points: list[Any], values: list[tuple[str, bool]], key: Callable[[Any], str],
                make: Callable[[str], Any]) -> None:
    """Add the e-mails or phones the customer lacks; the rule's winner becomes primary."""
    known = {key(p): p for p in points}
    for value, _ in values:
        if value not in known:
            known[value] = make(value)
            points.append(known[value])
    _set_primary(list(known.values()), next((v for v, p in values if p), None), key=key)


def _address_key(a: CustomerAddress) -> tuple[str, ...]:
    return tuple(fold(str(part or "")) for part in
                 (a.line1, a.line2, a.city, a.region, a.postcode, a.country))


def _set_primary(points: list[Any], primary: Any, key: Callable[[Any], Any]) -> None:
    """The rule's winner becomes primary; without one, an existing primary stays."""
    if primary is None:
        if points and not any(p.is_primary for p in points):
            points[0].is_primary = True
        return
    for point in points:
        point.is_primary = key(point) == primary


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
