"""Identity resolution: linking source profiles to golden customers.

Two paths share one decision step (`_decide`):
- **incremental** (`resolve_pending`, the `integration.match` job): new or changed profiles are
  compared only with candidates the database finds by indexed keys (e-mail, phone, national id,
  surname with date of birth, surname with postcode), so a thousand new records cost the same
  against a thousand or a million resolved ones;
- **batch** (`resolve_all`, `accord resolve`): the active model (trained here when there is none)
  scores every profile against every other within the blocking rules.
Scores come from the probabilistic model (Splink) when one is trained, and from deterministic
rules otherwise; the rules (same national id; same e-mail with the same surname) also apply on
top of the model. Pairs above the upper threshold link automatically, pairs between the
thresholds go to the review queue, and an automatic link never joins two existing golden
customers: that is a merge, proposed for review instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import orjson
from sqlalchemy import Text, and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from accord.access import audit
from accord.access.policy import SYSTEM, Principal
from accord.core import jobs
from accord.core.clock import utcnow
from accord.core.contact import fold
from accord.core.db import JSONText, executemany, executemany_columns
from accord.core.events import emit_many
from accord.core.memory import no_cycle_collection as _no_cycle_collection
from accord.core.settings import get_settings
from accord.integration import golden
from accord.integration.ingest import MATCH_JOB, apply_pending, insert_many, subject_keys
from accord.integration.sources import manual_source
from accord.models import (
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    MatchModel,
    MatchReview,
    Source,
    SourceProfile,
    SourceRecord,
)

log = logging.getLogger("accord.resolution")

MATCH_COLUMNS = ("first_name", "last_name", "date_of_birth", "email", "phone", "address_line1",
                 "postcode", "city", "country", "national_id")
_CHUNK = 500
# profiles resolved together by `resolve_pending`: each chunk pays one matching run's setup
# (about half a second), so an import batch of a thousand records is one run, not two
_PENDING_CHUNK = 2000


@dataclass
class ResolveResult:
    profiles: int = 0
    new_customers: int = 0
    auto_links: int = 0
    reviews: int = 0
    applied: int = 0


@dataclass(frozen=True, slots=True)
class Pair:
    left: int
    right: int
    probability: float
    weight: float | None
    method: str  # "model" or "rule"
    evidence: dict[str, Any]
    # the model's per-field evidence, built on demand (most scored pairs never need it)
    detail: _Detail | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class _Detail:
    """Where a model pair's per-field evidence is: a row of the scores behind it."""

    scores: _Scores
    row: int
    swap: bool

    def __call__(self) -> list[dict[str, Any]]:
        return self.scores.fields([self])[0]


def explain_all(details: Sequence[_Detail]) -> list[list[dict[str, Any]]]:
    """The per-field evidence of many pairs, read from their scores column by column."""
    out: list[list[dict[str, Any]] | None] = [None] * len(details)
    groups: dict[int, list[int]] = {}
    for k, d in enumerate(details):
        groups.setdefault(id(d.scores), []).append(k)
    for ks in groups.values():
        for k, fields_ in zip(ks, details[ks[0]].scores.fields([details[k] for k in ks]),
                              strict=True):
            out[k] = fields_
    return out  # type: ignore[return-value]


class _Scores:
    """The scoring frame behind model pairs, and the profile values they compared."""

    def __init__(self, labels: dict[str, dict[int, str]], frame: Any, values: Any) -> None:
        import numpy as np

        def column(name: str) -> Any:
            return frame[name].to_numpy() if name in frame.columns else None

        self.left_ids = frame["unique_id_l"].to_numpy().astype("int64")
        self.right_ids = frame["unique_id_r"].to_numpy().astype("int64")
        at: dict[str, Any] = {}
        if values is not None:
            ids = values["unique_id"].to_numpy().astype("int64")
            at = {"l": np.searchsorted(ids, self.left_ids),
                  "r": np.searchsorted(ids, self.right_ids)}

        def compared(name: str, side: str) -> tuple[Any, Any]:
            if f"{name}_{side}" in frame.columns or values is None or \
                    name not in values.columns:
                return column(f"{name}_{side}"), None
            return values[name].array, at[side]  # taken by position when needed

        self.specs = [(name, levels, column(f"gamma_{name}"), column(f"mw_{name}"),
                       column(f"mw_tf_adj_{name}"), *compared(name, "l"), *compared(name, "r"))
                      for name, levels in labels.items()]

    def fields(self, details: Sequence[_Detail]) -> list[list[dict[str, Any]]]:
        import numpy as np
        import pandas as pd

        rows = np.fromiter((d.row for d in details), dtype="int64", count=len(details))
        n = len(details)

        def take(array: Any, positions: Any) -> list[Any]:
            if array is None:
                return [None] * n
            picked = array.take(rows if positions is None else positions[rows])
            if isinstance(picked, pd.arrays.ArrowStringArray):  # str or missing: no per-value work
                return picked.to_numpy(dtype=object, na_value=None).tolist()
            return [_plain(v) for v in picked]

        out: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        for name, levels, gammas, weights, tfs, lefts, lpos, rights, rpos in self.specs:
            g = [-1] * n if gammas is None else gammas[rows].astype("int64").tolist()
            w = np.zeros(n) if weights is None else weights[rows].astype(float)
            if tfs is not None:  # NaN: no term-frequency adjustment
                w = w + np.nan_to_num(tfs[rows].astype(float))
            a, b = take(lefts, lpos), take(rights, rpos)
            for k, (d, gamma, weight) in enumerate(zip(details, g, w.tolist(), strict=True)):
                x, y = (b[k], a[k]) if d.swap else (a[k], b[k])
                out[k].append({"field": name, "left": x, "right": y,
                               "level": levels.get(gamma), "gamma": gamma,
                               "match_weight": weight})
        return out


def thresholds() -> tuple[float, float]:
    s = get_settings()
    return s.match_upper_threshold, s.match_lower_threshold


def active_model(session: Session) -> MatchModel | None:
    return session.scalar(
        select(MatchModel).where(MatchModel.active.is_(True)).order_by(MatchModel.version.desc())
    )


def _records(profiles: Iterable[SourceProfile]) -> list[dict[str, Any]]:
    return [
        {"unique_id": p.id, "source": str(p.source_id),
         **{c: (getattr(p, c).isoformat() if c == "date_of_birth" and getattr(p, c) else
                getattr(p, c)) for c in MATCH_COLUMNS}}
        for p in profiles
    ]


# --- deterministic rules ---------------------------------------------------------------------


# Columns a deterministic rule may require to be equal (surname compared folded).
RULE_COLUMNS = {"national_id": "national_id", "email": "email", "phone": "phone",
                "last_name": "last_name_key", "first_name": "first_name",
                "date_of_birth": "date_of_birth", "postcode": "postcode"}

RULE_LABELS = {"national_id": "national id", "email": "e-mail", "last_name": "surname",
               "first_name": "first name", "date_of_birth": "date of birth"}


def match_rules() -> list[tuple[str, ...]]:
    """`ACCORD_MATCH_RULES`: each rule a list of columns that must all be present and equal."""
    rules = [tuple(rule) for rule in get_settings().match_rules]
    for rule in rules:
        unknown = [c for c in rule if c not in RULE_COLUMNS]
        if not rule or unknown:
            raise ValueError(f"ACCORD_MATCH_RULES: unknown column(s) {unknown} in {list(rule)}")
    return rules


def contradiction(dob_a: Any, dob_b: Any, first_a: Any, first_b: Any) -> str | None:
    """What says two records are two people whatever identifier they share: a household's
    e-mail or landline is shared by people with their own birth dates and first names. Names
    are compared by their initial only (Bob and Bert may be one person; Mary and Natasha not)."""
    if _given(dob_a) and _given(dob_b) and dob_a != dob_b:
        return "different dates of birth"
    if _given(first_a) and _given(first_b):
        a, b = fold(str(first_a)), fold(str(first_b))
        if a and b and a[0] != b[0]:
            return "different first names"
    return None


def _given(value: Any) -> bool:
    """Present: not None, pandas' NA, NaN or empty (values come from ORM rows and frames)."""
    return _plain(value) not in (None, "")


def rule_pair(a: SourceProfile, b: SourceProfile) -> Pair | None:
    """The deterministic rules; they hold whatever the model says, unless the two records
    contradict each other (`contradiction`)."""
    left, right = sorted((a.id, b.id))
    if contradiction(a.date_of_birth, b.date_of_birth, a.first_name, b.first_name):
        return None
    for rule in match_rules():
        values = [(getattr(a, RULE_COLUMNS[c]), getattr(b, RULE_COLUMNS[c])) for c in rule]
        if all(x is not None and x != "" and (fold(x) if isinstance(x, str) else x) ==
               (fold(y) if isinstance(y, str) else y) for x, y in values):
            return Pair(left, right, 1.0, None, "rule",
                        {"rule": "same " + " and ".join(RULE_LABELS.get(c, c) for c in rule)})
    return None


def fallback_pair(a: SourceProfile, b: SourceProfile) -> Pair | None:
    """Without a trained model: conservative scores a steward can confirm."""
    hit = rule_pair(a, b)
    if hit:
        return hit
    left, right = sorted((a.id, b.id))
    same_last = bool(a.last_name_key) and a.last_name_key == b.last_name_key
    same_first = bool(a.first_name) and fold(a.first_name or "") == fold(b.first_name or "")
    if a.phone and a.phone == b.phone and same_last:
        conflict = contradiction(a.date_of_birth, b.date_of_birth, a.first_name, b.first_name)
        if conflict:  # a household's landline: a steward decides
            return Pair(left, right, 0.75, None, "rule",
                        {"rule": f"same phone and surname, {conflict}"})
        return Pair(left, right, 0.97, None, "rule", {"rule": "same phone and surname"})
    if same_last and same_first and a.date_of_birth and a.date_of_birth == b.date_of_birth:
        return Pair(left, right, 0.97, None, "rule", {"rule": "same name and date of birth"})
    if a.email and a.email == b.email:
        return Pair(left, right, 0.8, None, "rule", {"rule": "same e-mail"})
    if a.phone and a.phone == b.phone:
        return Pair(left, right, 0.7, None, "rule", {"rule": "same phone, different surname"})
    if same_last and a.date_of_birth and a.date_of_birth == b.date_of_birth:
        return Pair(left, right, 0.7, None, "rule", {"rule": "same surname and date of birth"})
    return None


# --- candidates ------------------------------------------------------------------------------


def _ensure_manual_profiles(session: Session, customer_ids: set[int]) -> None:
    """Customers entered by hand become matchable: a profile of the `accord` source each."""
    if not customer_ids:
        return
    have = set()
    for chunk in _chunks(sorted(customer_ids)):
        have.update(session.scalars(select(SourceProfile.customer_id)
                                    .where(SourceProfile.customer_id.in_(chunk))))
    missing = sorted(customer_ids - have)
    if not missing:
        return
    source = manual_source(session)
    for customer in session.scalars(select(Customer).where(Customer.id.in_(missing))):
        record_manual_profile(session, customer, source_id=source.id)


def record_manual_profile(session: Session, customer: Customer, *,
                          source_id: int | None = None) -> SourceProfile:
    """Capture a customer's hand-entered values as the `accord` source's profile of it."""
    source_id = source_id or manual_source(session).id
    email = next((e.email_normalized for e in customer.emails if e.is_primary), None)
    phone = next((p.e164 for p in customer.phones if p.is_primary), None)
    address = next((a for a in customer.addresses if a.is_primary), None)
    values = {
        "title": customer.title, "first_name": customer.first_name or None,
        "last_name": customer.last_name or None,
        "last_name_key": fold(customer.last_name) if customer.last_name else None,
        "gender": customer.gender, "date_of_birth": customer.date_of_birth,
        "national_id": customer.national_id, "country": customer.country,
        "language": customer.preferred_language, "email": email, "phone": phone,
        "address_line1": address.line1 if address else None,
        "address_line2": address.line2 if address else None,
        "city": address.city if address else None, "region": address.region if address else None,
        "postcode": address.postcode if address else None,
    }
    payload = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items()}
    from accord.integration.ingest import content_hash

    digest = content_hash("profile", payload)
    external_id = str(customer.id)
    record_id = session.scalar(select(SourceRecord.id).where(
        SourceRecord.source_id == source_id, SourceRecord.kind == "profile",
        SourceRecord.external_id == external_id, SourceRecord.content_hash == digest))
    if record_id is None:
        record = SourceRecord(source_id=source_id, kind="profile", external_id=external_id,
                              content_hash=digest, payload=payload, status="applied")
        session.add(record)
        session.flush()
        record_id = record.id
    profile = session.scalar(select(SourceProfile).where(
        SourceProfile.source_id == source_id, SourceProfile.external_id == external_id))
    if profile is None:
        profile = SourceProfile(source_id=source_id, external_id=external_id, record_id=record_id,
                                customer_id=customer.id, link_method="manual",
                                match_probability=1.0, linked_at=utcnow(), flags={}, extra={},
                                link_evidence={"rule": "entered in Accord"})
        session.add(profile)
    profile.record_id = record_id
    profile.observed_at = utcnow()
    for key, value in values.items():
        setattr(profile, key, value)
    session.flush()
    return profile


def find_candidates(session: Session, profiles: Sequence[SourceProfile]) -> list[SourceProfile]:
    """Linked profiles sharing an indexed key with any of `profiles` (and hand-entered
    customers sharing one, given a profile first)."""
    emails = sorted({p.email for p in profiles if p.email})
    phones = sorted({p.phone for p in profiles if p.phone})
    nids = sorted({p.national_id for p in profiles if p.national_id})
    last_dob = sorted({(p.last_name_key, p.date_of_birth) for p in profiles
                       if p.last_name_key and p.date_of_birth})
    post_last = sorted({(p.postcode, p.last_name_key) for p in profiles
                        if p.postcode and p.last_name_key})
    # Customers are looked up by their own values only to find those entered by hand, which
    # have no source profile yet; every other customer is found through its profiles below.
    def unprofiled(customer_id: Any) -> Any:
        return ~exists().where(SourceProfile.customer_id == customer_id)

    customer_ids: set[int] = set()
    for chunk in _chunks(emails):
        customer_ids.update(session.scalars(select(CustomerEmail.customer_id).where(
            CustomerEmail.email_normalized.in_(chunk), unprofiled(CustomerEmail.customer_id))))
    for chunk in _chunks(phones):
        customer_ids.update(session.scalars(select(CustomerPhone.customer_id).where(
            CustomerPhone.e164.in_(chunk), unprofiled(CustomerPhone.customer_id))))
    by_dob: dict[Any, set[str]] = {}
    for key, dob in last_dob:
        by_dob.setdefault(dob, set()).add(key)
    for chunk in _chunks(sorted(by_dob)):
        for cid, name_key, dob in session.execute(
                select(Customer.id, Customer.name_key, Customer.date_of_birth)
                .where(Customer.date_of_birth.in_(chunk), unprofiled(Customer.id))):
            if _surname_in(name_key, by_dob[dob]):
                customer_ids.add(cid)
    by_postcode: dict[str, set[str]] = {}
    for postcode, key in post_last:
        by_postcode.setdefault(postcode, set()).add(key)
    for chunk in _chunks(sorted(by_postcode)):
        for cid, name_key, postcode in session.execute(
                select(CustomerAddress.customer_id, Customer.name_key, CustomerAddress.postcode)
                .join(Customer, Customer.id == CustomerAddress.customer_id)
                .where(CustomerAddress.postcode.in_(chunk), unprofiled(Customer.id))):
            if _surname_in(name_key, by_postcode[postcode]):
                customer_ids.add(cid)
    _ensure_manual_profiles(session, _live(session, customer_ids))

    conditions = []
    if emails:
        conditions += [SourceProfile.email.in_(chunk) for chunk in _chunks(emails)]
    if phones:
        conditions += [SourceProfile.phone.in_(chunk) for chunk in _chunks(phones)]
    if nids:
        conditions += [SourceProfile.national_id.in_(chunk) for chunk in _chunks(nids)]
    # pairs of keys as ORs of ANDs: SQLite then searches the two-column index on both columns
    # (a row-value IN uses only its first column: every profile with a common surname)
    conditions += [or_(*(and_(SourceProfile.last_name_key == k, SourceProfile.date_of_birth == d)
                         for k, d in chunk)) for chunk in _chunks(last_dob, 100)]
    conditions += [or_(*(and_(SourceProfile.postcode == p, SourceProfile.last_name_key == k)
                         for p, k in chunk)) for chunk in _chunks(post_last, 100)]
    if not conditions:
        return []
    found: dict[int, SourceProfile] = {}
    # one query per key kind and chunk keeps each lookup on its index
    for condition in conditions:
        for row in session.scalars(select(SourceProfile).where(
                condition, SourceProfile.customer_id.is_not(None))):
            found[row.id] = row
    own = {p.id for p in profiles}
    return [p for pid, p in found.items() if pid not in own]


def _surname_in(name_key: str, surnames: set[str]) -> bool:
    """Customer.name_key is "last first" folded; surnames may have several words."""
    return any(name_key == k or name_key.startswith(k + " ") for k in surnames)


def _live(session: Session, customer_ids: set[int]) -> set[int]:
    live: set[int] = set()
    for chunk in _chunks(sorted(customer_ids)):
        live.update(session.scalars(select(Customer.id).where(
            Customer.id.in_(chunk), Customer.merged_into_id.is_(None))))
    return live


# --- scoring ---------------------------------------------------------------------------------


def score(session: Session, new: Sequence[SourceProfile], candidates: Sequence[SourceProfile],
          model: MatchModel | None) -> list[Pair]:
    """Pairs among `new` and between `new` and `candidates`, at or above the lower threshold."""
    _, lower = thresholds()
    pairs: dict[tuple[int, int], Pair] = {}
    if model is not None:
        from accord.integration import matching

        frame = matching.match_new(model.model, _records(new), _records(candidates),
                                   threshold=lower)
        for pair in model_pairs(model, frame):
            pairs[(pair.left, pair.right)] = pair
        for a, b in _blocked_pairs(new, candidates):
            hit = rule_pair(a, b)
            known = pairs.get((hit.left, hit.right)) if hit else None
            if hit and (known is None or known.probability < hit.probability):
                pairs[(hit.left, hit.right)] = hit
    else:
        for a, b in _blocked_pairs(new, candidates):
            hit = fallback_pair(a, b)
            if hit and hit.probability >= lower:
                pairs[(hit.left, hit.right)] = hit
    return [p for p in pairs.values() if p.probability >= lower]


def model_pairs(model: MatchModel, frame: Any, values: Any = None) -> list[Pair]:
    """Scored pairs read off the scoring frame; the per-field evidence of a pair is built only
    when it is used (the link it makes, or a review), not for every scored pair. `values`, the
    profile frame (ordered by id), supplies the compared values when the scores lack them."""
    from accord.integration import matching

    comparisons = matching.splink_model(model.model)["comparisons"]
    labels = {c["output_column_name"]: matching._level_labels(c) for c in comparisons}
    if not len(frame):
        return []
    scores = _Scores(labels, frame, values)
    probabilities = frame["match_probability"].to_numpy(dtype=float).tolist()
    weights = frame["match_weight"].to_numpy(dtype=float).tolist()
    evidence = {"model_version": model.version}
    return [Pair(min(a, b), max(a, b), p, w, "model", evidence, _Detail(scores, i, a > b))
            for i, (a, b, p, w) in enumerate(zip(scores.left_ids.tolist(),
                                                 scores.right_ids.tolist(), probabilities,
                                                 weights, strict=True))]


def _blocked_pairs(new: Sequence[SourceProfile],
                   candidates: Sequence[SourceProfile]) -> Iterable[tuple[SourceProfile,
                                                                         SourceProfile]]:
    """Pairs sharing a blocking key, each once."""
    index: dict[tuple[Any, ...], list[SourceProfile]] = {}
    for p in (*new, *candidates):
        for key in _keys(p):
            index.setdefault(key, []).append(p)
    new_ids = {p.id for p in new}
    seen: set[tuple[int, int]] = set()
    for group in index.values():
        for i, a in enumerate(group):
            for b in group[i + 1:]:
                if a.id == b.id or (a.id not in new_ids and b.id not in new_ids):
                    continue
                key = (min(a.id, b.id), max(a.id, b.id))
                if key not in seen:
                    seen.add(key)
                    yield a, b


def _keys(p: SourceProfile) -> list[tuple[Any, ...]]:
    keys: list[tuple[Any, ...]] = []
    if p.email:
        keys.append(("e", p.email))
    if p.phone:
        keys.append(("p", p.phone))
    if p.national_id:
        keys.append(("n", p.national_id))
    if p.last_name_key and p.date_of_birth:
        keys.append(("ld", p.last_name_key, p.date_of_birth))
    if p.postcode and p.last_name_key:
        keys.append(("pl", p.postcode, p.last_name_key))
    return keys


# --- deciding --------------------------------------------------------------------------------


class _Union:
    """Union-find that knows the existing customer of each cluster and refuses to join two,
    or to grow a cluster beyond `limit` profiles."""

    def __init__(self, owners: dict[int, int], limit: int | None = None,
                 sizes: dict[int, int] | None = None) -> None:
        self.parent: dict[int, int] = {}
        self.owner: dict[int, int] = dict(owners)  # root -> existing customer id
        self.limit = limit
        self.size: dict[int, int] = dict(sizes or {})  # root -> profiles (1 when absent)

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        oa, ob = self.owner.get(ra), self.owner.get(rb)
        if oa and ob and oa != ob:
            return False  # that would merge two golden customers: a steward decides
        size = self.size.get(ra, 1) + self.size.get(rb, 1)
        if self.limit is not None and size > self.limit:
            return False  # a chain of good pairs this long joins different people
        root, child = min(ra, rb), max(ra, rb)
        self.parent[child] = root
        self.size[root] = size
        self.size.pop(child, None)
        owner = oa or ob
        if owner:
            self.owner[root] = owner
        self.owner.pop(child, None)
        return True


def _decided_pairs(session: Session, pairs: Sequence[Pair]) -> dict[tuple[int, int], str]:
    """Review status of the pairs that already have one (rejected pairs are never linked)."""
    out: dict[tuple[int, int], str] = {}
    lefts = sorted({p.left for p in pairs})
    wanted = {(p.left, p.right) for p in pairs}
    query = select(MatchReview.left_id, MatchReview.right_id, MatchReview.status)
    # reviews are made by people (thousands); a batch scores up to millions of pairs
    chunks = [None] if len(lefts) > 20 * _CHUNK else _chunks(lefts)
    for chunk in chunks:
        q = query if chunk is None else query.where(MatchReview.left_id.in_(chunk))
        for left, right, status in session.execute(q):
            if (left, right) in wanted:
                out[(left, right)] = status
    return out


def _decide(session: Session, principal: Principal, new: Sequence[SourceProfile | LinkRow],
            candidates: Sequence[SourceProfile | LinkRow], pairs: Sequence[Pair],
            result: ResolveResult, *, views: golden.ViewSource | None = None) -> set[int]:
    """Link every profile in `new`; returns the customers whose golden values must be rebuilt.
    `views` (the batch's, with `new` all `LinkRow`s) supplies new profiles' values without
    reading them again; a large batch then plans golden records and encodes link evidence in
    a second process while this one writes (`_Ahead`)."""
    upper, _ = thresholds()
    everyone = {p.id: p for p in (*new, *candidates)}
    new_ids = {p.id for p in new}
    union = _Union({p.id: p.customer_id for p in everyone.values() if p.customer_id},
                   limit=get_settings().match_max_cluster)
    decided = _decided_pairs(session, pairs)
    best: dict[int, Pair] = {}  # profile -> the automatic pair that linked it
    review: list[Pair] = []
    for pair in sorted(pairs, key=lambda p: -p.probability):
        if decided.get((pair.left, pair.right)) == "rejected":
            continue  # a steward said these are different people
        if pair.probability < upper or not union.union(pair.left, pair.right):
            review.append(pair)
            continue
        for pid in (pair.left, pair.right):
            if pid in new_ids and pid not in best:
                best[pid] = pair
    clusters: dict[int, list[SourceProfile]] = {}
    for p in new:
        clusters.setdefault(union.find(p.id), []).append(p)
    now = utcnow()
    # the clusters of people not seen before get their golden customers, values, contact
    # points and lineage included, a few statements per chunk (no blank insert and rebuild)
    fresh_roots = [root for root in clusters if not union.owner.get(root)]
    fresh = [[p.id for p in clusters[root]] for root in fresh_roots]
    plans = golden.planner(session, fresh, views)
    with _Ahead.maybe(views is not None and len(new) >= PARALLEL_MIN_PROFILES,
                      plans, lambda: _link_evidence(clusters, best)) as ahead:
        fresh_ids = golden.create(session, fresh, now,
                                  lambda rows: _insert_customers(session, rows),
                                  plans=ahead.stream(0) if ahead else plans())
        owner_of = dict(zip(fresh_roots, fresh_ids, strict=True))
        emit_many(session, "customer.created", "customer", fresh_ids,
                  {"via": "identity resolution"}, principal.user_id)
        result.new_customers += len(fresh_ids)
        from accord.integration.stewardship import record_links

        # what existing customers had before, so an unlink takes away exactly what these
        # brought
        joining: dict[int, list[int]] = {}
        for root, members in clusters.items():
            if union.owner.get(root):
                joining.setdefault(union.owner[root], []).extend(p.id for p in members)
        record_links(session, principal, joining)
        # the first batch links every profile: the index on profiles' customer is built once
        with golden.bulk_indexes(session, "source_profiles", len(new), column="customer_id"):
            touched = _link_all(session, clusters, union, owner_of, best, now, result,
                                ahead.stream(1) if ahead else None)
        golden.sync_custom(session, fresh_ids, set())  # their profiles are linked now
    result.reviews += _queue_reviews(session, review, everyone, decided)
    result.profiles += len(new)
    return touched


# a batch linking at least this many profiles plans its golden records in a second process,
# when at least this much of a CPU is idle (on a busy machine the second process only takes
# CPU from the first and adds the pickling)
PARALLEL_MIN_PROFILES = 20_000
IDLE_CPU_MIN = 0.5


def _single_threaded() -> bool:
    """Whether this process runs no other Python thread. A fork copies only the forking
    thread: a lock another thread held at that moment (a log handler's, a stream's) would stay
    taken in the child for ever. `accord resolve` and a job worker's main thread fork; a web
    server's embedded worker (request threads, the audit writer) resolves in one process."""
    import threading

    return threading.active_count() == 1


def _idle_cpus(window: float = 0.25) -> float:
    """CPUs left idle over a short window (from /proc/stat; without it, assumed one)."""
    import time

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(v) for v in fh.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks[:8])  # idle + iowait, all but guests

    try:
        idle, total = sample()
        time.sleep(window)
        idle2, total2 = sample()
    except (OSError, ValueError, IndexError):
        return 1.0
    import os

    cpus = os.cpu_count() or 1
    return cpus * (idle2 - idle) / max(total2 - total, 1)


_END = "end of stream"


class _Ahead:
    """Streams computed in a forked process, each item one ahead of its use.

    The batch's golden-record planning and link-evidence encoding are pure Python over data
    this process already holds; a fork inherits that data without copying it, computes chunk
    k+1 while this process writes chunk k to the database, and sends each chunk pickled
    through a pipe. The child touches no connection, logger or lock, and leaves with
    `os._exit`. Streams are consumed in order. Without fork, or without an idle second CPU
    (`_idle_cpus`: on a busy machine it would only take CPU from this process and add the
    pickling), the batch computes the streams itself.
    """

    def __init__(self, *streams: Callable[[], Iterable[Any]]) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=self._run, args=(streams, send), daemon=True)
        self._process.start()
        send.close()
        self._next = 0
        self._streams = len(streams)

    @classmethod
    @contextmanager
    def maybe(cls, wanted: bool,
              *streams: Callable[[], Iterable[Any]]) -> Iterator[_Ahead | None]:
        import multiprocessing
        import os

        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
            os.cpu_count() or 1
        if not (wanted and cpus > 1 and "fork" in multiprocessing.get_all_start_methods()
                and _single_threaded() and _idle_cpus() >= IDLE_CPU_MIN):
            yield None
            return
        ahead = cls(*streams)
        try:
            yield ahead
        finally:
            ahead.close()

    def _run(self, streams: Sequence[Callable[[], Iterable[Any]]], send: Any) -> None:
        self._receive.close()
        try:
            for k, stream in enumerate(streams):
                for item in stream():
                    send.send((k, item))
                send.send((k, _END))
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
            import traceback

            send.send((-1, traceback.format_exc()))
        finally:
            send.close()

    def stream(self, k: int) -> Iterator[Any]:
        """The items of stream `k` as they arrive (streams are read in order)."""
        if k != self._next:
            raise RuntimeError(f"stream {k} read out of order (expected {self._next})")
        while True:
            try:
                which, item = self._receive.recv()
            except EOFError:
                raise RuntimeError("the planning process ended without its results") from None
            if which == -1:
                raise RuntimeError(f"the planning process failed:\n{item}")
            if isinstance(item, str) and item == _END:
                self._next += 1
                return
            yield item

    def close(self) -> None:
        if self._process.is_alive() and self._next < self._streams:
            self._process.kill()  # the parent failed: its results are not wanted
        self._process.join()
        self._receive.close()


def _insert_customers(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Insert customers and return their ids in order. On SQLite (the write lock is held from
    BEGIN IMMEDIATE) the ids are allocated up front and the rows go through the driver's
    executemany; PostgreSQL batches RETURNING itself."""
    if not rows:
        return []
    table = Customer.__table__
    if session.get_bind().dialect.name != "sqlite":
        return insert_many(session, table, rows)
    start = (session.scalar(select(func.max(table.c.id))) or 0) + 1
    for i, row in enumerate(rows, start):
        row["id"] = i
    executemany(session, insert(table), rows)
    return list(range(start, start + len(rows)))


def _link_all(session: Session, clusters: dict[int, list[Any]], union: _Union,
              owner_of: dict[int, int], best: dict[int, Pair], now: Any,
              result: ResolveResult, evidence: Iterator[list[str]] | None = None
              ) -> set[int]:
    """Link each cluster's profiles to its customer with the pair that linked them as
    evidence; returns the existing customers that gained profiles. `evidence`, when given,
    holds the encoded evidence of each batch of links (`_link_evidence`, same order)."""
    touched = {union.owner[root] for root in clusters if union.owner.get(root)}
    links: list[tuple[Any, dict[str, Any], Pair | None]] = []
    for root, p in _link_order(clusters):
        pair = best.get(p.id)
        link = {"customer_id": union.owner.get(root) or owner_of[root], "linked_at": now,
                "link_method": "new", "match_probability": None, "link_evidence": None}
        if pair is not None:
            link.update(link_method="auto" if pair.method == "model" else "rule",
                        match_probability=pair.probability)
            result.auto_links += 1
        if evidence is None:
            link["link_evidence"] = _evidence(p, pair)
        links.append((p, link, pair))
        if len(links) >= _LINK_BATCH:  # evidence is big: build and write it chunk by chunk
            _write_links(session, links, next(evidence) if evidence is not None else None)
            links.clear()
    _write_links(session, links, next(evidence) if evidence is not None and links else None)
    if evidence is not None and next(evidence, None) is not None:
        raise RuntimeError("more link evidence than links")
    return touched  # new customers were built complete above


def _link_order(clusters: dict[int, list[Any]]) -> list[tuple[int, Any]]:
    """Each profile with its cluster's root, in profile id order: the updates then walk the
    profiles table front to back instead of jumping between clusters' far-apart rows."""
    return sorted(((root, p) for root, members in clusters.items() for p in members),
                  key=lambda item: item[1].id)


def _evidence(p: Any, pair: Pair | None) -> dict[str, Any]:
    """A link's evidence, without the model's per-field part (added in bulk when written)."""
    if pair is None:
        return {}
    return {"other_profile_id": pair.right if pair.left == p.id else pair.left,
            "probability": pair.probability, "match_weight": pair.weight, **pair.evidence}


def _link_evidence(clusters: dict[int, list[Any]],
                   best: dict[int, Pair]) -> Iterator[list[str]]:
    """The encoded evidence of every link in `_link_all`'s order and batches (computed in
    the batch's second process; plain text, which pickles faster than `JSONText`)."""
    batch: list[dict[str, Any]] = []
    explained: list[tuple[dict[str, Any], _Detail]] = []

    def done() -> list[str]:
        for e, fields_ in zip([e for e, _ in explained],
                              explain_all([d for _, d in explained]), strict=True):
            e["fields"] = fields_
        out = [orjson.dumps(e).decode() for e in batch]
        batch.clear()
        explained.clear()
        return out

    for _, p in _link_order(clusters):
        pair = best.get(p.id)
        batch.append(_evidence(p, pair))
        if pair is not None and pair.detail:
            explained.append((batch[-1], pair.detail))
        if len(batch) >= _LINK_BATCH:
            yield done()
    if batch:
        yield done()


_LINK_COLUMNS = ("customer_id", "linked_at", "link_method", "match_probability",
                 "link_evidence")
_LINK_BATCH = 20_000


def _write_links(session: Session, links: Sequence[tuple[Any, dict[str, Any], Pair | None]],
                 encoded: list[str] | None = None) -> None:
    """Link profiles in one executemany (the model's evidence of each link built in bulk, or
    given `encoded`); ORM profiles in the session take the values as loaded
    (set_committed_value), so nothing is written twice."""
    if not links:
        return
    if encoded is None:
        explained = [(link, pair.detail) for _, link, pair in links if pair and pair.detail]
        for (link, _), fields_ in zip(explained, explain_all([d for _, d in explained]),
                                      strict=True):
            link["link_evidence"]["fields"] = fields_
    session.flush()
    table = SourceProfile.__table__
    columns: dict[str, list[Any]] = {"_id": [p.id for p, _, _ in links]}
    for c in _LINK_COLUMNS:
        columns[f"_{c}"] = [link[c] for _, link, _ in links]
    columns["_link_evidence"] = list(map(JSONText, encoded)) if encoded is not None else [
        _json_text(e) for e in columns["_link_evidence"]]
    if len(columns["_link_evidence"]) != len(links):
        raise RuntimeError("link evidence does not match the links")
    values = {c: bindparam(f"_{c}") for c in _LINK_COLUMNS}
    if session.get_bind().dialect.name == "sqlite":
        # SQLite keeps JSON as its text: the encoded evidence goes to the driver as it is,
        # not through the JSON type's processing once per row
        values["link_evidence"] = bindparam("_link_evidence", type_=Text())
    executemany_columns(
        session, update(table).where(table.c.id == bindparam("_id")).values(values), columns)
    for p, link, _ in links:
        if isinstance(p, SourceProfile):
            for column, value in link.items():
                set_committed_value(p, column, value)
        else:
            p.customer_id = link["customer_id"]


def _json_text(value: Any) -> JSONText:
    """A link's evidence encoded once, here, with orjson: ~1 KB per link, a million links per
    batch. It reads back the same values as `json` would write (floats in shortest round-trip
    form; NaN, which PostgreSQL's JSON refuses anyway, as null); no hash depends on this text."""
    return JSONText(orjson.dumps(value).decode())


@dataclass(slots=True)
class ProfileRow:
    """A source profile as the batch needs it: read with Core, no ORM object per profile."""

    id: int
    source_id: int
    external_id: str
    customer_id: int | None
    first_name: str | None
    last_name: str | None
    last_name_key: str | None
    date_of_birth: Any
    email: str | None
    phone: str | None
    address_line1: str | None
    postcode: str | None
    city: str | None
    country: str | None
    national_id: str | None


def _profile_rows(session: Session, ids: Iterable[int]) -> dict[int, ProfileRow]:
    table = SourceProfile.__table__
    names = [f.name for f in fields(ProfileRow)]
    out: dict[int, ProfileRow] = {}
    for chunk in _chunks(sorted(set(ids))):
        for row in session.execute(select(*(table.c[n] for n in names))
                                   .where(table.c.id.in_(chunk))):
            out[row[0]] = ProfileRow(*row)
    return out


@dataclass(slots=True)
class LinkRow:
    """What deciding and linking need of a profile in the batch (values stay in the frame)."""

    id: int
    source_id: int
    external_id: str
    customer_id: int | None


def _queue_reviews(session: Session, pairs: Sequence[Pair], everyone: dict[int, Any],
                   decided: dict[tuple[int, int], str]) -> int:
    queued = []
    for pair in pairs:
        a, b = everyone[pair.left], everyone[pair.right]
        if a.customer_id and a.customer_id == b.customer_id:
            continue  # already the same person
        if (pair.left, pair.right) in decided:
            continue
        decided[(pair.left, pair.right)] = "pending"
        queued.append(pair)
    # pairs without the model's evidence (rules) show the two profiles' values side by side
    full = _profile_rows(session, {i for p in queued if not p.detail for i in (p.left, p.right)})
    explained = iter(explain_all([p.detail for p in queued if p.detail]))
    now = utcnow()
    rows = [{"left_id": pair.left, "right_id": pair.right,
             "match_probability": pair.probability,
             "match_weight": pair.weight if pair.weight is not None else 0.0,
             "fields": next(explained) if pair.detail else side_by_side(full[pair.left],
                                                                        full[pair.right]),
             "model_version": pair.evidence.get("model_version"),
             "status": "pending", "version": 1, "created_at": now} for pair in queued]
    if rows:
        session.execute(insert(MatchReview), rows)
    return len(rows)


def side_by_side(a: SourceProfile, b: SourceProfile) -> list[dict[str, Any]]:
    return [{"field": c, "left": _plain(getattr(a, c)), "right": _plain(getattr(b, c)),
             "match_weight": None} for c in MATCH_COLUMNS]


def _plain(value: Any) -> Any:
    if value is None or type(value).__name__ == "NAType" or (
            isinstance(value, float) and value != value):
        return None  # pandas' NA or NaN: missing in a data frame
    return value.isoformat() if hasattr(value, "isoformat") else value


# --- the two entry points --------------------------------------------------------------------


def resolve_pending(session: Session, principal: Principal = SYSTEM,
                    profile_ids: Sequence[int] | None = None) -> ResolveResult:
    """Link unlinked profiles (all, or those among `profile_ids`) incrementally; given ids
    that are already linked (a source sent a change) get their customer's golden values rebuilt."""
    result = ResolveResult()
    query = select(SourceProfile).where(SourceProfile.customer_id.is_(None))
    if profile_ids is not None:
        ids = sorted(set(profile_ids))
        chunks = [ids[i:i + _PENDING_CHUNK] for i in range(0, len(ids), _PENDING_CHUNK)]
    else:
        chunks = [None]
    model = active_model(session)
    for chunk in chunks:
        q = query.where(SourceProfile.id.in_(chunk)) if chunk is not None else query
        new = list(session.scalars(q.order_by(SourceProfile.id)))
        touched: set[int] = set()
        if chunk is not None:
            # changed profiles that are already linked: their customers' golden values follow
            touched.update(session.scalars(select(SourceProfile.customer_id).where(
                SourceProfile.id.in_(chunk), SourceProfile.customer_id.is_not(None))))
        if new:
            candidates = find_candidates(session, new)
            pairs = score(session, new, candidates, model)
            touched |= _decide(session, principal, new, candidates, pairs, result)
        rebuild(session, touched)
        if new:
            result.applied += _apply_pending_for(session, new)
    return result


MIN_TRAINING_RECORDS = 50


def profile_frame(session: Session, *, golden: bool = False) -> Any:
    """Every source profile as one columnar frame (Arrow-backed strings, ordered by id): what
    the matcher reads and the batch decides on, without a Python object per profile. With
    `golden`, also the other values golden records are built from (record id, observation
    time in microseconds as `observed_us`, title, gender, language, second address line,
    region), so that the batch need not read every profile a second time."""
    import pandas as pd
    import pyarrow as pa

    from accord.integration import golden as golden_

    table = SourceProfile.__table__
    names = ["id", "source_id", *MATCH_COLUMNS, "customer_id", "external_id", "last_name_key"]
    if golden:
        names += ["record_id", "observed_at",
                  *(c for c in golden_._VIEW_COLUMNS if c not in names)]
    types = {"id": pa.int64(), "source_id": pa.int64(), "customer_id": pa.int64(),
             "record_id": pa.int64(), "date_of_birth": pa.date32(),
             "observed_at": pa.timestamp("us", tz="UTC")}
    schema = pa.schema([(n, types.get(n, pa.string())) for n in names])
    arrow = _sqlite_profiles(session, names, schema) if \
        session.get_bind().dialect.name == "sqlite" else None
    if arrow is None:
        batches = []
        result = session.execute(select(*(table.c[n] for n in names)).order_by(table.c.id)
                                 .execution_options(yield_per=50_000))
        for part in result.partitions():
            columns = list(zip(*part, strict=True))
            batches.append(pa.RecordBatch.from_arrays(
                [pa.array(c, type=schema.field(n).type)
                 for n, c in zip(names, columns, strict=True)], schema=schema))
        arrow = pa.Table.from_batches(batches, schema=schema)
    arrow = arrow.set_column(names.index("date_of_birth"), "date_of_birth",
                             arrow["date_of_birth"].cast(pa.string()))
    if golden:
        arrow = arrow.set_column(names.index("observed_at"), "observed_us",
                                 arrow["observed_at"].cast(pa.int64()))
    frame = arrow.to_pandas(types_mapper=lambda t: pd.StringDtype("pyarrow")
                            if t == pa.string() else pd.Int64Dtype() if t == pa.int64()
                            else None)
    frame.insert(0, "unique_id", frame.pop("id"))
    frame.insert(1, "source", frame["source_id"].astype("string[pyarrow]"))
    return frame


_SQLITE_TEXT = {"date_of_birth": r"^\d{4}-\d{2}-\d{2}$",
                "observed_at": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$"}


def _sqlite_profiles(session: Session, names: Sequence[str], schema: Any) -> Any:
    """SQLite: the profile columns straight from the driver, dates and times converted by
    Arrow from the text SQLAlchemy stores them as (no Python object per value and row). None
    when a stored date or time is not in that form: the caller then reads through SQLAlchemy."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.schema([pa.field(f.name, pa.string()) if f.name in _SQLITE_TEXT else f
                      for f in schema])
    columns = ", ".join(f'"{n}"' for n in names)
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    batches = []
    try:
        cursor.execute(f"SELECT {columns} FROM source_profiles ORDER BY id")  # noqa: S608
        while rows := cursor.fetchmany(50_000):
            batches.append(pa.RecordBatch.from_arrays(
                [pa.array(c, type=text.field(n).type)
                 for n, c in zip(names, zip(*rows, strict=True), strict=True)], schema=text))
    finally:
        cursor.close()
    arrow = pa.Table.from_batches(batches, schema=text)
    for name, form in _SQLITE_TEXT.items():
        if name not in names:
            continue
        values = arrow[name]
        if pc.all(pc.match_substring_regex(values, form).fill_null(True)).as_py() is False:
            return None
        if name == "observed_at":  # SQLAlchemy keeps UTC times without their zone
            values = values.cast(pa.timestamp("us"))
        arrow = arrow.set_column(names.index(name), name, values.cast(schema.field(name).type))
    return arrow


def train_model(session: Session, principal: Principal = SYSTEM, *,
                engine: str | None = None, records: Any = None) -> MatchModel:
    """Estimate a new model version from the profiles (no labels) and make it the active one."""
    from accord.integration import matching

    records = records if records is not None else profile_frame(session)
    engine = engine or matching.engine_name()
    model_json = matching.train(records, engine=engine)
    upper, lower = thresholds()
    version = (session.scalar(select(func.max(MatchModel.version))) or 0) + 1
    session.execute(update(MatchModel).values(active=False))
    model = MatchModel(version=version, engine=engine, model=model_json, upper_threshold=upper,
                       lower_threshold=lower, trained_on=len(records), active=True,
                       created_by=principal.user_id)
    session.add(model)
    session.flush()
    audit.record(session, principal, "train", "identity", model.id, (),
                 {"version": version, "engine": engine, "records": len(records)})
    return model


def resolve_all(session: Session, principal: Principal = SYSTEM, *, retrain: bool = False,
                engine: str | None = None) -> ResolveResult:
    """The batch run (`accord resolve`): score every profile within the blocking rules.

    Trains a model first when there is none (or when asked). Profiles already linked keep
    their customer: a pair joining two existing customers (one the model links, between a
    new profile's cluster and a customer or between two customers) is proposed for review,
    never merged automatically.
    """
    with _no_cycle_collection():
        return _resolve_all(session, principal, retrain=retrain, engine=engine)


def _resolve_all(session: Session, principal: Principal, *, retrain: bool,
                 engine: str | None) -> ResolveResult:
    from accord.integration import matching

    frame = profile_frame(session, golden=True)
    model = None if retrain else active_model(session)
    if model is None and len(frame) >= MIN_TRAINING_RECORDS:
        model = train_model(session, principal, engine=engine, records=frame)
    if model is None:
        return resolve_pending(session, principal)
    upper, lower = thresholds()
    scored = matching.predict(model.model, frame, threshold=lower, engine=engine,
                              scores_only=True)
    is_new = frame["customer_id"].isna().to_numpy()
    new_ids = set(frame["unique_id"].to_numpy()[is_new].tolist())
    merged: dict[tuple[int, int], Pair] = {}
    joins: list[Pair] = []  # the model's links between profiles already linked
    for p in model_pairs(model, scored, values=frame):
        if p.left in new_ids or p.right in new_ids:
            merged[(p.left, p.right)] = p
        elif p.probability >= upper:
            joins.append(p)
    del scored
    # two customers the model says are one person (kept apart by the rules that linked them
    # before there was a model, or by an older model): proposed for review as a merge
    merged.update(((p.left, p.right), p) for p in _across_customers(frame, joins))
    # the deterministic rules hold on top of the model
    for hit in rule_pairs(frame, is_new):
        known = merged.get((hit.left, hit.right))
        if known is None or known.probability < hit.probability:
            merged[(hit.left, hit.right)] = hit
    involved = new_ids | {i for key in merged for i in key}
    rows = _link_rows(frame, involved)
    # new people's golden records are built from the values read above, not read again
    trust = {i: rank for i, rank in session.execute(select(Source.id, Source.trust_rank))}
    views = golden.FrameViews(frame, trust)
    del frame
    new = [rows[i] for i in sorted(new_ids)]
    candidates = [r for i, r in rows.items() if i not in new_ids]
    result = ResolveResult()
    with _bulk_cache(session):
        touched = _decide(session, principal, new, candidates, list(merged.values()), result,
                          views=views)
        del merged, rows, candidates
        rebuild(session, touched)
        result.applied += _apply_pending_for(session, new)
    audit.record(session, principal, "resolve", "identity", None, (),
                 {"model_version": model.version, "profiles": result.profiles,
                  "new_customers": result.new_customers, "reviews": result.reviews})
    return result


def _across_customers(frame: Any, pairs: list[Pair]) -> list[Pair]:
    if not pairs:
        return []
    ids = {i for p in pairs for i in (p.left, p.right)}
    part = frame[frame["unique_id"].isin(ids)]
    owner = dict(zip(part["unique_id"].tolist(), part["customer_id"].tolist(), strict=True))
    return [p for p in pairs if owner[p.left] != owner[p.right]]


BULK_CACHE_KIB = 262_144


@contextmanager
def _bulk_cache(session: Session) -> Iterator[None]:
    """SQLite: a larger page cache while the batch writes a row per profile and per golden
    customer into tables and indexes far larger than the default cache; restored after."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = session.connection()
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size={int(before)}")


def _link_rows(frame: Any, ids: set[int]) -> dict[int, LinkRow]:
    part = frame[frame["unique_id"].isin(ids)]
    customers = part["customer_id"].astype(object).where(part["customer_id"].notna(), None)
    return {i: LinkRow(i, s, e, c) for i, s, e, c in zip(
        part["unique_id"].tolist(), part["source_id"].tolist(), part["external_id"].tolist(),
        customers.tolist(), strict=True)}


RULE_GROUP_CAP = 1000  # a rule key shared by more records than this is junk, not a person


def rule_pairs(frame: Any, is_new: Any) -> list[Pair]:
    """The deterministic rules over the whole frame, set-based: pairs whose rule columns are
    all present and equal (text compared folded), at least one of them new. A pair takes the
    first rule it meets, as `rule_pair` does."""
    import pandas as pd

    out: dict[tuple[int, int], Pair] = {}
    for rule in match_rules():
        columns = [RULE_COLUMNS[c] for c in rule]
        part = pd.DataFrame({"id": frame["unique_id"].to_numpy(), "new": is_new})
        for column in columns:
            values = frame[column].astype(object).where(frame[column].notna(), None)
            codes, uniques = pd.factorize(values.to_numpy())
            folded = pd.Series([fold(v) if isinstance(v, str) else v for v in uniques],
                               dtype=object)
            part[column] = folded.reindex(codes).to_numpy()
            part.loc[codes < 0, column] = None
        part = part.dropna(subset=columns)
        part = part[(part[columns] != "").all(axis=1)]
        sizes = part.groupby(columns, sort=False)["id"].transform("size")
        if (sizes > RULE_GROUP_CAP).any():
            log.warning("rule %s: values shared by more than %d records ignored",
                        list(rule), RULE_GROUP_CAP)
        part = part[(sizes > 1) & (sizes <= RULE_GROUP_CAP)]
        if part.empty:
            continue
        joined = part.merge(part, on=columns, suffixes=("_a", "_b"))
        joined = joined[(joined["id_a"] < joined["id_b"]) & (joined["new_a"] | joined["new_b"])]
        evidence = {"rule": "same " + " and ".join(RULE_LABELS.get(c, c) for c in rule)}
        for a, b in zip(joined["id_a"].tolist(), joined["id_b"].tolist(), strict=True):
            if (a, b) not in out:
                out[(a, b)] = Pair(a, b, 1.0, None, "rule", evidence)
    return _consistent(frame, list(out.values()))


def _consistent(frame: Any, pairs: list[Pair]) -> list[Pair]:
    """The rule pairs whose records do not contradict each other (`contradiction`)."""
    if not pairs:
        return pairs
    import pandas as pd

    at = pd.Index(frame["unique_id"].to_numpy())
    left = at.get_indexer([p.left for p in pairs])
    right = at.get_indexer([p.right for p in pairs])
    dob = frame["date_of_birth"].astype(object).to_numpy()
    first = frame["first_name"].astype(object).to_numpy()
    return [p for p, a, b in zip(pairs, left.tolist(), right.tolist(), strict=True)
            if not contradiction(dob[a], dob[b], first[a], first[b])]


def export_golden(session: Session) -> Iterable[dict[str, Any]]:
    """One row per source record's profile: its golden id, probability, source and external id."""
    query = (select(SourceProfile.customer_id, SourceProfile.match_probability,
                    SourceProfile.link_method, Source.name, SourceProfile.external_id,
                    SourceProfile.record_id)
             .join(Source, Source.id == SourceProfile.source_id)
             .order_by(SourceProfile.customer_id, SourceProfile.id))
    for row in session.execute(query).yield_per(5000):
        yield {"golden_id": row[0], "match_probability": row[1], "link_method": row[2],
               "source": row[3], "external_id": row[4], "source_record_id": row[5]}


def rebuild(session: Session, customer_ids: Iterable[int]) -> None:
    golden.rebuild(session, customer_ids)


def _apply_pending_for(session: Session, profiles: Sequence[SourceProfile | LinkRow]) -> int:
    by_source: dict[int, set[str]] = {}
    for p in profiles:
        by_source.setdefault(p.source_id, set()).add(p.external_id)
    applied = 0
    for source_id, externals in by_source.items():
        if session.scalar(select(SourceRecord.id).where(
                SourceRecord.source_id == source_id, SourceRecord.status == "pending")
                .limit(1)) is None:
            continue  # nothing of this source waits for a person
        applied += apply_pending(session, source_id, subject_keys(session, source_id, externals))
    return applied


def _chunks(seq: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


@jobs.handler(MATCH_JOB)
def _match_job(session: Session, payload: dict[str, Any]) -> None:
    resolve_pending(session, SYSTEM, payload.get("profile_ids"))

