"""The omnichannel interaction timeline: every touchpoint, every department, one customer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.models import Interaction


def timeline_entries(session: Session, customer_id: int, limit: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Interaction).where(Interaction.customer_id == customer_id)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)).scalars()
    return [{"kind": "interaction", "id": f"i{r.id}", "at": r.occurred_at, "channel": r.channel,
             "direction": r.direction, "department": r.department, "subject": r.subject,
             "body": r.body, "record_id": r.id} for r in rows]
