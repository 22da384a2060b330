"""Data stewardship: the review queue, manual merge and unmerge, unlinking a wrong link, and why
two records were linked.

Every change here is reversible or explained:
- a **merge** of customer B into A first takes a snapshot of everything it is about to change
  (both customers' columns, the ids of every row that moves, contact-point primary flags, the
  lineage rows, the link details of the moved source profiles), then moves the rows, hides B
  behind `merged_into_id` and rebuilds A's golden values;
- an **unmerge** replays that snapshot backwards: the rows that moved go back to B (rows added
  to A since stay on A; orders and interactions built from the records of B's sources follow
  B's profiles), the contact points the merge's rebuild created are removed, and columns and
  flags get their earlier values back unless someone changed them after the merge;
- an **unlink** gives one wrongly linked source profile its own customer (or the customer it
  was merged away from), with the orders and interactions built from that source's records;
- accepting a review links or merges the pair, rejecting it closes the pair for good (the
  unique `(left_id, right_id)` keeps the resolver from proposing it again).
Rows referring to customers are found from the schema (every foreign key to `customers.id`),
so a table added later (consents, tickets) follows the right person without changes here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Table, UniqueConstraint, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal, can, can_see_sensitive_custom, hidden_fields
from accord.core.clock import utcnow
from accord.core.contact import fold, name_keys
from accord.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    Problem,
    ValidationProblem,
)
from accord.core.events import emit
from accord.core.query import Filter, ListParams, ListSpec, Sort, page_of, paginate
from accord.integration import golden
from accord.integration.ingest import apply_pending
from accord.models import (
    Base,
    Customer,
    GoldenLineage,
    IdentityAlias,
    IdentityChange,
    Interaction,
    MatchReview,
    Order,
    Source,
    SourceProfile,
    SourceRecord,
    User,
)
from accord.models.integration import MANUAL_SOURCE, REVIEW_STATUSES

RESOURCE = "identity"
# Tables whose rows are not moved as they are: the customer itself (merged_into_id), lineage
# (rebuilt, restored from the snapshot) and source profiles (moved with their link details).
_NOT_MOVED = frozenset({"customers", "golden_lineage", "source_profiles"})
_POINT_TABLES = ("customer_emails", "customer_phones", "customer_addresses")
# Customer columns a survivor takes from the merged customer when it has no value of its own.
_FILL_GAPS = ("title", "gender", "date_of_birth", "national_id", "notes", "value_tier",
              "lifetime_value", "preferred_channel", "preferred_language", "country",
              "account_id", "owner_id", "team_id")
# Customer columns a restore never writes: the optimistic-concurrency counter and the change
# time only move forward (a client holding a pre-merge ETag must learn the record changed).
_BOOKKEEPING = frozenset({"id", "version", "updated_at", "created_at", "merged_into_id"})
# Profile columns a steward compares; sensitive ones follow the customers' field rules.
PROFILE_FIELDS = ("title", "first_name", "last_name", "gender", "date_of_birth", "email",
                  "phone", "address_line1", "address_line2", "postcode", "city", "region",
                  "country", "national_id", "company", "job_title", "language")
_SENSITIVE = {"date_of_birth": ("date_of_birth", "dob"), "national_id": ("national_id",)}
_LINK_FIELDS = ("customer_id", "link_method", "match_probability", "link_evidence", "linked_at")


# --- plain values in snapshots ---------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _typed(column: Column[Any], value: Any) -> Any:
    """A snapshot value back to the column's Python type."""
    if value is None:
        return None
    kind_of = getattr(column.type, "impl_instance", column.type)  # UTCDateTime → DateTime
    try:
        kind = kind_of.python_type
    except NotImplementedError:
        return value
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is date:
        return date.fromisoformat(value)
    if kind is Decimal:
        return Decimal(value)
    return value


def _row_dump(table: Table, row: Any) -> dict[str, Any]:
    return {c.name: _plain(row[c.name]) for c in table.columns}


def _customer_dump(customer: Customer) -> dict[str, Any]:
    table = Customer.__table__
    return {c.name: _plain(getattr(customer, c.key)) for c in table.columns
            if c.name not in ("id", "version", "updated_at", "created_at")}


# --- which rows refer to a customer ----------------------------------------------------------


def customer_references() -> list[tuple[Table, Column[Any]]]:
    """Every (table, column) with a foreign key to customers.id that a merge moves."""
    target = Customer.__table__.c.id
    refs = []
    for table in Base.metadata.sorted_tables:
        if table.name in _NOT_MOVED:
            continue
        for column in table.columns:
            if any(fk.column is target for fk in column.foreign_keys):
                refs.append((table, column))
    return refs


def _address_key(row: Any) -> tuple[str, ...]:
    return tuple(fold(str(row[c] or "")) for c in
                 ("line1", "line2", "city", "region", "postcode", "country"))


def _collision_keys(table: Table, column: Column[Any]) -> list[Any]:
    """Functions giving the values that may exist once per customer: a row of the merged
    customer with a value the survivor already has stays where it is."""
    keys: list[Any] = []
    for constraint in table.constraints:
        if not isinstance(constraint, UniqueConstraint):
            continue
        names = [c.name for c in constraint.columns]
        if column.name in names and len(names) > 1:
            others = [n for n in names if n != column.name]
            keys.append(lambda row, others=others: tuple(row[n] for n in others))
    if table.name == "customer_emails":
        keys.append(lambda row: row["email_normalized"])
    elif table.name == "customer_phones":
        keys.append(lambda row: row["e164"])
    elif table.name == "customer_addresses":
        keys.append(_address_key)
    return keys


def _move(session: Session, table: Table, column: Column[Any], ids: Sequence[int],
          to: int, *, only_from: int | None = None) -> int:
    """Repoint rows; versioned rows get a new version (their customer changed)."""
    if not ids:
        return 0
    values: dict[Any, Any] = {column: to}
    if "version" in table.c:
        values[table.c.version] = table.c.version + 1
    moved = 0
    for start in range(0, len(ids), 500):
        stmt = update(table).where(table.c.id.in_(ids[start:start + 500])).values(values)
        if only_from is not None:
            stmt = stmt.where(column == only_from)
        moved += session.execute(stmt).rowcount or 0
    return moved


def _points(session: Session, customer_ids: Sequence[int]) -> dict[str, dict[str, bool]]:
    """Contact points of the customers: table -> {id: is_primary} (JSON keys are strings)."""
    out: dict[str, dict[str, bool]] = {}
    for name in _POINT_TABLES:
        table = Base.metadata.tables[name]
        rows = session.execute(select(table.c.id, table.c.is_primary)
                               .where(table.c.customer_id.in_(customer_ids)))
        out[name] = {str(i): bool(p) for i, p in rows}
    return out


def _point_ids(session: Session, customer_id: int) -> dict[str, set[int]]:
    out = {}
    for name in _POINT_TABLES:
        table = Base.metadata.tables[name]
        out[name] = set(session.scalars(select(table.c.id)
                                        .where(table.c.customer_id == customer_id)))
    return out


def _lineage_rows(session: Session, customer_ids: Sequence[int]) -> list[dict[str, Any]]:
    table = GoldenLineage.__table__
    rows = session.execute(select(table).where(table.c.customer_id.in_(customer_ids))
                           .order_by(table.c.id)).mappings()
    return [_row_dump(table, r) for r in rows]


def _profile_ids(session: Session, customer_id: int) -> list[int]:
    return sorted(session.scalars(select(SourceProfile.id)
                                  .where(SourceProfile.customer_id == customer_id)))


# --- lookups ---------------------------------------------------------------------------------


def merged_target(session: Session, customer_id: int) -> int | None:
    """The live customer a merged customer now is (following merges of merges), or None."""
    seen: set[int] = set()
    current = customer_id
    while True:
        target = session.scalar(select(Customer.merged_into_id).where(Customer.id == current))
        if target is None:
            return None if current == customer_id else current
        if target in seen:  # a cycle cannot be created here; refuse to loop on bad data
            return target
        seen.add(target)
        current = target


class MergedInto(Problem):
    """A read of a merged customer: 307 to the survivor (temporary, as an unmerge can undo it)."""

    status = 307
    title = "Merged"

    def __init__(self, customer_id: int, target: int, location: str | None = None) -> None:
        super().__init__(f"customer {customer_id} was merged into customer {target}",
                         field="customer_id",
                         headers={"Location": location or f"/api/v1/customers/{target}"})
        self.target = target


def merged_problem(session: Session, customer_id: int, action: str = "read",
                   suffix: str = "") -> Problem:
    """What the customers service raises for a merged customer: a redirect to the survivor
    (plus `suffix`, e.g. "/360") for reads, 409 for changes (change the survivor instead)."""
    target = merged_target(session, customer_id) or customer_id
    if action == "read":
        return MergedInto(customer_id, target, f"/api/v1/customers/{target}{suffix}")
    return Conflict(f"customer {customer_id} was merged into customer {target}; change that one",
                    field="customer_id")


def _customer(session: Session, customer_id: int, field: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist", field=field)
    return customer


def require(principal: Principal, action: str) -> None:
    """403 before anything else (a stale If-Match must not answer before the policy does)."""
    if not can(principal, RESOURCE, action):
        raise Forbidden(f"your role may not {action} identity resolution")


_require = require


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise ValidationProblem("say why (the reason is kept in the audit trail)", field="reason")
    if len(text) > 300:
        raise ValidationProblem("the reason is longer than 300 characters", field="reason")
    return text


def _check_version(record: Any, expected: int | None, field: str) -> None:
    if expected is not None and expected != record.version:
        raise PreconditionFailed(
            f"the record is at version {record.version}, not {expected}; reload and retry",
            field=field)


# --- manual profiles (hand-entered customers take part in survivorship) ----------------------


def _capture_manual(session: Session, customers: Iterable[Customer]) -> dict[str, list[int]]:
    """Customers without any source profile get one of the `accord` source, so their
    hand-entered values compete (most trusted) instead of being overwritten by a rebuild.
    Returns what was created, for an unmerge to remove."""
    from accord.integration.resolution import record_manual_profile

    last_record = session.scalar(select(func.max(SourceRecord.id))) or 0
    created: dict[str, list[int]] = {"profiles": [], "records": []}
    for customer in customers:
        if _profile_ids(session, customer.id):
            continue
        profile = record_manual_profile(session, customer)
        created["profiles"].append(profile.id)
        if profile.record_id > last_record:
            created["records"].append(profile.record_id)
    return created


# --- merge -----------------------------------------------------------------------------------


def merge(session: Session, principal: Principal, survivor_id: int, merged_id: int,
          reason: str, *, method: str = "manual", review: MatchReview | None = None,
          survivor_version: int | None = None, merged_version: int | None = None
          ) -> IdentityChange:
    """Merge customer `merged_id` (B) into `survivor_id` (A); reversible with `unmerge`."""
    _require(principal, "update")
    reason = _reason(reason)
    if survivor_id == merged_id:
        raise Conflict("a customer cannot be merged into itself", field="merged_id")
    a = _customer(session, survivor_id, "survivor_id")
    b = _customer(session, merged_id, "merged_id")
    for customer, field in ((a, "survivor_id"), (b, "merged_id")):
        if customer.merged_into_id is not None:
            raise Conflict(f"customer {customer.id} was already merged into customer "
                           f"{customer.merged_into_id}", field=field)
    _check_version(a, survivor_version, "If-Match")
    _check_version(b, merged_version, "merged_version")
    session.flush()
    now = utcnow()

    # 1. the snapshot, before anything changes
    before_points = _points(session, [a.id, b.id])
    snapshot: dict[str, Any] = {
        "survivor": _customer_dump(a),
        "merged": _customer_dump(b),
        "points": before_points,
        "lineage": _lineage_rows(session, [a.id, b.id]),
        "profile_sets": {"survivor": _profile_ids(session, a.id),
                         "merged": _profile_ids(session, b.id)},
    }
    # B first: captured at the same moment, the survivor's own values are the more recent
    snapshot["created_manual"] = _capture_manual(session, (b, a))
    change = IdentityChange(kind="merge", customer_id=a.id, other_customer_id=b.id,
                            reason=reason, actor_id=principal.user_id, snapshot={})
    session.add(change)
    session.flush()

    # 2. the plan: every row of B that moves, and the ones that stay (A already has the value)
    moved: dict[str, list[int]] = {}
    kept: dict[str, list[int]] = {}
    for table, column in customer_references():
        rows_b = list(session.execute(select(table).where(column == b.id)
                                      .order_by(table.c.id)).mappings())
        if not rows_b:
            continue
        keys = _collision_keys(table, column)
        taken: list[set[Any]] = []
        if keys:
            rows_a = list(session.execute(select(table).where(column == a.id)).mappings())
            taken = [{k(r) for r in rows_a} for k in keys]
        for row in rows_b:
            clash = any(_present(k(row)) and k(row) in seen for k, seen in zip(keys, taken,
                                                                               strict=True))
            (kept if clash else moved).setdefault(f"{table.name}.{column.name}",
                                                  []).append(row["id"])
    snapshot["moved"] = moved
    snapshot["kept"] = kept

    # 3. source profiles of B, with the link details an unmerge restores
    profiles = list(session.scalars(select(SourceProfile).where(SourceProfile.customer_id == b.id)
                                    .order_by(SourceProfile.id)))
    snapshot["profiles"] = [{"id": p.id, **{f: _plain(getattr(p, f)) for f in _LINK_FIELDS}}
                            for p in profiles]
    for p in profiles:
        previous = {"method": p.link_method, "probability": p.match_probability,
                    "evidence": p.link_evidence}
        p.customer_id = a.id
        p.link_method = method
        p.match_probability = review.match_probability if review is not None else 1.0
        pair: dict[str, Any] = {}
        if review is not None:
            pair["review_id"] = review.id
            if p.id in (review.left_id, review.right_id):  # the record the steward compared
                pair["other_profile_id"] = (review.right_id if p.id == review.left_id
                                            else review.left_id)
                pair["fields"] = review.fields
        p.link_evidence = _jsonable({
            "merge": change.id, "merged_from": b.id, "reason": reason,
            "decided_by": principal.user_id, **pair, "previous": previous})
        p.linked_at = now
    # pending reviews between the two customers are settled by the merge
    a_ids, b_ids = snapshot["profile_sets"]["survivor"], [p.id for p in profiles]
    settled = _open_reviews_between(session, a_ids, b_ids)
    snapshot["reviews"] = [{"id": r.id, "status": r.status, "decided_by": r.decided_by,
                            "decided_at": _plain(r.decided_at)} for r in settled]
    for r in settled:
        r.status, r.decided_by, r.decided_at = "accepted", principal.user_id, now
    session.flush()
    for r in settled:  # each decision in the trail (the accepted review records its own)
        if review is not None and r.id == review.id:
            continue
        audit.record(session, principal, "accept", "match_reviews", r.id, ("status",),
                     {"outcome": "settled by merge", "change_id": change.id,
                      "left_id": r.left_id, "right_id": r.right_id},
                     reason=f"settled by merging customer {b.id} into {a.id}")

    # 4. move the rows; a moved contact point is not primary next to the survivor's own
    a_points = _point_ids(session, a.id)
    refs = {f"{t.name}.{c.name}": (t, c) for t, c in customer_references()}
    for key, ids in moved.items():
        table, column = refs[key]
        _move(session, table, column, ids, a.id)
        if table.name in _POINT_TABLES and any(before_points[table.name].get(str(i))
                                               for i in a_points[table.name]):
            session.execute(update(table).where(table.c.id.in_(ids)).values(is_primary=False))
    session.execute(delete(GoldenLineage).where(GoldenLineage.customer_id == b.id))
    session.flush()
    session.expire_all()

    # 5. B hides behind A; A fills its gaps from B and gets its golden values rebuilt
    a = _customer(session, survivor_id, "survivor_id")
    b = _customer(session, merged_id, "merged_id")
    b.merged_into_id = a.id
    for name in _FILL_GAPS:
        if getattr(a, name) is None and getattr(b, name) is not None:
            setattr(a, name, getattr(b, name))
    before_rebuild = _point_ids(session, a.id)
    _rebuild(session, [a.id])
    after = _point_ids(session, a.id)
    snapshot["created_points"] = {n: sorted(after[n] - before_rebuild[n]) for n in _POINT_TABLES}
    snapshot["survivor_after"] = _customer_dump(a)
    snapshot["points_after"] = _points(session, [a.id])
    change.snapshot = _jsonable(snapshot)
    session.flush()

    counts = {k: len(v) for k, v in moved.items()}
    audit.record(session, principal, "merge", RESOURCE, change.id,
                 ("customer_id", "merged_into_id"),
                 {"survivor_id": a.id, "merged_id": b.id, "method": method,
                  "review_id": review.id if review is not None else None,
                  "moved": counts, "kept": {k: len(v) for k, v in kept.items()}},
                 reason=reason)
    emit(session, "customer.merged", "customer", a.id,
         {"survivor_id": a.id, "merged_id": b.id, "change_id": change.id, "method": method},
         principal.user_id)
    return change


def _present(key: Any) -> bool:
    if key is None:
        return False
    if isinstance(key, tuple):
        return all(part is not None for part in key)
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return _plain(value)


def _open_reviews_between(session: Session, left: Sequence[int],
                          right: Sequence[int]) -> list[MatchReview]:
    if not left or not right:
        return []
    return list(session.scalars(select(MatchReview).where(
        MatchReview.status == "pending",
        or_((MatchReview.left_id.in_(left) & MatchReview.right_id.in_(right)),
            (MatchReview.left_id.in_(right) & MatchReview.right_id.in_(left))),
    ).order_by(MatchReview.id)))


def _rebuild(session: Session, customer_ids: Sequence[int]) -> None:
    from accord.integration.resolution import rebuild

    rebuild(session, customer_ids)


# --- unmerge ---------------------------------------------------------------------------------


def get_change(session: Session, principal: Principal, change_id: int) -> IdentityChange:
    _require(principal, "read")
    change = session.get(IdentityChange, change_id)
    if change is None:
        raise NotFound(f"identity change {change_id} does not exist")
    return change


def unmerge(session: Session, principal: Principal, change_id: int,
            reason: str) -> IdentityChange:
    """Undo a merge from its snapshot: exactly, when nothing else changed since."""
    _require(principal, "update")
    reason = _reason(reason)
    change = get_change(session, principal, change_id)
    if change.kind != "merge":
        raise Conflict(f"identity change {change_id} is a {change.kind}; only merges can be "
                       "reverted", field="change_id")
    if change.reverted_by is not None:
        raise Conflict(f"merge {change_id} was already reverted (by change "
                       f"{change.reverted_by})", field="change_id")
    snap = change.snapshot
    a_id, b_id = int(change.customer_id or 0), int(change.other_customer_id or 0)
    a = _customer(session, a_id, "customer_id")
    b = _customer(session, b_id, "other_customer_id")
    if a.merged_into_id is not None:
        raise Conflict(f"customer {a.id} was itself merged into customer {a.merged_into_id} "
                       "later; revert that merge first", field="change_id")
    later = session.scalar(select(IdentityChange.id).where(
        IdentityChange.kind == "merge", IdentityChange.customer_id == a.id,
        IdentityChange.id > change.id, IdentityChange.reverted_by.is_(None))
        .order_by(IdentityChange.id.desc()).limit(1))
    if later is not None:
        raise Conflict(f"customer {a.id} took part in a later merge ({later}); revert that "
                       "one first", field="change_id")
    session.flush()

    # rows that moved go back (only those still on A); rows added to A since stay there
    refs = {f"{t.name}.{c.name}": (t, c) for t, c in customer_references()}
    for key, ids in snap.get("moved", {}).items():
        if key in refs:
            table, column = refs[key]
            _move(session, table, column, [int(i) for i in ids], b.id, only_from=a.id)
    for name, ids in snap.get("created_points", {}).items():
        table = Base.metadata.tables[name]
        if ids:
            session.execute(delete(table).where(table.c.id.in_(ids),
                                                table.c.customer_id == a.id))
    # B's source profiles go back with their link details
    profiles = {p.id: p for p in session.scalars(select(SourceProfile).where(
        SourceProfile.id.in_([int(s["id"]) for s in snap.get("profiles", [])])))}
    back: list[SourceProfile] = []
    for saved in snap.get("profiles", []):
        p = profiles.get(int(saved["id"]))
        if p is None or p.customer_id != a.id:
            continue  # since unlinked or gone: it is not A's to give back
        for name in _LINK_FIELDS:
            setattr(p, name, _typed(SourceProfile.__table__.c[name], saved[name]))
        back.append(p)
    session.flush()
    # orders and interactions built later from the records of those profiles follow them
    orders, interactions = _rows_from_records(session, back, a.id)
    _move(session, Order.__table__, Order.__table__.c.customer_id, orders, b.id)
    _move(session, Interaction.__table__, Interaction.__table__.c.customer_id, interactions,
          b.id)
    for saved in snap.get("reviews", []):
        review = session.get(MatchReview, int(saved["id"]))
        if review is not None and review.status == "accepted":
            review.status = saved["status"]
            review.decided_by = saved["decided_by"]
            review.decided_at = _typed(MatchReview.__table__.c.decided_at, saved["decided_at"])
            audit.record(session, principal, "reopen", "match_reviews", review.id, ("status",),
                         {"status": review.status, "left_id": review.left_id,
                          "right_id": review.right_id},
                         reason=f"the merge of customer {b.id} into {a.id} was undone")
    # what the merge captured for hand-entered customers goes too
    manual = snap.get("created_manual", {})
    if manual.get("profiles"):
        session.execute(delete(GoldenLineage).where(
            GoldenLineage.source_profile_id.in_(manual["profiles"])))
        session.execute(delete(SourceProfile).where(SourceProfile.id.in_(manual["profiles"])))
    if manual.get("records"):
        session.execute(delete(SourceRecord).where(SourceRecord.id.in_(manual["records"])))
    session.flush()
    session.expire_all()

    a = _customer(session, a_id, "customer_id")
    b = _customer(session, b_id, "other_customer_id")
    b.merged_into_id = None
    _restore_columns(a, snap.get("survivor", {}), snap.get("survivor_after", {}))
    _restore_columns(b, snap.get("merged", {}), snap.get("merged", {}))
    _restore_flags(session, snap.get("points", {}), snap.get("points_after", {}))
    _restore_lineage(session, snap, a.id, b.id)
    session.flush()

    undo = IdentityChange(kind="unmerge", customer_id=a.id, other_customer_id=b.id,
                          reason=reason, actor_id=principal.user_id,
                          snapshot={"reverts": change.id})
    session.add(undo)
    session.flush()
    change.reverted_by = undo.id
    audit.record(session, principal, "unmerge", RESOURCE, undo.id,
                 ("customer_id", "merged_into_id"),
                 {"survivor_id": a.id, "merged_id": b.id, "reverts": change.id}, reason=reason)
    emit(session, "customer.unmerged", "customer", b.id,
         {"survivor_id": a.id, "merged_id": b.id, "change_id": undo.id, "reverts": change.id},
         principal.user_id)
    session.flush()
    return undo


def _restore_columns(customer: Customer, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Three-way: a column still holding what the merge left gets its earlier value back; a
    column someone changed since keeps the newer value."""
    table = Customer.__table__
    current = _customer_dump(customer)
    for column in table.columns:
        name = column.name
        if name in _BOOKKEEPING or name not in before:
            continue
        if current.get(name) == after.get(name, current.get(name)):
            setattr(customer, column.key, _typed(column, before[name]))


def _restore_flags(session: Session, before: dict[str, dict[str, bool]],
                   after: dict[str, dict[str, bool]]) -> None:
    for name, flags in before.items():
        table = Base.metadata.tables[name]
        ids = [int(i) for i in flags]
        if not ids:
            continue
        now = {i: p for i, p in session.execute(select(table.c.id, table.c.is_primary)
                                                .where(table.c.id.in_(ids)))}
        for raw_id, primary in flags.items():
            row_id = int(raw_id)
            if row_id not in now:
                continue
            was_after = after.get(name, {}).get(raw_id, now[row_id])
            if bool(now[row_id]) == bool(was_after) and bool(now[row_id]) != primary:
                session.execute(update(table).where(table.c.id == row_id)
                                .values(is_primary=primary))


def _restore_lineage(session: Session, snap: dict[str, Any], a_id: int, b_id: int) -> None:
    """The lineage rows exactly as they were when each customer's profiles are the same as
    before the merge; otherwise (profiles linked since) a rebuild."""
    sets = snap.get("profile_sets", {})
    table = GoldenLineage.__table__
    rebuild = []
    for cid, key in ((a_id, "survivor"), (b_id, "merged")):
        if _profile_ids(session, cid) != sorted(sets.get(key, [])):
            rebuild.append(cid)
            continue
        session.execute(delete(table).where(table.c.customer_id == cid))
        rows = [{c.name: _typed(c, row[c.name]) for c in table.columns}
                for row in snap.get("lineage", []) if row["customer_id"] == cid]
        if rows:
            session.execute(insert(table), rows)
    if rebuild:
        _rebuild(session, rebuild)


# --- which orders and interactions came from a profile's records -----------------------------


def _subject_keys(session: Session, profile: SourceProfile) -> set[str]:
    keys = {profile.external_id}
    keys.update(session.scalars(select(IdentityAlias.alias).where(
        IdentityAlias.source_id == profile.source_id,
        IdentityAlias.user_id == profile.external_id)))
    return keys


def _rows_from_records(session: Session, profiles: Sequence[SourceProfile],
                       customer_id: int) -> tuple[list[int], list[int]]:
    """Ids of the customer's orders and interactions built from these profiles' sources'
    records about them (subject = their external id or one of its aliases)."""
    orders: list[int] = []
    interactions: list[int] = []
    for profile in profiles:
        keys = sorted(_subject_keys(session, profile))
        records = select(SourceRecord.id).where(SourceRecord.source_id == profile.source_id,
                                                SourceRecord.subject_key.in_(keys))
        orders += session.scalars(select(Order.id).where(
            Order.customer_id == customer_id, Order.source_record_id.in_(records)))
        interactions += session.scalars(select(Interaction.id).where(
            Interaction.customer_id == customer_id, Interaction.source_record_id.in_(records)))
    return sorted(set(orders)), sorted(set(interactions))


# --- linking and unlinking one profile -------------------------------------------------------


def record_link(session: Session, principal: Principal, customer: Customer,
                profile_ids: Sequence[int]) -> None:
    """Before profiles are linked into an existing customer: what the customer had, so an
    unlink can take away exactly what those profiles brought."""
    record_links(session, principal, {customer.id: profile_ids})


def record_links(session: Session, principal: Principal,
                 links: Mapping[int, Sequence[int]]) -> None:
    """`record_link` for many customers at once (an incremental batch links into hundreds):
    a few reads and one insert, whatever their number."""
    if not links:
        return
    session.flush()
    ids = sorted(links)
    columns = [golden._CUSTOMER_COLUMN.get(n, n) for n in golden.SCALAR_FIELDS]
    table = Customer.__table__
    values: dict[int, dict[str, Any]] = {}
    points: dict[int, dict[str, list[int]]] = {i: {n: [] for n in _POINT_TABLES} for i in ids}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for row in session.execute(select(table.c.id, *(table.c[c] for c in columns))
                                   .where(table.c.id.in_(chunk))):
            values[row[0]] = {name: _plain(v) for name, v in
                              zip(golden.SCALAR_FIELDS, row[1:], strict=True)}
        for name in _POINT_TABLES:
            points_table = Base.metadata.tables[name]
            for customer_id, point_id in session.execute(
                    select(points_table.c.customer_id, points_table.c.id)
                    .where(points_table.c.customer_id.in_(chunk))
                    .order_by(points_table.c.id)):
                points[customer_id][name].append(point_id)
    now = utcnow()
    session.execute(insert(IdentityChange), [
        {"kind": "link", "customer_id": i, "other_customer_id": None, "reason": "",
         "actor_id": principal.user_id, "created_at": now,
         "snapshot": {"profile_ids": sorted(links[i]), "values": values.get(i, {}),
                      **points[i]}}
        for i in ids])


def _link_snapshot(session: Session, profile: SourceProfile) -> dict[str, Any] | None:
    for change in session.scalars(select(IdentityChange).where(
            IdentityChange.kind == "link", IdentityChange.customer_id == profile.customer_id)
            .order_by(IdentityChange.id.desc())):
        if profile.id in (change.snapshot or {}).get("profile_ids", []):
            return dict(change.snapshot)
    return None


def _profile_values(p: SourceProfile) -> dict[str, Any]:
    return {"email": p.email, "phone": p.phone,
            "address": golden._address({c: getattr(p, c) for c in (
                "address_line1", "address_line2", "city", "region", "postcode", "country")})}


def _norm(kind: str, value: Any) -> tuple[str, Any]:
    if kind == "address":
        return kind, tuple(fold(str(part or "")) for part in value)
    return kind, value


def _point_value(name: str, row: Any) -> Any:
    if name == "customer_emails":
        return ("email", row["email_normalized"])
    if name == "customer_phones":
        return ("phone", row["e164"])
    return ("address", _address_key(row))


def get_profile(session: Session, principal: Principal, profile_id: int) -> SourceProfile:
    _require(principal, "read")
    profile = session.get(SourceProfile, profile_id)
    if profile is None:
        raise NotFound(f"source profile {profile_id} does not exist")
    return profile


def unlink(session: Session, principal: Principal, profile_id: int, reason: str, *,
           expected_version: int | None = None) -> IdentityChange:
    """Undo a wrong link of one source profile: it gets its own customer (or goes back to the
    one it was merged away from) with the orders and interactions built from its records."""
    _require(principal, "update")
    reason = _reason(reason)
    profile = get_profile(session, principal, profile_id)
    _check_version(profile, expected_version, "If-Match")
    if profile.customer_id is None:
        raise Conflict(f"source profile {profile_id} is not linked to a customer",
                       field="profile_id")
    source = session.get(Source, profile.source_id)
    c = _customer(session, profile.customer_id, "profile_id")
    if source is not None and source.name == MANUAL_SOURCE and profile.external_id == str(c.id):
        raise Conflict("the profile entered in Accord itself cannot be unlinked from its "
                       "customer", field="profile_id")
    others = [pid for pid in _profile_ids(session, c.id) if pid != profile.id]
    if not others:
        raise Conflict(f"source profile {profile_id} is the only one of customer {c.id}; "
                       "there is nothing to unlink it from", field="profile_id")
    session.flush()
    now = utcnow()
    lineage = {row["source_profile_id"]: row["fields"] for row in _lineage_rows(session, [c.id])}
    target = _merged_away_from(session, profile, c)
    link = _merge_as_link(session, profile) if target is not None else _link_snapshot(
        session, profile)
    founding = link is None and profile.linked_at is not None and profile.linked_at <= min(
        (t for t in session.scalars(select(SourceProfile.linked_at).where(
            SourceProfile.customer_id == c.id)) if t is not None), default=profile.linked_at)

    # the customer it goes to: back to the one a still-active merge took it from, or a new one
    revived = target is not None
    if target is None:
        target = Customer(display_name="", name_key="", name_key_alt="", first_name="",
                          last_name="", owner_id=c.owner_id, team_id=c.team_id)
        session.add(target)
        session.flush()
        emit(session, "customer.created", "customer", target.id,
             {"via": "unlink", "profile_id": profile.id}, principal.user_id)
    else:
        target.merged_into_id = None

    previous = {f: _plain(getattr(profile, f)) for f in _LINK_FIELDS}
    change = IdentityChange(kind="unlink", customer_id=c.id, other_customer_id=target.id,
                            reason=reason, actor_id=principal.user_id, snapshot={})
    session.add(change)
    session.flush()
    profile.customer_id = target.id
    profile.link_method = "manual"
    profile.match_probability = None
    profile.link_evidence = {"unlinked_from": c.id, "change": change.id, "reason": reason,
                             "decided_by": principal.user_id, "previous": previous}
    profile.linked_at = now
    rejected = _close_pair(session, principal, profile, previous, now)
    session.flush()

    # orders and interactions built from this source's records about this person follow it
    orders, interactions = _rows_from_records(session, [profile], c.id)
    _move(session, Order.__table__, Order.__table__.c.customer_id, orders, target.id)
    _move(session, Interaction.__table__, Interaction.__table__.c.customer_id, interactions,
          target.id)

    # contact points only this profile supplied, and added when it was linked, go with it
    remaining = list(session.scalars(select(SourceProfile).where(
        SourceProfile.customer_id == c.id)))
    still = {_norm(k, v) for p in remaining for k, v in _profile_values(p).items() if v}
    mine = {_norm(k, v) for k, v in _profile_values(profile).items() if v}
    taken: dict[str, list[int]] = {}
    for name in _POINT_TABLES:
        if link is None and not founding:
            break  # no record of what the customer had before: keep everything
        table = Base.metadata.tables[name]
        earlier = set(link.get(name, [])) if link is not None else set()
        for row in session.execute(select(table).where(table.c.customer_id == c.id)).mappings():
            value = _point_value(name, row)
            if value in mine and value not in still and row["id"] not in earlier:
                taken.setdefault(name, []).append(row["id"])
    for name, ids in taken.items():
        table = Base.metadata.tables[name]
        session.execute(update(table).where(table.c.id.in_(ids))
                        .values(customer_id=target.id, is_primary=False))
    session.flush()
    session.expire_all()

    # golden values of both are rebuilt; a field only this profile supplied goes back to what
    # the customer had before the link (or empty)
    solely = {f for f in lineage.get(profile.id, {})
              if not any(f in fields for pid, fields in lineage.items() if pid != profile.id)}
    _rebuild(session, [c.id, target.id])
    c = _customer(session, change.customer_id or 0, "profile_id")
    rebuilt = {row["source_profile_id"]: row["fields"] for row in _lineage_rows(session, [c.id])}
    supplied_now = {f for fields in rebuilt.values() for f in fields}
    cleared = {}
    for name in sorted((solely & set(golden.SCALAR_FIELDS)) - supplied_now):
        column = Customer.__table__.c[golden._CUSTOMER_COLUMN.get(name, name)]
        restored = _typed(column, (link or {}).get("values", {}).get(name))
        if name in ("first_name", "last_name"):
            restored = restored or ""
        cleared[name] = _plain(getattr(c, column.key))
        setattr(c, column.key, restored)
    if cleared:
        c.display_name = f"{c.first_name} {c.last_name}".strip() or c.display_name
        c.name_key, c.name_key_alt = name_keys(c.first_name or "", c.last_name or "")
    change = session.get(IdentityChange, change.id) or change
    change.snapshot = _jsonable({
        "profile_id": profile_id, "profile": previous, "to_customer": change.other_customer_id,
        "revived": revived, "orders": orders, "interactions": interactions, "points": taken,
        "cleared": cleared, "rejected_review": rejected, "link_snapshot": link is not None})
    session.flush()
    audit.record(session, principal, "unlink", RESOURCE, change.id, ("customer_id",),
                 {"profile_id": profile_id, "from_customer_id": c.id,
                  "to_customer_id": change.other_customer_id, "orders": len(orders),
                  "interactions": len(interactions)}, reason=reason)
    emit(session, "customer.profile_unlinked", "customer", c.id,
         {"profile_id": profile_id, "to_customer_id": change.other_customer_id,
          "change_id": change.id}, principal.user_id)
    return change


def _merged_away_from(session: Session, profile: SourceProfile, c: Customer) -> Customer | None:
    evidence = profile.link_evidence or {}
    origin, merge_id = evidence.get("merged_from"), evidence.get("merge")
    if not isinstance(origin, int) or not isinstance(merge_id, int):
        return None
    merge_change = session.get(IdentityChange, merge_id)
    if merge_change is None or merge_change.reverted_by is not None:
        return None
    origin_customer = session.get(Customer, origin)
    if origin_customer is None or merged_target(session, origin) != c.id:
        return None
    return origin_customer


def _merge_as_link(session: Session, profile: SourceProfile) -> dict[str, Any] | None:
    """What the survivor had before the merge that brought this profile, shaped like a link
    snapshot: rows the merge moved or created count as brought by the merged customer."""
    change = session.get(IdentityChange, (profile.link_evidence or {}).get("merge"))
    if change is None:
        return None
    snap = change.snapshot or {}
    survivor = snap.get("survivor", {})
    out: dict[str, Any] = {"values": {
        name: survivor.get(golden._CUSTOMER_COLUMN.get(name, name))
        for name in golden.SCALAR_FIELDS}}
    for name in _POINT_TABLES:
        moved = {int(i) for i in snap.get("moved", {}).get(f"{name}.customer_id", [])}
        out[name] = sorted({int(i) for i in snap.get("points", {}).get(name, {})} - moved)
    return out


def _close_pair(session: Session, principal: Principal, profile: SourceProfile,
                previous: dict[str, Any], now: datetime) -> int | None:
    """The pair that linked it is closed as rejected, so it is never proposed again."""
    evidence = previous.get("link_evidence") or {}
    other = evidence.get("other_profile_id")
    if not isinstance(other, int) or session.get(SourceProfile, other) is None:
        return None
    left, right = sorted((profile.id, other))
    review = session.scalar(select(MatchReview).where(MatchReview.left_id == left,
                                                      MatchReview.right_id == right))
    if review is None:
        probability = previous.get("match_probability") or 0.0
        review = MatchReview(left_id=left, right_id=right, match_probability=probability,
                             match_weight=evidence.get("match_weight") or 0.0,
                             fields=evidence.get("fields") or [], status="rejected",
                             decided_by=principal.user_id, decided_at=now)
        session.add(review)
    else:
        review.status, review.decided_by, review.decided_at = "rejected", principal.user_id, now
    session.flush()
    return review.id


# --- the review queue ------------------------------------------------------------------------


def review_list_spec() -> ListSpec:
    return ListSpec(
        resource=RESOURCE,
        id_column=MatchReview.id,
        filters={
            "status": Filter(MatchReview.status, choices=REVIEW_STATUSES),
            "id": Filter(MatchReview.id, int, frozenset({"eq", "in", "lt", "gt"})),
            "model_version": Filter(MatchReview.model_version, int,
                                    frozenset({"eq", "isnull"})),
            "created_at": Filter(MatchReview.created_at, datetime,
                                 frozenset({"lt", "lte", "gt", "gte"})),
            "decided_by": Filter(MatchReview.decided_by, int, frozenset({"eq", "isnull"})),
        },
        sorts={
            "id": Sort(MatchReview.id, int),
            "match_probability": Sort(MatchReview.match_probability, Decimal),
            "created_at": Sort(MatchReview.created_at, datetime),
        },
        default_sort="-match_probability",
    )


def list_reviews(session: Session, principal: Principal,
                 params: ListParams) -> tuple[list[dict[str, Any]], str | None]:
    """Reviews (filter `status=pending` for the queue) with a one-line view of both sides."""
    _require(principal, "read")
    rows = list(session.scalars(paginate(select(MatchReview), review_list_spec(), params)))
    page, cursor = page_of(rows, review_list_spec(), params)
    ids = sorted({r.left_id for r in page} | {r.right_id for r in page})
    sides = _profile_summaries(session, ids)
    return [{"id": r.id, "version": r.version, "status": r.status,
             "match_probability": r.match_probability, "match_weight": r.match_weight,
             "model_version": r.model_version, "created_at": r.created_at,
             "decided_by": r.decided_by, "decided_at": r.decided_at,
             "left": sides.get(r.left_id), "right": sides.get(r.right_id)}
            for r in page], cursor


def _profile_summaries(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    if not ids:
        return out
    rows = session.execute(
        select(SourceProfile, Source.name, Source.kind, Source.trust_rank, Customer.display_name)
        .join(Source, Source.id == SourceProfile.source_id)
        .outerjoin(Customer, Customer.id == SourceProfile.customer_id)
        .where(SourceProfile.id.in_(ids))).all()
    for p, source, kind, rank, display in rows:
        name = " ".join(x for x in (p.first_name, p.last_name) if x) or p.email or p.external_id
        out[p.id] = {"profile_id": p.id, "source": source, "source_kind": kind,
                     "trust_rank": rank, "external_id": p.external_id, "name": name,
                     "customer_id": p.customer_id, "customer_name": display}
    return out


def _masked(principal: Principal) -> set[str]:
    return hidden_fields(principal, "customers") & set(_SENSITIVE)


def _is_masked(field: str, masked: set[str]) -> bool:
    return any(field.startswith(alias) for name in masked for alias in _SENSITIVE[name])


def _side(session: Session, principal: Principal, profile: SourceProfile,
          masked: set[str]) -> dict[str, Any]:
    source = session.get(Source, profile.source_id)
    customer = session.get(Customer, profile.customer_id) if profile.customer_id else None
    linked = len(_profile_ids(session, customer.id)) if customer is not None else 0
    values = {f: (None if f in masked else _plain(getattr(profile, f))) for f in PROFILE_FIELDS}
    return {
        "profile_id": profile.id, "version": profile.version,
        "customer_values": (_customer_values(session, profile, masked)
                            if customer is not None else {}),
        "source": {"id": source.id, "name": source.name, "kind": source.kind,
                   "trust_rank": source.trust_rank} if source else None,
        "external_id": profile.external_id, "observed_at": profile.observed_at,
        "values": values, "flags": profile.flags,
        "customer": ({"id": customer.id, "display_name": customer.display_name,
                      "linked_profiles": linked} if customer is not None else None),
        "link_method": profile.link_method, "match_probability": profile.match_probability,
    }


SIBLINGS_SHOWN = 50  # a steward compares a handful of records, not a whole household


def _customer_values(session: Session, profile: SourceProfile,
                     masked: set[str]) -> dict[str, list[Any]]:
    """What the other records already linked to this profile's customer say, per compared
    field, where it differs from this record: the pair alone hides evidence against it (a
    birth date one side lacks, given by another source of that customer)."""
    from accord.integration.resolution import MATCH_COLUMNS

    others = session.scalars(select(SourceProfile).where(
        SourceProfile.customer_id == profile.customer_id, SourceProfile.id != profile.id)
        .order_by(SourceProfile.id).limit(SIBLINGS_SHOWN)).all()
    out: dict[str, list[Any]] = {}
    for name in MATCH_COLUMNS:
        if _is_masked(name, masked):
            continue
        own = getattr(profile, name)
        seen = {fold(str(own))} if own not in (None, "") else set()
        for other in others:
            value = getattr(other, name)
            if value in (None, "") or fold(str(value)) in seen:
                continue
            seen.add(fold(str(value)))
            out.setdefault(name, []).append(_plain(value))
    return out


def get_review(session: Session, principal: Principal, review_id: int) -> dict[str, Any]:
    """Both profiles side by side with each compared field's values and match weight."""
    review = review_record(session, principal, review_id)
    masked = _masked(principal)
    left = session.get(SourceProfile, review.left_id)
    right = session.get(SourceProfile, review.right_id)
    if left is None or right is None:
        raise NotFound(f"review {review_id} does not exist")
    fields = []
    for row in review.fields or []:
        name = str(row.get("field", ""))
        hide = _is_masked(name, masked)
        fields.append({"field": name, "left": None if hide else _plain(row.get("left")),
                       "right": None if hide else _plain(row.get("right")),
                       "match_weight": row.get("match_weight"), "level": row.get("level"),
                       "masked": hide, "agrees": _agrees(row)})
    return {"id": review.id, "version": review.version, "status": review.status,
            "match_probability": review.match_probability,
            "match_weight": review.match_weight, "model_version": review.model_version,
            "created_at": review.created_at, "decided_by": review.decided_by,
            "decided_by_name": _user_name(session, review.decided_by),
            "decided_at": review.decided_at, "fields": fields,
            "left": _side(session, principal, left, masked),
            "right": _side(session, principal, right, masked),
            "masked_fields": sorted(masked)}


def _agrees(row: dict[str, Any]) -> bool | None:
    """Whether the two values agree; None when there is nothing to compare (one is missing)."""
    if row.get("gamma") == -1 or row.get("left") in (None, "") or row.get("right") in (None, ""):
        return None
    weight = row.get("match_weight")
    if isinstance(weight, int | float):
        return weight > 0
    return fold(str(row["left"])) == fold(str(row["right"]))


def _user_name(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return session.scalar(select(User.full_name).where(User.id == user_id))


def review_record(session: Session, principal: Principal, review_id: int) -> MatchReview:
    _require(principal, "read")
    review = session.get(MatchReview, review_id)
    if review is None:
        raise NotFound(f"review {review_id} does not exist")
    return review


def _decidable(session: Session, principal: Principal, review_id: int,
               expected_version: int | None, status: str = "pending",
               refusal: str = "") -> MatchReview:
    _require(principal, "update")
    review = review_record(session, principal, review_id)
    _check_version(review, expected_version, "If-Match")
    if review.status != status:
        raise Conflict(refusal or f"review {review_id} was already {review.status}",
                       field="status")
    return review


def accept_review(session: Session, principal: Principal, review_id: int, *,
                  expected_version: int | None = None, reason: str = "") -> MatchReview:
    """The two profiles are one person: link the unlinked side, or merge the two customers
    (the one with more linked profiles survives; on a tie the older, lower id)."""
    review = _decidable(session, principal, review_id, expected_version)
    left = session.get(SourceProfile, review.left_id)
    right = session.get(SourceProfile, review.right_id)
    assert left is not None and right is not None
    why = reason.strip() or f"review {review.id} accepted"
    now = utcnow()
    change_id = None
    outcome = "same customer"
    if left.customer_id and right.customer_id and left.customer_id != right.customer_id:
        counts = {cid: len(_profile_ids(session, cid))
                  for cid in (left.customer_id, right.customer_id)}
        survivor, merged = sorted(counts, key=lambda cid: (-counts[cid], cid))
        change_id = merge(session, principal, survivor, merged, why, method="review",
                          review=review).id
        outcome = "merged"
        session.expire_all()
        review = session.get(MatchReview, review_id) or review
    elif left.customer_id is None or right.customer_id is None:
        linked, loose = (left, right) if left.customer_id else (right, left)
        target = (session.get(Customer, linked.customer_id) if linked.customer_id else None)
        if target is None:
            target = Customer(display_name="", name_key="", name_key_alt="", first_name="",
                              last_name="")
            session.add(target)
            session.flush()
            emit(session, "customer.created", "customer", target.id, {"via": "review"},
                 principal.user_id)
            linked.customer_id, linked.link_method, linked.linked_at = target.id, "review", now
        else:
            record_link(session, principal, target, [loose.id])
        loose.customer_id = target.id
        loose.link_method = "review"
        loose.match_probability = review.match_probability
        loose.link_evidence = {"other_profile_id": linked.id, "review_id": review.id,
                               "probability": review.match_probability,
                               "match_weight": review.match_weight, "fields": review.fields,
                               "decided_by": principal.user_id}
        loose.linked_at = now
        session.flush()
        _rebuild(session, [target.id])
        apply_pending(session, loose.source_id, _subject_keys(session, loose))
        outcome = "linked"
    review.status, review.decided_by, review.decided_at = "accepted", principal.user_id, now
    session.flush()
    audit.record(session, principal, "accept", "match_reviews", review.id, ("status",),
                 {"outcome": outcome, "change_id": change_id,
                  "left_id": review.left_id, "right_id": review.right_id}, reason=why)
    return review


def reject_review(session: Session, principal: Principal, review_id: int, *,
                  expected_version: int | None = None, reason: str = "") -> MatchReview:
    """Not the same person: closed for good (the resolver never proposes the pair again)."""
    review = _decidable(session, principal, review_id, expected_version)
    review.status, review.decided_by, review.decided_at = "rejected", principal.user_id, utcnow()
    session.flush()
    audit.record(session, principal, "reject", "match_reviews", review.id, ("status",),
                 {"left_id": review.left_id, "right_id": review.right_id},
                 reason=reason.strip() or f"review {review.id} rejected")
    return review


def reopen_review(session: Session, principal: Principal, review_id: int, *,
                  expected_version: int | None = None, reason: str = "") -> MatchReview:
    """A rejection taken back: the pair is pending again, for a steward to decide (and the
    resolver may propose it). An accepted review is undone where its link or merge is: by
    unlinking the profile or undoing the merge."""
    review = _decidable(session, principal, review_id, expected_version, "rejected",
                        f"review {review_id} is not rejected: only a rejection can be reopened "
                        "(undo an accepted one by unlinking or unmerging)")
    review.status, review.decided_by, review.decided_at = "pending", None, None
    session.flush()
    audit.record(session, principal, "reopen", "match_reviews", review.id, ("status",),
                 {"status": "pending", "left_id": review.left_id, "right_id": review.right_id},
                 reason=reason.strip() or f"review {review.id} reopened")
    return review


# --- why two records were linked -------------------------------------------------------------


_METHOD_TEXT = {"new": "first record of this person", "auto": "linked by the match model",
                "rule": "linked by a deterministic rule", "review": "confirmed by a data steward",
                "manual": "linked by hand"}


def why_linked(session: Session, customer_id: int,
               masked: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Each source profile behind a customer: its source and trust, how and why it was linked
    (rule or per-field weights), and the golden fields it supplied with their values."""
    hide = set(masked)
    rows = golden.lineage(session, customer_id)
    profiles = {p.id: p for p in session.scalars(select(SourceProfile).where(
        SourceProfile.id.in_([r["profile_id"] for r in rows])))}
    others = _profile_summaries(session, sorted({
        r["evidence"]["other_profile_id"] for r in rows
        if isinstance((r["evidence"] or {}).get("other_profile_id"), int)}))
    out = []
    for row in rows:
        p = profiles[row["profile_id"]]
        evidence = dict(row["evidence"] or {})
        supplied = []
        for name, rule in sorted(row["supplied"].items()):
            value = None if name in hide else _supplied_value(p, name)
            supplied.append({"field": name, "rule": rule, "value": value,
                             "masked": name in hide})
        fields = evidence.get("fields") if isinstance(evidence.get("fields"), list) else []
        other_id = evidence.get("other_profile_id")
        # pairs are stored left = lower profile id: "this" is the right side when it is higher
        flip = isinstance(other_id, int) and p.id > other_id
        weights = []
        for f in fields:
            if not isinstance(f, dict):
                continue
            name = str(f.get("field"))
            mine, theirs = (f.get("right"), f.get("left")) if flip else (f.get("left"),
                                                                         f.get("right"))
            hidden = _is_masked(name, hide)
            weights.append({"field": name, "match_weight": f.get("match_weight"),
                            "level": f.get("level"), "agrees": _agrees(f), "masked": hidden,
                            "this": None if hidden else _plain(mine),
                            "other": None if hidden else _plain(theirs)})
        other = others.get(evidence.get("other_profile_id"))  # type: ignore[arg-type]
        out.append({
            **{k: row[k] for k in ("profile_id", "source", "source_kind", "trust_rank",
                                   "external_id", "record_id", "link_method",
                                   "match_probability", "linked_at", "flags")},
            "version": p.version,
            "method_text": _METHOD_TEXT.get(row["link_method"] or "", "not linked"),
            "rule": evidence.get("rule"), "weights": weights, "other": other,
            "merge_id": evidence.get("merge"), "merged_from": evidence.get("merged_from"),
            "review_id": evidence.get("review_id"), "reason": evidence.get("reason"),
            "unlinked_from": evidence.get("unlinked_from"),
            "previous": evidence.get("previous"), "supplied": supplied,
        })
    return out


def _supplied_value(p: SourceProfile, name: str) -> Any:
    if name.startswith("cf."):  # a custom field's value as the source gave it
        return _plain((p.extra or {}).get(name))
    if name == "address":
        parts = (p.address_line1, p.address_line2, p.postcode, p.city, p.region, p.country)
        return ", ".join(str(x) for x in parts if x) or None
    return _plain(getattr(p, name, None))


def identity_history(session: Session, customer_id: int) -> list[dict[str, Any]]:
    """Merges, unmerges and unlinks involving the customer, newest first."""
    rows = session.execute(
        select(IdentityChange, User.full_name)
        .outerjoin(User, User.id == IdentityChange.actor_id)
        .where(IdentityChange.kind != "link",
               or_(IdentityChange.customer_id == customer_id,
                   IdentityChange.other_customer_id == customer_id))
        .order_by(IdentityChange.id.desc()).limit(50)).all()
    return [{"id": c.id, "kind": c.kind, "customer_id": c.customer_id,
             "other_customer_id": c.other_customer_id, "reason": c.reason,
             "actor": name, "created_at": c.created_at, "reverted_by": c.reverted_by,
             "revertible": c.kind == "merge" and c.reverted_by is None}
            for c, name in rows]


def customer_sources(session: Session, principal: Principal,
                     customer_id: int) -> dict[str, Any]:
    """The 360 page's and the API's view of where a golden customer comes from."""
    _require(principal, "read")
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist")
    if customer.merged_into_id is not None:
        target = merged_target(session, customer.id) or customer.merged_into_id
        raise MergedInto(customer.id, target, f"/api/v1/identity/customers/{target}/sources")
    masked = _masked(principal)
    from accord.customers.custom_fields import definitions

    if not can_see_sensitive_custom(principal):  # their values, as on the customer
        masked |= {f"cf.{d.key}" for d in definitions(session) if d.sensitive}
    return {"customer_id": customer.id, "version": customer.version,
            "sources": why_linked(session, customer.id, masked),
            "changes": identity_history(session, customer.id),
            "masked_fields": sorted(masked)}


def change_out(change: IdentityChange) -> dict[str, Any]:
    """An identity change for the API (the snapshot stays internal: it is personal data)."""
    snap = change.snapshot or {}
    return {"id": change.id, "kind": change.kind, "customer_id": change.customer_id,
            "other_customer_id": change.other_customer_id, "reason": change.reason,
            "actor_id": change.actor_id, "created_at": change.created_at,
            "reverted_by": change.reverted_by,
            "revertible": change.kind == "merge" and change.reverted_by is None,
            "moved": {k: len(v) for k, v in snap.get("moved", {}).items()},
            "kept": {k: len(v) for k, v in snap.get("kept", {}).items()},
            "reverts": snap.get("reverts"), "profile_id": snap.get("profile_id")}
