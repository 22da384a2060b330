"""Admin-defined, typed custom fields on customers (text, number, date, choice)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, event, exists, select
from sqlalchemy.orm import Session, SessionTransaction

from accord.access import audit
from accord.access.policy import Principal, can, can_see_sensitive_custom
from accord.access.service import require
from accord.core.errors import Conflict, NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.query import parse_value
from accord.customers.schemas import CustomFieldIn, CustomFieldUpdate
from accord.models import Customer, CustomFieldDefinition, CustomFieldValue

NUMBER_LIMIT = Decimal(10) ** 18
_COLUMN = {
    "text": "value_text",
    "choice": "value_text",
    "number": "value_number",
    "date": "value_date",
}


_CACHE_KEY = "accord.custom_field_definitions"


def definitions(session: Session, entity: str = "customer") -> list[CustomFieldDefinition]:
    """Memoised for the unit of work: one request asks for them several times (spec, values,
    360 view); a change through this module forgets the memo."""
    memo = session.info.setdefault(_CACHE_KEY, {})
    if entity not in memo:
        memo[entity] = list(
            session.execute(
                select(CustomFieldDefinition)
                .where(CustomFieldDefinition.entity == entity)
                .order_by(CustomFieldDefinition.id)
            ).scalars()
        )
    return memo[entity]


def _forget(session: Session) -> None:
    session.info.pop(_CACHE_KEY, None)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        _forget(session)


def visible_definitions(session: Session, principal: Principal) -> list[CustomFieldDefinition]:
    see = can_see_sensitive_custom(principal)
    return [d for d in definitions(session) if see or not d.sensitive]


def list_fields(session: Session, principal: Principal) -> list[CustomFieldDefinition]:
    require(principal, "custom_fields", "read")
    return visible_definitions(session, principal)


def get_field(session: Session, principal: Principal, field_id: int) -> CustomFieldDefinition:
    require(principal, "custom_fields", "read")
    field = session.get(CustomFieldDefinition, field_id)
    if field is None or (field.sensitive and not can_see_sensitive_custom(principal)):
        raise NotFound(f"custom field {field_id} does not exist")
    return field


def create_field(
    session: Session, principal: Principal, data: CustomFieldIn
) -> CustomFieldDefinition:
    require(principal, "custom_fields", "create")
    exists_already = session.execute(
        select(CustomFieldDefinition.id).where(
            CustomFieldDefinition.entity == "customer", CustomFieldDefinition.key == data.key
        )
    ).first()
    if exists_already:
        raise Conflict(f"a custom field with key {data.key!r} already exists", field="key")
    field = CustomFieldDefinition(entity="customer", **data.model_dump())
    session.add(field)
    _forget(session)
    session.flush()
    audit.record(session, principal, "create", "custom_fields", field.id, list(data.model_dump()))
    emit(
        session,
        "custom_field.created",
        "custom_field",
        field.id,
        {"key": field.key},
        principal.user_id,
    )
    return field


def update_field(
    session: Session, principal: Principal, field: CustomFieldDefinition, data: CustomFieldUpdate
) -> CustomFieldDefinition:
    require(principal, "custom_fields", "update")
    changes = data.model_dump(exclude_unset=True)
    if "choices" in changes and field.type != "choice" and changes["choices"]:
        raise ValidationProblem("only choice fields take choices", field="choices")
    for key, value in changes.items():
        setattr(field, key, value)
    _forget(session)
    session.flush()
    audit.record(session, principal, "update", "custom_fields", field.id, list(changes))
    return field


def delete_field(session: Session, principal: Principal, field: CustomFieldDefinition) -> None:
    require(principal, "custom_fields", "delete")
    audit.record(session, principal, "delete", "custom_fields", field.id, [field.key])
    session.delete(field)
    _forget(session)
    session.flush()


def coerce(defn: CustomFieldDefinition, raw: Any, where: str) -> Any:
    """A value of the field's type, or a 422 naming `custom.<key>`."""
    try:
        if defn.type == "text":
            if not isinstance(raw, str) or len(raw) > 500:
                raise ValueError("must be text of at most 500 characters")
            return raw
        if defn.type == "choice":
            if raw not in defn.choices:
                raise ValueError(f"must be one of {', '.join(defn.choices)}")
            return raw
        if defn.type == "number":
            if isinstance(raw, bool) or not isinstance(raw, int | float | str):
                raise ValueError("must be a number")
            value = Decimal(str(raw))
            if not value.is_finite():
                raise ValueError("must be a finite number")
            if abs(value) >= NUMBER_LIMIT:  # what value_number NUMERIC(24, 6) holds
                raise ValueError(f"must be less than {NUMBER_LIMIT:,} in magnitude")
            return value
        if defn.type == "date":
            return raw if isinstance(raw, date) else date.fromisoformat(str(raw))
    except InvalidOperation:
        raise ValidationProblem(f"{where}: must be a number", field=where) from None
    except (ValueError, TypeError) as exc:
        raise ValidationProblem(f"{where}: {exc}", field=where) from None
    raise AssertionError(defn.type)


def set_values(
    session: Session,
    principal: Principal,
    customer: Customer,
    values: dict[str, Any],
    *,
    creating: bool,
) -> list[str]:
    """Validate and store custom values; `None` clears one. Returns the keys changed."""
    defs = {d.key: d for d in definitions(session)}
    see_sensitive = can_see_sensitive_custom(principal)
    for key in values:
        if key not in defs or (defs[key].sensitive and not see_sensitive):
            raise ValidationProblem(f"unknown custom field {key!r}", field=f"custom.{key}")
    if creating:
        for key, defn in defs.items():
            if defn.required and values.get(key) is None:
                raise ValidationProblem(f"custom field {key!r} is required", field=f"custom.{key}")
    existing = {
        v.field_id: v
        for v in session.execute(
            select(CustomFieldValue).where(CustomFieldValue.record_id == customer.id)
        ).scalars()
    }
    changed = []
    for key, raw in values.items():
        defn = defs[key]
        row = existing.get(defn.id)
        if raw is None:
            if defn.required:
                raise ValidationProblem(f"custom field {key!r} is required", field=f"custom.{key}")
            if row is not None:
                session.delete(row)
                changed.append(key)
            continue
        value = coerce(defn, raw, f"custom.{key}")
        if row is None:
            row = CustomFieldValue(field_id=defn.id, record_id=customer.id)
            session.add(row)
        setattr(row, _COLUMN[defn.type], value)
        changed.append(key)
    return changed


def values_for(
    session: Session, principal: Principal, customer_ids: list[int]
) -> dict[int, dict[str, Any]]:
    defs = {d.id: d for d in visible_definitions(session, principal)}
    out: dict[int, dict[str, Any]] = {cid: {} for cid in customer_ids}
    if not defs or not customer_ids:
        return out
    rows = session.execute(
        select(CustomFieldValue).where(
            CustomFieldValue.record_id.in_(customer_ids), CustomFieldValue.field_id.in_(list(defs))
        )
    )
    for row in rows.scalars():
        defn = defs[row.field_id]
        value = getattr(row, _COLUMN[defn.type])
        if defn.type == "number" and value is not None:
            value = value.normalize()
            value = int(value) if value == value.to_integral_value() else float(value)
        out[row.record_id][defn.key] = value
    return out


def filter_factory(session: Session, principal: Principal):
    """A `ListSpec.dynamic` resolving `cf.<key>[__op]=value` into an indexed EXISTS."""
    defs = (
        {d.key: d for d in visible_definitions(session, principal)}
        if can(principal, "custom_fields", "read")
        else {}
    )

    def build(key: str, op: str, raw: str) -> ColumnElement[bool] | None:
        defn = defs.get(key)
        if defn is None:
            return None
        kind = {"text": str, "choice": str, "number": Decimal, "date": date}[defn.type]
        col = getattr(CustomFieldValue, _COLUMN[defn.type])
        name = f"cf.{key}"
        ops = {"eq", "ne", "in", "isnull"} | (
            {"lt", "lte", "gt", "gte"} if kind is not str else {"prefix"}
        )
        if op not in ops:
            raise ValidationProblem(f"operator {op!r} is not supported on {name!r}", field=name)
        base = exists().where(
            CustomFieldValue.record_id == Customer.id, CustomFieldValue.field_id == defn.id
        )
        if op == "isnull":
            present = base
            return ~present if parse_value(raw, bool, name) else present
        if op == "in":
            values = [coerce(defn, parse_value(v, kind, name), name) for v in raw.split(",") if v]
            return base.where(col.in_(values))
        value = coerce(defn, parse_value(raw, kind, name), name)
        cond = {
            "eq": col == value,
            "ne": col != value,
            "lt": col < value,
            "lte": col <= value,
            "gt": col > value,
            "gte": col >= value,
            "prefix": col.startswith(value, autoescape=True) if kind is str else None,
        }[op]
        return base.where(cond)

    return build
