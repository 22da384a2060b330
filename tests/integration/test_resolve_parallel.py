"""The batch's second process (`_Ahead`: golden records planned and link evidence encoded in a
fork while the batch writes) and its profile values read off the profile frame
(`golden.FrameViews`) change nothing that is stored: the same customers, contact points,
lineage, links with their evidence, reviews, events and audit entries as the batch computing
everything itself from values read back from the database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from accord.access.policy import SYSTEM
from accord.core.db import session_factory, session_scope
from accord.integration import golden, resolution
from accord.integration.ingest import Incoming, ingest_batch
from accord.integration.resolution import profile_frame, resolve_all, train_model
from accord.integration.sources import create_source
from accord.models import (
    AuditEntry,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    GoldenLineage,
    IdentityChange,
    MatchReview,
    OutboxEvent,
    Source,
    SourceProfile,
)
from tests.integration.test_batch_resolve import noisy, people


def _load(db: str) -> int:
    """Two sources of the same crowd, a third with extra values; a model trained and kept,
    so that every run below scores with the very same parameters."""
    rnd = random.Random(11)
    crowd = people(240, rnd)
    with session_scope(db) as s:
        crm = create_source(s, SYSTEM, name="crm", kind="crm", trust_rank=10)
        shop = create_source(s, SYSTEM, name="shop", kind="webshop", trust_rank=20)
        desk = create_source(s, SYSTEM, name="desk", kind="crm", trust_rank=30)
        items: dict[Any, list[Incoming]] = {crm: [], shop: [], desk: []}
        for i, person in enumerate(crowd):
            items[crm].append(Incoming("profile", person, dict(person), f"C{i}"))
            if i % 3:
                record = noisy(person, rnd)
                items[shop].append(Incoming("profile", record, dict(record), f"S{i}"))
            if i % 5 == 0:
                extra = {**person, "title": "Dr.", "gender": "female", "language": "de",
                         "address_line2": f"Hinterhaus {i}", "region": "BE"}
                items[desk].append(Incoming("profile", extra, dict(extra), f"D{i}"))
        for source, batch in items.items():
            ingest_batch(s, SYSTEM, source, batch)
        # observation times with microseconds, some equal: survivorship ranks by them
        base = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        for k, profile in enumerate(s.scalars(select(SourceProfile).order_by(SourceProfile.id))):
            profile.observed_at = base + timedelta(microseconds=7 * (k % 13))
    with session_scope(db) as s:
        train_model(s)
        return s.query(SourceProfile).count()


def _state(s: Any) -> dict[str, list[Any]]:
    """Every row the batch writes, without times (each run has its own) and with customer
    ids replaced by their order of creation (PostgreSQL's sequences do not roll back)."""
    order = {cid: k for k, cid in enumerate(s.scalars(select(Customer.id).order_by(Customer.id)))}

    def cid(value: Any) -> Any:
        return order.get(value, value)

    c = Customer.__table__
    skip = {"id", "created_at", "updated_at"}
    customers = [tuple(v for k, v in row._mapping.items() if k not in skip)
                 for row in s.execute(select(c).order_by(c.c.id))]
    points = []
    for table in (CustomerEmail.__table__, CustomerPhone.__table__, CustomerAddress.__table__):
        points += [(table.name, cid(row.customer_id),
                    *(v for k, v in row._mapping.items()
                      if k not in skip | {"customer_id"}))
                   for row in s.execute(select(table).order_by(table.c.id))]
    lineage = [(cid(r.customer_id), r.source_profile_id, r.source_record_id, r.fields)
               for r in s.execute(select(GoldenLineage.__table__)
                                  .order_by(GoldenLineage.customer_id,
                                            GoldenLineage.source_profile_id))]
    links = [(p.id, cid(p.customer_id), p.link_method, p.match_probability, p.link_evidence)
             for p in s.execute(select(SourceProfile.__table__).order_by(SourceProfile.id))]
    reviews = [(r.left_id, r.right_id, r.match_probability, r.match_weight, r.fields,
                r.model_version, r.status)
               for r in s.execute(select(MatchReview.__table__).order_by(MatchReview.id))]
    changes = [(r.kind, cid(r.customer_id), r.snapshot)
               for r in s.execute(select(IdentityChange.__table__).order_by(IdentityChange.id))]
    events = [(r.type, r.aggregate, cid(int(r.aggregate_id)), r.payload)
              for r in s.execute(select(OutboxEvent.__table__).order_by(OutboxEvent.id))]
    audit = [(r.action, r.resource, r.detail)
             for r in s.execute(select(AuditEntry.__table__).order_by(AuditEntry.id))]
    return {"customers": customers, "points": points, "lineage": lineage, "links": links,
            "reviews": reviews, "changes": changes, "events": events, "audit": audit}


def _resolve(db: str, monkeypatch: pytest.MonkeyPatch, *, parallel: bool,
             frame_views: bool) -> dict[str, list[Any]]:
    monkeypatch.setattr(resolution, "PARALLEL_MIN_PROFILES", 1 if parallel else 10**9)
    monkeypatch.setattr(resolution, "IDLE_CPU_MIN", 0.0)  # however busy the machine is
    monkeypatch.setattr(resolution, "_single_threaded", lambda: True)  # pytest runs threads
    if not frame_views:  # the values read back from the database, as before
        monkeypatch.setattr(golden.FrameViews, "__call__",
                            lambda self, ids: golden.views_by_profile(session_ids[0], ids))
    forks = []
    start = resolution._Ahead.__init__

    def counted(self: Any, *streams: Any) -> None:
        forks.append(len(streams))
        start(self, *streams)

    monkeypatch.setattr(resolution._Ahead, "__init__", counted)
    s = session_factory(db)()
    session_ids = [s]
    try:
        result = resolve_all(s)
        assert result.profiles and result.new_customers and result.auto_links
        assert forks == ([2] if parallel else [])
        return _state(s)
    finally:
        s.rollback()
        s.close()
        monkeypatch.undo()


def test_parallel_batch_stores_what_the_sequential_batch_stores(
        db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = _load(db)
    # several chunks of customers and of links, so that the pipeline runs ahead
    monkeypatch.setattr(golden, "CREATE_CHUNK", 37)
    monkeypatch.setattr(resolution, "_LINK_BATCH", 53)
    before = _resolve(db, monkeypatch, parallel=False, frame_views=False)
    monkeypatch.setattr(golden, "CREATE_CHUNK", 37)
    monkeypatch.setattr(resolution, "_LINK_BATCH", 53)
    sequential = _resolve(db, monkeypatch, parallel=False, frame_views=True)
    monkeypatch.setattr(golden, "CREATE_CHUNK", 37)
    monkeypatch.setattr(resolution, "_LINK_BATCH", 53)
    parallel = _resolve(db, monkeypatch, parallel=True, frame_views=True)

    assert len(before["links"]) == profiles
    assert all(link[1] is not None for link in before["links"])
    assert any(link[4].get("fields") for link in before["links"])  # the model's evidence
    assert len(before["customers"]) > 100 and before["lineage"] and before["events"]
    for name in before:
        assert sequential[name] == before[name], name
        assert parallel[name] == before[name], name


def test_frame_views_are_the_views_read_from_the_database(db: str) -> None:
    _load(db)
    with session_scope(db, write=False) as s:
        frame = profile_frame(s, golden=True)
        trust = {i: rank for i, rank in s.execute(select(Source.id, Source.trust_rank))}
        ids = frame["unique_id"].tolist()
        expected = golden.views_by_profile(s, ids)
    got = golden.FrameViews(frame, trust)(list(reversed(ids)))
    assert list(got) == sorted(ids)
    assert got == expected  # ids, record ids, trust, observation times and every value
    for i, view in got.items():
        assert view.observed_at.timestamp() == expected[i].observed_at.timestamp()
        assert view.observed_at.utcoffset() == timedelta(0)
        assert [type(v) for v in view.values.values()] == \
            [type(v) for v in expected[i].values.values()]
    assert any(v.values["title"] and v.values["region"] and v.values["date_of_birth"]
               for v in got.values())
    with pytest.raises(KeyError):
        golden.FrameViews(frame, trust)([max(ids) + 1])


def test_a_failing_second_process_fails_the_batch(db: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _load(db)
    monkeypatch.setattr(resolution, "PARALLEL_MIN_PROFILES", 1)
    monkeypatch.setattr(resolution, "IDLE_CPU_MIN", 0.0)
    monkeypatch.setattr(resolution, "_single_threaded", lambda: True)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("planning broke")

    monkeypatch.setattr(golden, "_plan_customer", broken)
    s = session_factory(db)()
    try:
        with pytest.raises(RuntimeError, match="planning broke"):
            resolve_all(s)
    finally:
        s.rollback()
        s.close()


@pytest.mark.parametrize("golden_columns", [False, True])
def test_profile_frame_from_the_driver_is_the_frame_through_sqlalchemy(
        db: str, monkeypatch: pytest.MonkeyPatch, golden_columns: bool) -> None:
    _load(db)
    with session_scope(db, write=False) as s:
        if s.get_bind().dialect.name != "sqlite":
            # the driver's path is SQLite's: PostgreSQL's frame never takes it
            def refused(*args: object) -> None:
                raise AssertionError("the SQLite driver path ran on PostgreSQL")

            monkeypatch.setattr(resolution, "_sqlite_profiles", refused)
            frame = profile_frame(s, golden=golden_columns)
            assert len(frame) > 300 and frame["date_of_birth"].notna().any()
            return
        assert resolution._sqlite_profiles(s, ["id", "date_of_birth"], pa_schema()) is not None
        fast = profile_frame(s, golden=golden_columns)
        # a stored date not in SQLAlchemy's form sends the read through SQLAlchemy
        monkeypatch.setitem(resolution._SQLITE_TEXT, "date_of_birth", r"^never$")
        assert resolution._sqlite_profiles(s, ["id", "date_of_birth"], pa_schema()) is None
        slow = profile_frame(s, golden=golden_columns)
    assert len(fast) > 300 and fast["date_of_birth"].notna().any()
    assert list(fast.columns) == list(slow.columns)
    assert list(fast.dtypes) == list(slow.dtypes)
    assert fast.equals(slow)


def pa_schema() -> Any:
    import pyarrow as pa

    return pa.schema([("id", pa.int64()), ("date_of_birth", pa.date32())])


def test_no_second_process_without_an_idle_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    assert 0.0 <= resolution._idle_cpus(0.05) <= (os.cpu_count() or 1) + 1e-9
    made = []
    monkeypatch.setattr(resolution._Ahead, "__init__", lambda self, *streams: made.append(1))
    monkeypatch.setattr(resolution, "_idle_cpus", lambda: 0.2)
    with resolution._Ahead.maybe(True, list) as ahead:
        assert ahead is None
    monkeypatch.setattr(resolution, "_idle_cpus", lambda: 1.0)
    with resolution._Ahead.maybe(False, list) as ahead:
        assert ahead is None
    assert made == []


def test_no_second_process_beside_other_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process running other threads (a web server's) resolves in one process: a fork
    would copy the locks those threads hold, taken for ever in the child."""
    import threading

    made = []
    monkeypatch.setattr(resolution._Ahead, "__init__", lambda self, *streams: made.append(1))
    monkeypatch.setattr(resolution, "_idle_cpus", lambda: 2.0)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not resolution._single_threaded()
        with resolution._Ahead.maybe(True, list) as ahead:
            assert ahead is None
    finally:
        stop.set()
        other.join()
    assert made == []
