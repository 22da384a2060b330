"""Domain events written to the transactional outbox in the same transaction as the change."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.orm import Session

from accord.models import OutboxEvent


def emit(
    session: Session,
    type: str,
    aggregate: str,
    aggregate_id: Any,
    payload: dict[str, Any] | None = None,
    actor_id: int | None = None,
) -> OutboxEvent:
    """Record a domain event; it becomes visible to consumers only if the caller commits."""
    event = OutboxEvent(
        event_id=str(uuid.uuid4()),
        type=type,
        aggregate=aggregate,
        aggregate_id=str(aggregate_id),
        payload=json.loads(json.dumps(payload or {}, default=str)),
        actor_id=actor_id,
    )
    session.add(event)
    return event
