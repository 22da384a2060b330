"""The append-only, hash-chained audit trail.

Each row's hash is SHA-256 over its canonical content and the previous row's hash, so editing or
deleting a row breaks the chain from that row on (`accord audit verify`). Appends are serialised:
SQLite writing sessions hold the write lock from BEGIN, PostgreSQL takes an advisory lock.
Writes are audited in their own transaction; reads of personal data go through a group commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from accord.access.policy import Principal
from accord.core.clock import utcnow
from accord.core.db import executemany, get_engine, is_postgres
from accord.core.prepared import Prepared
from accord.core.settings import get_settings
from accord.models import AuditEntry
from accord.models.access import CHANGES_ONLY

GENESIS = "0" * 64
_PG_LOCK = 0x61636364  # "accd"


def _canonical(
    at: datetime,
    actor_id: int | None,
    actor: str,
    action: str,
    resource: str,
    record_id: str | None,
    fields: list[Any],
    detail: dict[str, Any],
    reason: str,
    prev_hash: str,
) -> bytes:
    doc = {
        "at": at.isoformat(timespec="microseconds"),
        "actor_id": actor_id,
        "actor": actor,
        "action": action,
        "resource": resource,
        "record_id": record_id,
        "fields": fields,
        "detail": detail,
        "reason": reason,
        "prev": prev_hash,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()


def _last_hash(session: Session) -> str:
    if is_postgres(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
    prev = session.execute(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).scalar()
    return prev or GENESIS


def _row(
    prev: str,
    principal: Principal,
    action: str,
    resource: str,
    record_id: Any,
    fields: Iterable[str],
    detail: dict[str, Any] | None,
    reason: str,
) -> dict[str, Any]:
    at = utcnow()
    field_list = sorted(set(fields))
    detail = json.loads(json.dumps(detail or {}, default=str))
    rid = None if record_id is None else str(record_id)
    digest = hashlib.sha256(
        _canonical(
            at,
            principal.user_id,
            principal.label,
            action,
            resource,
            rid,
            field_list,
            detail,
            reason,
            prev,
        )
    ).hexdigest()
    return {
        "at": at,
        "actor_id": principal.user_id,
        "actor": principal.label,
        "action": action,
        "resource": resource,
        "record_id": rid,
        "fields": field_list,
        "detail": detail,
        "reason": reason,
        "prev_hash": prev,
        "hash": digest,
    }


def record(
    session: Session,
    principal: Principal,
    action: str,
    resource: str,
    record_id: Any = None,
    fields: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
    reason: str = "",
) -> None:
    """Append one entry inside the caller's transaction (commits with the change it records)."""
    row = _row(_last_hash(session), principal, action, resource, record_id, fields, detail, reason)
    session.execute(insert(AuditEntry), [row])


@dataclass
class _PendingRead:
    url: str
    principal: Principal
    resource: str
    record_id: str | None
    fields: list[str]
    detail: dict[str, Any]
    # a waiting thread's signal (`submit`); the loop's batches (`_LoopCommit`) need none
    done: threading.Event | None = None
    error: BaseException | None = None
    # an async request's wait: settled on its loop once the batch is written
    waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None


class _ReadAuditWriter:
    """Group commit for read entries: one thread appends every waiting entry in one transaction,
    and each request returns only once its entry is durable. Concurrent readers therefore never
    queue on the database's write lock one by one (on SQLite, a busy wait with growing sleeps)."""

    BATCH = 256
    GATHER = 0.002  # seconds (see `_run`)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_PendingRead] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, item: _PendingRead) -> None:
        item.done = threading.Event()
        self.enqueue(item)
        if not item.done.wait(60):
            raise TimeoutError("the audit trail did not confirm a read entry")
        if item.error is not None:
            raise item.error

    async def submit_async(self, item: _PendingRead) -> None:
        """`submit` for the event loop: waits without holding a thread."""
        loop = asyncio.get_running_loop()
        confirmed: asyncio.Future[None] = loop.create_future()
        item.waiter = (loop, confirmed)
        self.enqueue(item)
        try:
            await asyncio.wait_for(confirmed, 60)
        except TimeoutError:
            raise TimeoutError("the audit trail did not confirm a read entry") from None
        if item.error is not None:
            raise item.error

    def enqueue(self, item: _PendingRead) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._queue = queue.SimpleQueue()  # a forked child must not share the parent's
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, args=(self._queue,), name="accord-audit-reads", daemon=True
                )
                self._thread.start()
            self._queue.put(item)

    def _run(self, pending: queue.SimpleQueue[_PendingRead]) -> None:
        held = _WriterConnections()
        last = 1
        while True:
            batch = [pending.get()]
            # reads arriving together (the last batch held several) are waited for a moment,
            # as a database's commit delay: one transaction for more of them
            until = time.monotonic() + self.GATHER if last > 1 else 0.0
            while len(batch) < self.BATCH:
                try:
                    wait = until - time.monotonic()
                    batch.append(pending.get(timeout=wait) if wait > 0 else pending.get_nowait())
                except queue.Empty:
                    break
            last = len(batch)
            by_url: dict[str, list[_PendingRead]] = {}
            for item in batch:
                by_url.setdefault(item.url, []).append(item)
            for url, items in by_url.items():
                try:
                    _append_reads(held.get(url), items)
                except BaseException as exc:  # handed to every waiting request
                    held.drop(url)  # the next batch starts on a fresh connection
                    for it in items:
                        it.error = exc
                waiting: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
                for it in items:
                    if it.done is not None:
                        it.done.set()
                    if it.waiter is not None:
                        waiting.setdefault(it.waiter[0], []).append(it.waiter[1])
                # one wake-up per event loop for the whole batch, not one per request
                for loop, futures in waiting.items():
                    with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits
                        loop.call_soon_threadsafe(_settle, futures)


def _settle(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():  # a request given up on (timed out, cancelled) is skipped
            future.set_result(None)


class _LoopCommit:
    """Group commit on the event loop itself, for SQLite (where the hot reads run on the loop).

    A request appends its entry and awaits; the flush is queued behind the callbacks already
    ready, so every read that became ready in the same turn of the loop (their requests' bytes
    arrived in the same poll, and on SQLite nothing between there and here awaits) shares one
    transaction, and batches grow with the load without a timer or an idle wait at one client.
    No thread: handing each batch to a writer thread and back cost more CPU in GIL hand-offs
    than the rows themselves (in-process, 16 concurrent 360 views: 1,175 µs of CPU per read
    with the writer thread, 953 on the loop, 621 with no audit at all).
    The commit's fsync (0.1-0.3 ms here) holds the loop; another connection's write lock does
    not: the batch is retried after a pause (`_LOCK_PAUSES`) while the loop serves requests."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[tuple[_PendingRead, asyncio.Future[None], float]] = []
        self._scheduled = False
        self._attempt = 0
        self._seen = 0  # entries pending at the last look (see `_flush`)
        self.held = _WriterConnections()

    def add(self, item: _PendingRead) -> asyncio.Future[None]:
        future = self._loop.create_future()
        self._pending.append((item, future, time.monotonic()))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        pending = len(self._pending)
        if (self._seen < pending < _ReadAuditWriter.BATCH and not self._attempt
                and time.monotonic() - self._pending[0][2] < _ReadAuditWriter.GATHER):
            # reads arrived during the last turn of the loop: more are on their way, so look
            # again after the next poll; a turn with no new arrival (or the deadline) commits
            self._seen = pending
            self._loop.call_soon(self._flush)
            return
        self._seen = 0
        by_url: dict[str, list[tuple[_PendingRead, asyncio.Future[None], float]]] = {}
        for entry in self._pending:
            by_url.setdefault(entry[0].url, []).append(entry)
        self._pending = []
        refused = []
        now = time.monotonic()
        for url, entries in by_url.items():
            futures = [future for _, future, _ in entries]
            try:
                last_try = now - entries[0][2] >= _LOCK_WAIT_SECONDS
                written = _try_append(self.held.get(url), [e[0] for e in entries], last_try)
            except Exception as exc:  # handed to every waiting request
                self.held.drop(url)  # the next batch starts on a fresh connection
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
                continue
            if written:
                _settle(futures)
            else:
                refused.extend(entries)
        if refused:  # first in the next batch, after a pause
            self._pending[:0] = refused
            self._loop.call_later(
                _LOCK_PAUSES[min(self._attempt, len(_LOCK_PAUSES) - 1)], self._flush
            )
            self._attempt += 1
        else:
            self._scheduled = False
            self._attempt = 0


_loop_commits: dict[asyncio.AbstractEventLoop, _LoopCommit] = {}


def _loop_commit(loop: asyncio.AbstractEventLoop) -> _LoopCommit:
    found = _loop_commits.get(loop)
    if found is None:
        for closed in [other for other in _loop_commits if other.is_closed()]:
            gone = _loop_commits.pop(closed, None)  # another thread's sweep may have taken it
            if gone is not None:
                gone.held.drop_all()  # tests run many short-lived loops
        found = _loop_commits[loop] = _LoopCommit(loop)
    return found


_TABLE = AuditEntry.__table__
_LAST_HASH = Prepared(select(_TABLE.c.hash).order_by(_TABLE.c.id.desc()).limit(1))
_INSERT = insert(_TABLE)


# On SQLite a batch whose BEGIN IMMEDIATE finds the write lock taken (another process's audit
# writer, say, with `accord serve --workers N`) retries after these pauses instead of SQLite's own
# busy handler, whose sleeps grow to 100 ms: a lock held for one commit (an fsync) should cost a
# waiter about that long, not the next step of a back-off. The total wait is the busy timeout's.
_LOCK_PAUSES = (0.0002, 0.0005, 0.001, 0.002)
_LOCK_WAIT_SECONDS = 10.0


class _WriterConnections:
    """The writer thread's own connection per database, kept between batches: taking one from
    the pool, setting it up for the writer and handing it back cost more CPU than a small
    batch's rows (~0.25 ms of ~0.35 ms for one entry on SQLite). On SQLite the connection
    begins IMMEDIATE (the write lock from BEGIN) and its busy handler is off: a taken lock is
    retried with short pauses (`_LOCK_PAUSES`). Handed back to the pool as it was found."""

    KEEP = 4  # databases at once (tests switch between several; a server uses one)

    def __init__(self) -> None:
        self._held: dict[str, tuple[Engine, Connection, int | None]] = {}

    def get(self, url: str) -> Connection:
        engine = get_engine(url)
        found = self._held.get(url)
        if found is not None and found[0] is engine and not found[1].closed:
            return found[1]
        self.drop(url)  # an engine replaced (disposed), or a connection closed
        if len(self._held) >= self.KEEP:
            self.drop(next(iter(self._held)))
        conn = engine.connect()
        busy_ms = None
        if conn.dialect.name == "sqlite":
            conn.execution_options(sqlite_begin="IMMEDIATE")
            raw = conn.connection.driver_connection  # pragmas outside SQLAlchemy's autobegin
            assert raw is not None
            busy_ms = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
            raw.execute("PRAGMA busy_timeout=0")
        self._held[url] = (engine, conn, busy_ms)
        return conn

    def drop_all(self) -> None:
        for url in list(self._held):
            self.drop(url)

    def drop(self, url: str) -> None:
        found = self._held.pop(url, None)
        if found is None:
            return
        _, conn, busy_ms = found
        with contextlib.suppress(Exception):  # a broken connection is discarded by the pool
            if busy_ms is not None and not conn.closed:
                raw = conn.connection.driver_connection
                assert raw is not None
                raw.execute(f"PRAGMA busy_timeout={busy_ms}")
            conn.close()


def _append_reads(conn: Connection, items: list[_PendingRead]) -> None:
    """One transaction for a batch of read entries, on the writer's Core connection: at one
    client this runs once per request, so its fixed cost is the request's (no ORM session)."""
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    attempt = 0
    while not _try_append(conn, items, time.monotonic() >= deadline):
        time.sleep(_LOCK_PAUSES[min(attempt, len(_LOCK_PAUSES) - 1)])
        attempt += 1


def _try_append(conn: Connection, items: list[_PendingRead], last_try: bool) -> bool:
    """Append the batch in one transaction; False when SQLite refused the BEGIN because another
    connection holds the write lock (nothing written: the caller retries after a pause), or
    raises that refusal on the `last_try`."""
    if conn.dialect.name != "sqlite":
        with conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            _insert_reads(conn, items)
        return True
    began = False
    try:
        with conn.begin():
            began = True
            _insert_reads(conn, items)
    except OperationalError as exc:
        # only a refused BEGIN is retried: nothing of the batch was written
        if began or "locked" not in str(exc) or last_try:
            raise
        return False
    return True


def _insert_reads(conn: Connection, items: list[_PendingRead]) -> None:
    last = _LAST_HASH.first(conn)
    prev = last[0] if last else GENESIS
    rows = []
    for it in items:
        row = _row(prev, it.principal, "read", it.resource, it.record_id, it.fields, it.detail, "")
        rows.append(row)
        prev = row["hash"]
    executemany(conn, _INSERT, rows)


_reads = _ReadAuditWriter()


def _pending_read(
    principal: Principal,
    resource: str,
    record_ids: Iterable[Any],
    fields: Iterable[str],
    detail: dict[str, Any] | None,
    url: str | None,
) -> _PendingRead | None:
    ids = [str(i) for i in record_ids]
    if not ids:
        return None
    return _PendingRead(
        url=url or get_settings().effective_database_url,
        principal=principal,
        resource=resource,
        record_id=ids[0] if len(ids) == 1 else None,
        fields=sorted(set(fields)),
        detail={**(detail or {}), **({"records": ids} if len(ids) > 1 else {})},
    )


def record_read(
    principal: Principal,
    resource: str,
    record_ids: Iterable[Any],
    fields: Iterable[str],
    detail: dict[str, Any] | None = None,
    url: str | None = None,
) -> None:
    """Log a read of personal data; returns once the entry is committed (group commit)."""
    item = _pending_read(principal, resource, record_ids, fields, detail, url)
    if item is not None:
        _reads.submit(item)


async def record_read_async(
    principal: Principal,
    resource: str,
    record_ids: Iterable[Any],
    fields: Iterable[str],
    detail: dict[str, Any] | None = None,
    url: str | None = None,
) -> None:
    """`record_read` for async endpoints: the same entry and the same wait for its commit, but
    the request waits on the event loop instead of parking a thread of the pool on it. On
    SQLite the batch is also written on the loop (`_LoopCommit`)."""
    item = _pending_read(principal, resource, record_ids, fields, detail, url)
    if item is None:
        return
    if get_engine(item.url).dialect.name == "sqlite":
        await _loop_commit(asyncio.get_running_loop()).add(item)
    else:
        await _reads.submit_async(item)


# A page of the trail filtered by record reads at most this many ids of it, newest first, then
# says where to go on (`AuditPage.next_before_id`): a record's reads are not indexed (migration
# 0010), and a page of this many cost about 80 ms on SQLite (bench/README, seventh pass).
SCAN_IDS = 500_000
_WINDOW = 50_000


@dataclass
class AuditPage:
    items: list[AuditEntry]
    # the next page's `before_id`: set when entries below may match, even on a short page
    next_before_id: int | None


def _lists_record(session: Session, record_id: str) -> ColumnElement[bool]:
    """A list read's entry names its records in `detail.records`, not in `record_id`."""
    if is_postgres(session):
        return type_coerce(AuditEntry.detail, JSONB).contains({"records": [record_id]})
    listed = func.json_each(AuditEntry.detail, "$.records").table_valued("value")
    return select(listed.c.value).where(listed.c.value == record_id).exists()


def entries(
    session: Session,
    *,
    resource: str | None = None,
    record_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
    scan_ids: int = SCAN_IDS,
) -> AuditPage:
    """The newest entries below `before_id` that match, each once, newest first.

    A record's changes come from the index on resource and record (changes only); everything
    else, a record's reads included (those of list pages too, which name several records), from
    a scan of the trail by id in windows, at most `scan_ids` ids per page. A page is complete
    down to where it stops, so following `next_before_id` lists every match exactly once."""
    top = before_id or (session.execute(select(func.max(AuditEntry.id))).scalar() or 0) + 1
    floor = 1
    if since is not None:
        first = session.execute(select(func.min(AuditEntry.id)).where(AuditEntry.at >= since))
        floor = first.scalar() or top  # nothing appended since: an empty range
    common: list[ColumnElement[bool]] = []
    if resource is not None:
        common.append(AuditEntry.resource == resource)
    if action is not None:
        common.append(AuditEntry.action == action)
    scanned: list[ColumnElement[bool]] | None = common
    indexed: list[ColumnElement[bool]] | None = None
    if record_id is not None:
        # a list page's read names the record in `detail.records` instead
        read_of = or_(AuditEntry.record_id == record_id,
                      and_(AuditEntry.action == "read", AuditEntry.record_id.is_(None),
                           _lists_record(session, record_id)))
        if resource is None:  # no index to use: changes and reads alike are scanned for
            scanned = [*common, read_of]
        else:
            changes = [*common, AuditEntry.record_id == record_id, text(CHANGES_ONLY)]
            indexed = changes if action != "read" else None
            scanned = [*common, AuditEntry.action == "read", read_of] if action in (
                None, "read") else None

    def newest(conds: list[ColumnElement[bool]], lo: int, hi: int, n: int) -> list[AuditEntry]:
        stmt = (select(AuditEntry).where(AuditEntry.id >= lo, AuditEntry.id < hi, *conds)
                .order_by(AuditEntry.id.desc()).limit(n))
        return list(session.execute(stmt).scalars())

    found: list[AuditEntry] = []
    complete_from = floor  # every match in [complete_from, top) has been fetched
    if scanned is not None:
        hi, budget = top, scan_ids
        while hi > floor and len(found) < limit and budget > 0:
            lo = max(floor, hi - min(_WINDOW, budget))
            found += newest(scanned, lo, hi, limit - len(found))
            budget -= hi - lo
            hi = lo
        complete_from = found[-1].id if len(found) == limit else hi
    if indexed is not None:
        changes_found = newest(indexed, floor, top, limit)
        if len(changes_found) == limit:
            complete_from = max(complete_from, changes_found[-1].id)
        found += changes_found
    items = sorted((e for e in found if e.id >= complete_from), key=lambda e: e.id,
                   reverse=True)[:limit]
    if len(items) == limit:
        return AuditPage(items, items[-1].id)
    return AuditPage(items, complete_from if complete_from > floor else None)


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
        rows = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.id > last_id)
                .order_by(AuditEntry.id)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return VerifyResult(True, checked)
        for row in rows:
            if row.prev_hash != prev:
                return VerifyResult(
                    False, checked, row.id, "previous-hash link broken (row removed or reordered)"
                )
            expected = hashlib.sha256(
                _canonical(
                    row.at,
                    row.actor_id,
                    row.actor,
                    row.action,
                    row.resource,
                    row.record_id,
                    list(row.fields or []),
                    dict(row.detail or {}),
                    row.reason or "",
                    row.prev_hash,
                )
            ).hexdigest()
            if expected != row.hash:
                return VerifyResult(
                    False, checked, row.id, "content does not match its hash (row edited)"
                )
            prev = row.hash
            checked += 1
            last_id = row.id
        session.expunge_all()
