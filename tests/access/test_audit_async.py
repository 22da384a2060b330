"""Read audit entries awaited on the event loop (`audit.record_read_async`, used by the async
customer read endpoints): the same entries, committed before the call returns, in the one chain
the synchronous callers append to; a failed commit reaches the waiting request."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import select

from accord.access import audit
from accord.core.db import session_scope
from accord.models import AuditEntry


def _reads(db: str) -> list[AuditEntry]:
    with session_scope(db, write=False) as s:
        rows = list(s.execute(
            select(AuditEntry).where(AuditEntry.action == "read").order_by(AuditEntry.id)
        ).scalars())
        s.expunge_all()
        return rows


def test_async_reads_are_durable_on_return_and_share_the_chain(db, admin):
    seen_on_return: list[bool] = []

    async def read(i: int) -> None:
        await audit.record_read_async(
            admin.principal, "customers", [i], ["last_name", "first_name"], {"via": "test"}
        )
        # committed before the call returned: another connection sees it at once
        seen_on_return.append(any(e.record_id == str(i) for e in _reads(db)))

    async def main() -> None:
        await asyncio.gather(*(read(i) for i in range(12)))

    def sync_reads() -> None:  # a synchronous reader appending to the same chain meanwhile
        for i in range(100, 106):
            audit.record_read(admin.principal, "customers", [i], ["email"], {"via": "sync"})

    worker = threading.Thread(target=sync_reads)
    worker.start()
    asyncio.run(main())
    worker.join()

    assert seen_on_return == [True] * 12
    rows = _reads(db)
    assert sorted(int(e.record_id) for e in rows) == [*range(12), *range(100, 106)]
    for e in rows:
        assert e.actor_id == admin.id and e.resource == "customers"
        if e.detail["via"] == "test":
            assert e.fields == ["first_name", "last_name"]
    with session_scope(db, write=False) as s:
        result = audit.verify(s)
        total = len(list(s.execute(select(AuditEntry.id)).scalars()))
    assert result.ok and result.checked == total >= len(rows)


def test_reads_from_several_event_loops_are_each_woken(db, admin):
    """One batch may hold the waits of several event loops (threads, server processes' loops):
    each loop is woken for its own requests, a request given up on does not stop the rest."""
    results: dict[int, list[bool]] = {}

    async def reads(k: int) -> None:
        async def one(i: int) -> bool:
            await audit.record_read_async(admin.principal, "customers", [k * 100 + i], ["email"])
            return True

        abandoned = asyncio.ensure_future(one(99))
        await asyncio.sleep(0)
        abandoned.cancel()  # its entry still lands; nobody waits for it any more
        results[k] = list(await asyncio.gather(*(one(i) for i in range(8))))

    threads = [threading.Thread(target=lambda k=k: asyncio.run(reads(k))) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {k: [True] * 8 for k in (1, 2, 3)}
    landed = {int(e.record_id) for e in _reads(db)}
    assert {k * 100 + i for k in (1, 2, 3) for i in range(8)} <= landed
    with session_scope(db, write=False) as s:
        assert audit.verify(s).ok


def test_async_read_with_several_records_lists_them(db, admin):
    asyncio.run(audit.record_read_async(admin.principal, "customers", [3, 1, 2], ["email"],
                                        {"via": "api.list"}))
    (entry,) = _reads(db)
    assert entry.record_id is None
    assert entry.detail == {"via": "api.list", "records": ["3", "1", "2"]}


def test_async_read_of_nothing_writes_nothing(db, admin):
    asyncio.run(audit.record_read_async(admin.principal, "customers", [], ["email"]))
    assert _reads(db) == []


def test_a_failed_audit_commit_fails_the_async_read(db, admin, monkeypatch):
    """The failure reaches the waiting request, the batch's transaction leaves nothing, and
    the writer carries on with the next read on a fresh connection."""
    def broken(conn, items: list) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit, "_insert_reads", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        asyncio.run(audit.record_read_async(admin.principal, "customers", [1], ["email"]))
    monkeypatch.undo()
    assert _reads(db) == []
    asyncio.run(audit.record_read_async(admin.principal, "customers", [2], ["email"]))
    assert [e.record_id for e in _reads(db)] == ["2"]
    with session_scope(db, write=False) as s:
        assert audit.verify(s).ok


def test_a_read_waits_for_the_append_lock_and_then_commits(db, admin):
    """Another writer (e.g. a second server process) holds the audit's append lock: the read's
    entry waits for it, then lands in the chain; the pooled connection keeps its busy timeout."""
    import time

    from sqlalchemy import text

    from accord.core.db import get_engine

    engine = get_engine(db)
    done = threading.Event()

    def read() -> None:
        audit.record_read(admin.principal, "customers", [7], ["email"], {"via": "test"})
        done.set()

    with engine.connect() as holder:
        if engine.dialect.name == "sqlite":
            holder.execution_options(sqlite_begin="IMMEDIATE")  # the write lock from BEGIN
        holder.begin()
        if engine.dialect.name == "postgresql":
            holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": audit._PG_LOCK})
        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.3)
        held_back = not done.is_set()
        holder.rollback()
    reader.join(15)
    assert held_back and done.is_set()
    assert [e.record_id for e in _reads(db)] == ["7"]
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:  # every pooled connection is back at the configured wait
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    with session_scope(db, write=False) as s:
        assert audit.verify(s).ok


def test_reads_waiting_together_share_one_transaction(db, admin, monkeypatch):
    """On SQLite the entries of reads that reach the audit in the same turn of the event loop
    are written in one transaction, on the loop's own thread (no hand-off to a writer thread);
    on PostgreSQL the writer thread takes them."""
    from accord.core.db import get_engine

    batches: list[tuple[int, str]] = []
    insert = audit._insert_reads

    def counted(conn, items: list) -> None:
        batches.append((len(items), threading.current_thread().name))
        insert(conn, items)

    monkeypatch.setattr(audit, "_insert_reads", counted)

    async def main() -> str:
        await asyncio.gather(*(
            audit.record_read_async(admin.principal, "customers", [i], ["email"])
            for i in range(16)
        ))
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert sum(n for n, _ in batches) == 16
    if get_engine(db).dialect.name == "sqlite":
        assert batches == [(16, loop_thread)]
    else:
        assert {name for _, name in batches} == {"accord-audit-reads"}
    assert sorted(int(e.record_id) for e in _reads(db)) == list(range(16))
    with session_scope(db, write=False) as s:
        assert audit.verify(s).ok


def test_reads_arriving_turn_after_turn_still_share_a_transaction(db, admin, monkeypatch):
    """Reads reaching the audit in successive turns of the loop (requests whose bytes arrive
    one poll apart) join the waiting batch; the commit comes with the first turn that brings
    none. On PostgreSQL the writer thread takes them (checked above)."""
    from accord.core.db import get_engine

    sizes: list[int] = []
    insert = audit._insert_reads
    monkeypatch.setattr(audit, "_insert_reads",
                        lambda conn, items: (sizes.append(len(items)), insert(conn, items)))

    async def read(i: int) -> None:
        for _ in range(i):  # one more turn of the loop for each
            await asyncio.sleep(0)
        await audit.record_read_async(admin.principal, "customers", [i], ["email"])

    async def main() -> None:
        await asyncio.gather(*(read(i) for i in range(6)))
        await read(0)  # alone: nothing else arrives, so it commits at once

    asyncio.run(main())
    assert sum(sizes) == 7
    if get_engine(db).dialect.name == "sqlite":
        assert sizes == [6, 1]
    assert sorted(int(e.record_id) for e in _reads(db)) == [0, 0, 1, 2, 3, 4, 5]


def test_a_taken_write_lock_holds_the_read_but_not_the_event_loop(db, admin):
    """While another connection holds the append lock, the read waits for it, and the loop
    that waits goes on serving other work meanwhile (on SQLite the batch is retried after a
    pause instead of blocking in the busy handler)."""
    import time

    from sqlalchemy import text

    from accord.core.db import get_engine

    engine = get_engine(db)
    state = {"ticks": 0, "landed_at": 0.0}

    async def main() -> None:
        async def ticker() -> None:
            while not state["landed_at"]:
                await asyncio.sleep(0.01)
                state["ticks"] += 1

        async def read() -> None:
            await audit.record_read_async(admin.principal, "customers", [5], ["email"])
            state["landed_at"] = time.monotonic()

        await asyncio.gather(ticker(), read())

    with engine.connect() as holder:
        if engine.dialect.name == "sqlite":
            holder.execution_options(sqlite_begin="IMMEDIATE")
        holder.begin()
        if engine.dialect.name == "postgresql":
            holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": audit._PG_LOCK})
        runner = threading.Thread(target=lambda: asyncio.run(main()))
        runner.start()
        time.sleep(0.4)
        released_at = time.monotonic()
        ticks_while_held = state["ticks"]
        holder.rollback()
    runner.join(15)
    assert state["landed_at"] >= released_at  # the entry waited for the lock
    assert ticks_while_held >= 10  # the loop ran on (0.4 s of 10 ms sleeps: about 40)
    assert [e.record_id for e in _reads(db)] == ["5"]
    with session_scope(db, write=False) as s:
        assert audit.verify(s).ok


def test_a_closed_event_loop_hands_its_connection_back(db, admin):
    from accord.core.db import get_engine

    async def read(i: int) -> asyncio.AbstractEventLoop:
        await audit.record_read_async(admin.principal, "customers", [i], ["email"])
        return asyncio.get_running_loop()

    first = asyncio.run(read(1))
    second = asyncio.run(read(2))  # registering this loop sweeps the closed one
    engine = get_engine(db)
    if engine.dialect.name == "sqlite":
        assert first not in audit._loop_commits and second in audit._loop_commits
        with engine.connect() as conn:  # the pooled connection is back at the configured wait
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    else:  # PostgreSQL's entries go through the writer thread: no loop holds a connection
        assert first not in audit._loop_commits and second not in audit._loop_commits
    assert [e.record_id for e in _reads(db)] == ["1", "2"]
