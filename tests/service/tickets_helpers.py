"""Seeding and fixtures shared by the ticket tests (imported by each test module)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from accord.core import db as dbmod
from accord.core.settings import reset_settings
from accord.models import Interaction, OutboxEvent
from accord.models.commerce import Order
from accord.models.service import Ticket, TicketEvent, TicketMessage
from accord.service import tickets

API = "/api/v1/tickets"


@pytest.fixture
def files_dir(db: str, tmp_path: Path) -> Iterator[Path]:
    """Attachments go to a fresh directory for the test (and the settings forget it after)."""
    target = tmp_path / "attachments"
    old = os.environ.get("ACCORD_ATTACHMENTS_DIR")
    os.environ["ACCORD_ATTACHMENTS_DIR"] = str(target)
    reset_settings()
    yield target
    if old is None:
        os.environ.pop("ACCORD_ATTACHMENTS_DIR", None)
    else:
        os.environ["ACCORD_ATTACHMENTS_DIR"] = old
    reset_settings()


def customer_ticket(url: str, *, email: str = "ann@example.com", name: str = "Ann Archer",
                    body: str = "My order has not arrived.", channel: str = "email",
                    **extra: Any) -> int:
    """A ticket opened by a customer (as the mail-in and widget paths do)."""
    with dbmod.session_scope(url) as s:
        return tickets.create_ticket(
            s, tickets.system_principal(channel), subject=extra.pop("subject", "Where is it?"),
            channel=channel, body_text=body, requester_email=email, requester_name=name,
            **extra).id


def seed_order(url: str, customer_id: int, number: str = "O-1") -> int:
    with dbmod.session_scope(url) as s:
        order = Order(customer_id=customer_id, number=number, status="paid", currency="EUR",
                      total=Decimal("10.00"), ordered_at=datetime(2026, 1, 5, tzinfo=UTC))
        s.add(order)
        s.flush()
        return order.id


def outbox(url: str, kind: str) -> list[dict[str, Any]]:
    with dbmod.session_scope(url) as s:
        return [e.payload for e in s.scalars(select(OutboxEvent).where(OutboxEvent.type == kind)
                                             .order_by(OutboxEvent.id))]


def event_kinds(url: str, ticket_id: int) -> list[str]:
    with dbmod.session_scope(url) as s:
        return list(s.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id)
                              .order_by(TicketEvent.at, TicketEvent.id)))


def load(url: str, ticket_id: int) -> Ticket:
    with dbmod.session_scope(url) as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        s.expunge(ticket)
        return ticket


def _detached(url: str, model: Any, *where: Any) -> list[Any]:
    """Rows by id, usable after the session closes."""
    with dbmod.session_scope(url) as s:
        rows = list(s.scalars(select(model).where(*where).order_by(model.id)))
        s.expunge_all()
        return rows


def messages(url: str, ticket_id: int) -> list[TicketMessage]:
    return _detached(url, TicketMessage, TicketMessage.ticket_id == ticket_id)


def interactions_of(url: str, customer_id: int) -> list[Interaction]:
    return _detached(url, Interaction, Interaction.customer_id == customer_id)
