"""The omnichannel interaction timeline: every touchpoint, every department, one customer.

Interactions have no owner of their own: they take the record scope of their customer. A
caller sees an interaction when it may read the customer *and* its role's `interactions` grant
covers that customer; it may change one when the `interactions` grant for that action does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import (
    Principal,
)
from accord.core.clock import as_utc, utcnow
from accord.core.events import emit
from accord.core.prepared import Prepared
from accord.core.query import Filter, ListParams, ListSpec, Sort, page_of, paginate
from accord.customers import service as customers
from accord.interactions.schemas import InteractionFields, InteractionOut, InteractionUpdate
from accord.models import Customer, Interaction
from accord.models.customer import CHANNELS
from accord.models.interaction import DEPARTMENTS, DIRECTIONS

RESOURCE = "interactions"
# What a read of an interaction exposes (for the audit trail of personal-data reads).
READ_FIELDS = ("subject", "body", "metadata")
_CMP = frozenset({"eq", "ne", "lt", "lte", "gt", "gte"})


def list_spec() -> ListSpec:
    return ListSpec(
        resource=RESOURCE,
        id_column=Interaction.id,
        filters={
            "id": Filter(Interaction.id, int, frozenset({"eq", "in", "lt", "gt"})),
            "customer_id": Filter(Interaction.customer_id, int, frozenset({"eq", "in"})),
            "channel": Filter(Interaction.channel, choices=CHANNELS),
            "direction": Filter(Interaction.direction, choices=DIRECTIONS),
            "department": Filter(Interaction.department, choices=DEPARTMENTS),
            "source": Filter(Interaction.source, ops=frozenset({"eq", "in", "isnull"})),
            "occurred_at": Filter(Interaction.occurred_at, datetime, _CMP),
            "created_at": Filter(Interaction.created_at, datetime, _CMP),
        },
        sorts={
            "id": Sort(Interaction.id, int),
            "occurred_at": Sort(Interaction.occurred_at, datetime),
            "created_at": Sort(Interaction.created_at, datetime),
        },
        default_sort="-occurred_at",
    )


# --- scope -------------------------------------------------------------------------------------

def customer_for(session: Session, principal: Principal, customer_id: int,
                 action: str = "read") -> Customer:
    return customers.customer_for_child(session, principal, RESOURCE, customer_id, action)


def get_interaction(session: Session, principal: Principal, interaction_id: int,
                    action: str = "read") -> Interaction:
    """404 when missing or out of read scope (no existence oracle), 403 when readable only."""
    return customers.get_child(session, principal, RESOURCE, Interaction, interaction_id, action)


# --- reads -------------------------------------------------------------------------------------

def list_interactions(session: Session, principal: Principal, params: ListParams,
                      customer_id: int | None = None) -> tuple[list[Interaction], str | None]:
    """Across every customer the caller may read, or one customer's timeline."""
    spec = list_spec()
    stmt = customers.child_list_query(session, principal, RESOURCE, Interaction, customer_id)
    rows = list(session.execute(paginate(stmt, spec, params)).scalars())
    return page_of(rows, spec, params)


_I = Interaction.__table__.c
# Built once: only the columns the timeline shows (no metadata JSON, no timestamps to parse).
_TIMELINE = Prepared(
    select(_I.id, _I.occurred_at, _I.channel, _I.direction, _I.department, _I.subject, _I.body)
    .where(_I.customer_id == bindparam("cid"))
    .order_by(_I.occurred_at.desc(), _I.id.desc())
    .limit(bindparam("limit"))
)


def timeline_entries(session: Session, customer_id: int, limit: int) -> list[dict[str, Any]]:
    rows = _TIMELINE.all(session.connection(), {"cid": customer_id, "limit": limit})
    return [{"kind": "interaction", "id": f"i{r[0]}", "at": r[1], "channel": r[2],
             "direction": r[3], "department": r[4], "subject": r[5], "body": r[6],
             "record_id": r[0]} for r in rows]


# --- writes ------------------------------------------------------------------------------------

def create_interaction(session: Session, principal: Principal, customer_id: int,
                       data: InteractionFields) -> Interaction:
    customer = customer_for(session, principal, customer_id, "create")
    row = Interaction(
        customer_id=customer.id, channel=data.channel, direction=data.direction,
        department=data.department,
        occurred_at=as_utc(data.occurred_at) if data.occurred_at else utcnow(),
        subject=data.subject, body=data.body, meta=data.metadata, source=data.source,
        created_by=principal.user_id,
    )
    session.add(row)
    session.flush()
    sent = data.model_dump(exclude_unset=True)
    sent.pop("customer_id", None)
    audit.record(session, principal, "create", RESOURCE, row.id, sent.keys(),
                 {"customer_id": customer.id})
    emit(session, "interaction.created", "interaction", row.id,
         {"customer_id": customer.id, "channel": row.channel, "direction": row.direction,
          "department": row.department, "occurred_at": row.occurred_at.isoformat()},
         principal.user_id)
    return row


def update_interaction(session: Session, principal: Principal, row: Interaction,
                       data: InteractionUpdate) -> Interaction:
    customer_for(session, principal, row.customer_id, "update")
    changed: list[str] = []
    for key, value in data.model_dump(exclude_unset=True).items():
        attr = "meta" if key == "metadata" else key
        if key == "occurred_at":
            value = as_utc(value)
        if getattr(row, attr) != value:
            setattr(row, attr, value)
            changed.append(key)
    if not changed:
        return row
    session.flush()
    audit.record(session, principal, "update", RESOURCE, row.id, changed,
                 {"customer_id": row.customer_id})
    emit(session, "interaction.updated", "interaction", row.id,
         {"customer_id": row.customer_id, "fields": sorted(changed)}, principal.user_id)
    return row


def delete_interaction(session: Session, principal: Principal, row: Interaction) -> None:
    customer_for(session, principal, row.customer_id, "delete")
    audit.record(session, principal, "delete", RESOURCE, row.id, (),
                 {"customer_id": row.customer_id})
    emit(session, "interaction.deleted", "interaction", row.id, {"customer_id": row.customer_id},
         principal.user_id)
    session.delete(row)
    session.flush()


def to_out(row: Interaction) -> InteractionOut:
    return InteractionOut(
        id=row.id, version=row.version, customer_id=row.customer_id, channel=row.channel,
        direction=row.direction, department=row.department, occurred_at=row.occurred_at,
        subject=row.subject, body=row.body, metadata=dict(row.meta or {}), source=row.source,
        created_by=row.created_by, created_at=row.created_at, updated_at=row.updated_at)
