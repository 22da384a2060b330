"""Collision warning: two agents on one ticket each see the other (viewing or replying), a
stale presence drops out, the upsert keeps one row per (ticket, agent) and is safe when two
sessions race to insert it."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from accord.core import db as dbmod
from accord.core.clock import utcnow
from accord.models.service import TicketPresence
from accord.service import presence, tickets
from tests.web.seed import make_user


def _setup(session) -> tuple[int, object, object]:
    theo = make_user(session, "support", "theo@example.com", "Theo Agent")
    una = make_user(session, "support", "una@example.com", "Una Other")
    t = tickets.create_ticket(session, tickets.system_principal("email"), subject="Shared",
                              channel="email", body_text="Help", requester_email="a@example.com")
    return t.id, theo, una


def test_two_agents_see_each_other(session):
    tid, theo, una = _setup(session)
    presence.touch(session, theo, tid)
    assert presence.others(session, tid, theo.user_id) == []
    presence.touch(session, una, tid, composing=True)
    seen_by_theo = presence.others(session, tid, theo.user_id)
    assert [(p.name, p.first_name, p.composing) for p in seen_by_theo] == [
        ("Una Other", "Una", True)]
    assert [(p.name, p.composing) for p in presence.others(session, tid, una.user_id)] == [
        ("Theo Agent", False)]
    presence.touch(session, una, tid, composing=False)  # the same row, updated
    assert session.scalar(select(func.count()).select_from(TicketPresence)) == 2
    assert presence.others(session, tid, theo.user_id)[0].composing is False


def test_stale_presence_expires_and_is_purged(session):
    tid, theo, una = _setup(session)
    now = utcnow()
    presence.touch(session, una, tid, at=now - timedelta(seconds=61))
    assert presence.others(session, tid, theo.user_id, now=now) == []
    assert len(presence.others(session, tid, theo.user_id, within=timedelta(minutes=2),
                               now=now)) == 1
    presence.touch(session, theo, tid, at=now)
    assert presence.purge(session, older_than=timedelta(seconds=30), now=now) == 1
    presence.leave(session, theo, tid)
    assert session.scalar(select(func.count()).select_from(TicketPresence)) == 0


def test_concurrent_touches_keep_one_row(db):
    with dbmod.session_scope(db) as s:
        tid, theo, _ = _setup(s)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def touch() -> None:
        try:
            barrier.wait(timeout=10)
            with dbmod.session_scope(db) as s:
                presence.touch(s, theo, tid)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=touch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    with dbmod.session_scope(db) as s:
        assert s.scalar(select(func.count()).select_from(TicketPresence)) == 1
