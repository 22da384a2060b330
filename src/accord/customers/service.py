"""Golden customer profiles: the one write path (policy, audit, events) and the 360° view."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session, selectinload

from accord.access import audit
from accord.access.policy import (
    SCOPE_RANK,
    Principal,
    can,
    can_see_sensitive_custom,
    hidden_fields,
    record_in_scope,
    scope_clause,
    scope_for,
    scope_shape,
)
from accord.access.service import check_reassignment, require
from accord.core.clock import utcnow
from accord.core.contact import (
    InvalidValue,
    fold,
    looks_like_phone,
    name_keys,
    normalize_email,
    normalize_phone,
)
from accord.core.errors import Forbidden, NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.prepared import Prepared
from accord.core.query import Filter, ListParams, ListSpec, Sort, page_of, paginate
from accord.core.settings import get_settings
from accord.customers import custom_fields
from accord.customers.schemas import (
    AddressOut,
    AssignIn,
    CustomerCreate,
    CustomerOut,
    CustomerUpdate,
    EmailOut,
    PhoneOut,
)
from accord.models import (
    Account,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    CustomFieldDefinition,
    CustomFieldValue,
    LifecycleChange,
    User,
)
from accord.models.customer import CHANNELS, LIFECYCLE_STAGES, VALUE_TIERS

RESOURCE = "customers"
# List filters, sorts and the search are written on the tables' columns (the same SQL as the
# mapped attributes), so a list query stays a plain Core statement without an ORM compile step.
_C = Customer.__table__.c
_EMAIL = CustomerEmail.__table__.c
_PHONE = CustomerPhone.__table__.c
SENSITIVE = ("date_of_birth", "national_id", "notes")
# Which personal fields a profile read exposes (for the audit trail of reads).
PERSONAL_FIELDS = (
    "first_name",
    "last_name",
    "title",
    "gender",
    "emails",
    "phones",
    "addresses",
    *SENSITIVE,
)


def _emails(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    try:
        return [_normalized_email(v) for v in values]
    except InvalidValue as exc:
        raise ValidationProblem(f"invalid e-mail address: {exc}", field="email") from None


def _phones(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    try:
        return [_e164(v, get_settings().default_region) for v in values]
    except InvalidValue as exc:
        raise ValidationProblem(str(exc), field="phone") from None


@functools.lru_cache(maxsize=1024)
def _normalized_email(value: str) -> str:
    """`normalize_email`, remembered like `_e164`: the filter's check and the prepared lookup
    both normalise the searched address."""
    return normalize_email(value)


@functools.lru_cache(maxsize=1024)
def _e164(value: str, region: str | None) -> str:
    """`normalize_phone`, remembered: a search's filter and its prepared lookup both need the
    number (~20 µs each time); a refusal is not cached and raises again."""
    return normalize_phone(value, region)


def _email_filter(op: str, normalized: list[str]) -> ColumnElement[bool]:
    return _with_email(normalized)


def _phone_filter(op: str, normalized: list[str]) -> ColumnElement[bool]:
    return _with_phone(normalized)


# Contact-point lookups are written as `id IN (indexed subquery)`, not a correlated EXISTS:
# with `ORDER BY id LIMIT n` SQLite would otherwise walk the whole customers table.
# One value (the usual search) compares with `=`: the same plan, without SQLAlchemy rendering an
# expanding IN list into the cached statement on every execution.
def _with_email(normalized: list[str]) -> ColumnElement[bool]:
    col = _EMAIL.email_normalized
    match = col == normalized[0] if len(normalized) == 1 else col.in_(normalized)
    return _C.id.in_(select(_EMAIL.customer_id).where(match))


def _with_phone(normalized: list[str]) -> ColumnElement[bool]:
    match = _PHONE.e164 == normalized[0] if len(normalized) == 1 else _PHONE.e164.in_(normalized)
    return _C.id.in_(select(_PHONE.customer_id).where(match))


def _name_filter(op: str, value: Any) -> ColumnElement[bool]:
    key = fold(str(value))
    return or_(
        _C.name_key.startswith(key, autoescape=True),
        _C.name_key_alt.startswith(key, autoescape=True),
    )


_CMP = frozenset({"eq", "ne", "lt", "lte", "gt", "gte"})


_FILTERS = {
    "id": Filter(_C.id, int, frozenset({"eq", "in", "lt", "gt"})),
    "lifecycle_stage": Filter(_C.lifecycle_stage, choices=LIFECYCLE_STAGES),
    "value_tier": Filter(
        _C.value_tier,
        choices=VALUE_TIERS,
        ops=frozenset({"eq", "ne", "in", "isnull"}),
    ),
    "preferred_channel": Filter(_C.preferred_channel, choices=CHANNELS),
    "preferred_language": Filter(_C.preferred_language),
    "country": Filter(_C.country, ops=frozenset({"eq", "ne", "in", "isnull"})),
    "account_id": Filter(_C.account_id, int, frozenset({"eq", "in", "isnull"})),
    "owner_id": Filter(_C.owner_id, int, frozenset({"eq", "in", "isnull"})),
    "team_id": Filter(_C.team_id, int, frozenset({"eq", "in", "isnull"})),
    "created_at": Filter(_C.created_at, datetime, _CMP),
    "updated_at": Filter(_C.updated_at, datetime, _CMP),
    "date_of_birth": Filter(_C.date_of_birth, date, _CMP | {"isnull"}),
    "national_id": Filter(_C.national_id, str, frozenset({"eq"})),
    "name": Filter(_name_filter, str, frozenset({"eq", "prefix"})),
    "email": Filter(_email_filter, str, frozenset({"eq", "in"}), check=_emails),
    "phone": Filter(_phone_filter, str, frozenset({"eq", "in"}), check=_phones),
}
_SORTS = {
    "id": Sort(_C.id, int),
    "created_at": Sort(_C.created_at, datetime),
    "updated_at": Sort(_C.updated_at, datetime),
    "name": Sort(_C.name_key, str),
    "lifecycle_stage": Sort(_C.lifecycle_stage, str),
    "date_of_birth": Sort(_C.date_of_birth, date),
}


def list_spec(session: Session, principal: Principal) -> ListSpec:
    """Static filters and sorts (built once); custom-field filters resolve their definitions
    only when a `cf.` parameter asks for them."""
    return ListSpec(
        resource=RESOURCE,
        id_column=_C.id,
        filters=_FILTERS,
        sorts=_SORTS,
        default_sort="-id",
        dynamic=_custom_filters(session, principal),
    )


def _custom_filters(
    session: Session, principal: Principal
) -> Callable[[str, str, str], ColumnElement[bool] | None]:
    built: list[Callable[[str, str, str], ColumnElement[bool] | None]] = []

    def build(key: str, op: str, raw: str) -> ColumnElement[bool] | None:
        if not built:
            built.append(custom_fields.filter_factory(session, principal))
        return built[0](key, op, raw)

    return build


def hidden(principal: Principal) -> set[str]:
    return hidden_fields(principal, RESOURCE)


def search_clause(q: str) -> ColumnElement[bool]:
    """Free-text search: an e-mail, a phone number (normalised), an id, or a name prefix."""
    text = q.strip()
    if "@" in text:
        try:
            email = normalize_email(text)
        except InvalidValue:
            email = text.lower()
        return _with_email([email])
    clauses = []
    if text.isdigit() and len(text) <= 18:
        clauses.append(_C.id == int(text))
    if looks_like_phone(text):
        try:
            e164 = normalize_phone(text, get_settings().default_region)
            clauses.append(_with_phone([e164]))
        except InvalidValue:
            pass
    if not clauses or not text.isdigit():
        clauses.append(_name_filter("prefix", text))
    return or_(*clauses)


def visible_query(principal: Principal, action: str = "read") -> Select[Any]:
    scope = scope_for(principal, RESOURCE, action)
    if scope is None:
        raise Forbidden(f"your role may not {action} customers")
    return select(Customer).where(
        scope_clause(principal, scope, Customer.owner_id, Customer.team_id)
    )


def list_customers(
    session: Session, principal: Principal, params: ListParams
) -> tuple[list[Customer], str | None]:
    spec = list_spec(session, principal)
    # merged customers live on in their survivor: hidden from lists and search
    stmt = visible_query(principal).where(Customer.merged_into_id.is_(None))
    if params.q:
        stmt = stmt.where(search_clause(params.q))
    stmt = paginate(stmt, spec, params).options(
        selectinload(Customer.emails),
        selectinload(Customer.phones),
        selectinload(Customer.addresses),
    )
    rows = list(session.execute(stmt).scalars())
    return page_of(rows, spec, params)


def in_scope(principal: Principal, customer: Customer, action: str) -> bool:
    return record_in_scope(
        principal, scope_for(principal, RESOURCE, action), customer.owner_id, customer.team_id
    )


def get_customer(
    session: Session, principal: Principal, customer_id: int, action: str = "read"
) -> Customer:
    """404 when the caller may not read it (no existence oracle), 403 when it may read, not act."""
    customer = session.get(Customer, customer_id)
    if customer is None or not in_scope(principal, customer, "read"):
        raise NotFound(f"customer {customer_id} does not exist")
    if action != "read" and not in_scope(principal, customer, action):
        raise Forbidden(f"your role may not {action} this customer")
    if customer.merged_into_id is not None:
        raise _merged(session, customer_id, action)
    return customer


def _merged(session: Session, customer_id: int, action: str, suffix: str = "") -> Exception:
    from accord.integration.stewardship import merged_problem

    return merged_problem(session, customer_id, action, suffix)


def _display_name(c: Customer) -> str:
    return " ".join(p for p in (c.first_name, c.last_name) if p) or f"Customer {c.id}"


def _set_names(c: Customer) -> None:
    c.display_name = _display_name(c)
    c.name_key, c.name_key_alt = name_keys(c.first_name or "", c.last_name or "")


def _replace_contact_points(c: Customer, data: CustomerCreate | CustomerUpdate) -> list[str]:
    changed = []
    region = c.country or get_settings().default_region
    if data.emails is not None:
        c.emails = [
            CustomerEmail(
                email=e.email,
                email_normalized=normalize_email(e.email),
                kind=e.kind,
                is_primary=e.is_primary or (i == 0 and not any(x.is_primary for x in data.emails)),
                verified=e.verified,
            )
            for i, e in enumerate(data.emails)
        ]
        changed.append("emails")
    if data.phones is not None:
        phones = []
        for i, p in enumerate(data.phones):
            try:
                e164 = normalize_phone(p.phone, region)
            except InvalidValue as exc:
                raise ValidationProblem(
                    f"phones.{i}.phone: {exc}", field=f"phones.{i}.phone"
                ) from None
            phones.append(
                CustomerPhone(
                    phone=p.phone,
                    e164=e164,
                    kind=p.kind,
                    is_primary=p.is_primary
                    or (i == 0 and not any(x.is_primary for x in data.phones)),
                )
            )
        c.phones = phones
        changed.append("phones")
    if data.addresses is not None:
        c.addresses = [
            CustomerAddress(
                **a.model_dump(exclude={"is_primary"}),
                is_primary=a.is_primary
                or (i == 0 and not any(x.is_primary for x in data.addresses)),
            )
            for i, a in enumerate(data.addresses)
        ]
        changed.append("addresses")
    return changed


def _check_refs(session: Session, principal: Principal, account_id: int | None) -> None:
    if account_id is None:
        return
    account = session.get(Account, account_id)
    scope = scope_for(principal, "accounts", "read")
    if account is None or not record_in_scope(principal, scope, account.owner_id, account.team_id):
        raise ValidationProblem(f"account {account_id} does not exist", field="account_id")


def _check_sensitive_write(principal: Principal, fields: set[str]) -> None:
    blocked = fields & hidden(principal)
    if blocked:
        name = sorted(blocked)[0]
        raise ValidationProblem(f"unknown field {name!r}", field=name)


def create_customer(session: Session, principal: Principal, data: CustomerCreate) -> Customer:
    require(principal, RESOURCE, "create")
    sent = data.model_dump(exclude_unset=True)
    _check_sensitive_write(principal, set(sent))
    _check_refs(session, principal, data.account_id)
    fields = data.model_dump(exclude={"emails", "phones", "addresses", "custom"})
    customer = Customer(
        **fields,
        owner_id=principal.user_id,
        team_id=principal.team_id,
        display_name="",
        name_key="",
        name_key_alt="",
    )
    _set_names(customer)
    _replace_contact_points(customer, data)
    session.add(customer)
    session.flush()
    session.add(
        LifecycleChange(
            customer_id=customer.id,
            from_stage=None,
            to_stage=customer.lifecycle_stage,
            changed_by=principal.user_id,
            reason="created",
        )
    )
    custom_keys = custom_fields.set_values(session, principal, customer, data.custom, creating=True)
    session.flush()
    audit.record(
        session,
        principal,
        "create",
        RESOURCE,
        customer.id,
        [*sent.keys(), *(f"custom.{k}" for k in custom_keys)],
    )
    emit(
        session,
        "customer.created",
        "customer",
        customer.id,
        {"lifecycle_stage": customer.lifecycle_stage, "owner_id": customer.owner_id},
        principal.user_id,
    )
    return customer


def update_customer(
    session: Session, principal: Principal, customer: Customer, data: CustomerUpdate
) -> Customer:
    if not in_scope(principal, customer, "update"):
        raise Forbidden("your role may not update this customer")
    sent = data.model_dump(exclude_unset=True)
    sent.pop("stage_reason", None)
    _check_sensitive_write(principal, set(sent))
    for name in ("first_name", "last_name"):
        if name in sent and sent[name] is None:
            raise ValidationProblem(f"{name} cannot be null", field=name)
    if "account_id" in sent:
        _check_refs(session, principal, data.account_id)
    if "lifecycle_stage" in sent and sent["lifecycle_stage"] is None:
        raise ValidationProblem("lifecycle_stage cannot be null", field="lifecycle_stage")
    old_stage = customer.lifecycle_stage
    changed: list[str] = []
    # No autoflush while changing: replacing a collection loads the old one, and an autoflush
    # there would write the scalar changes early, so one PATCH would bump the version twice.
    with session.no_autoflush:
        for key, value in sent.items():
            if key in ("emails", "phones", "addresses", "custom"):
                continue
            if getattr(customer, key) != value:
                setattr(customer, key, value)
                changed.append(key)
        if not (customer.first_name or customer.last_name):
            raise ValidationProblem("a customer needs a first or last name", field="first_name")
        if {"first_name", "last_name"} & set(changed):
            _set_names(customer)
        changed += _replace_contact_points(customer, data)
        if data.custom is not None:
            changed += [
                f"custom.{k}"
                for k in custom_fields.set_values(
                    session, principal, customer, data.custom, creating=False
                )
            ]
        if not changed:
            return customer
        customer.updated_at = utcnow()  # a change to contact points alone still bumps the version
    session.flush()
    if customer.lifecycle_stage != old_stage:
        session.add(
            LifecycleChange(
                customer_id=customer.id,
                from_stage=old_stage,
                to_stage=customer.lifecycle_stage,
                changed_by=principal.user_id,
                reason=data.stage_reason,
            )
        )
        emit(
            session,
            "customer.stage_changed",
            "customer",
            customer.id,
            {"from": old_stage, "to": customer.lifecycle_stage},
            principal.user_id,
        )
    audit.record(session, principal, "update", RESOURCE, customer.id, changed)
    emit(
        session,
        "customer.updated",
        "customer",
        customer.id,
        {"fields": sorted(changed)},
        principal.user_id,
    )
    return customer


def assign(session: Session, principal: Principal, customer: Customer, data: AssignIn) -> Customer:
    changes = data.model_dump(exclude_unset=True)
    check_reassignment(session, principal, RESOURCE, customer, changes)
    for key, value in changes.items():
        setattr(customer, key, value)
    session.flush()
    audit.record(session, principal, "assign", RESOURCE, customer.id, list(changes))
    emit(session, "customer.assigned", "customer", customer.id, changes, principal.user_id)
    return customer


def delete_customer(session: Session, principal: Principal, customer: Customer) -> None:
    if not in_scope(principal, customer, "delete"):
        raise Forbidden("your role may not delete this customer")
    _delete(session, principal, customer)


def _delete(session: Session, principal: Principal, customer: Customer) -> None:
    # profiles merged into this one are the same person: they go too (they would otherwise
    # come back to life, empty, when the foreign key is cleared)
    for merged in session.scalars(select(Customer).where(Customer.merged_into_id == customer.id)):
        _delete(session, principal, merged)
    audit.record(session, principal, "delete", RESOURCE, customer.id)
    emit(session, "customer.deleted", "customer", customer.id, {}, principal.user_id)
    session.delete(customer)
    session.flush()


def to_out(
    customer: Customer,
    principal: Principal,
    custom: dict[str, Any] | None = None,
    *,
    with_contact_points: bool = True,
) -> CustomerOut:
    masked = sorted(hidden(principal))
    data = {
        "id": customer.id,
        "version": customer.version,
        "title": customer.title,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "display_name": customer.display_name,
        "gender": customer.gender,
        "lifecycle_stage": customer.lifecycle_stage,
        "value_tier": customer.value_tier,
        "lifetime_value": customer.lifetime_value,
        "preferred_channel": customer.preferred_channel,
        "preferred_language": customer.preferred_language,
        "country": customer.country,
        "account_id": customer.account_id,
        "owner_id": customer.owner_id,
        "team_id": customer.team_id,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "custom": custom or {},
        "masked_fields": masked,
    }
    for name in SENSITIVE:
        if name not in masked:
            data[name] = getattr(customer, name)
    if with_contact_points:
        data["emails"] = list(customer.emails)
        data["phones"] = list(customer.phones)
        data["addresses"] = list(customer.addresses)
    return CustomerOut.model_validate(data)


def read_fields(principal: Principal) -> list[str]:
    shown = set(PERSONAL_FIELDS) - hidden(principal)
    return sorted(shown)


# --- the read hot path: the 360° view and the list/search -----------------------------------------
# Plain Core selects of just the columns a response shows, built once (SQLAlchemy memoises their
# cache keys), executed on the session's connection and turned into JSON-ready dicts: no ORM
# identity map, no lazy loads, no timestamps or JSON documents nobody reads. The output schemas
# drive the column lists, so a field added to `CustomerOut` & co. shows up here by itself.

_OUT_FIELDS = tuple(CustomerOut.model_fields)  # the serialised key order
_CONTACT_POINTS = {
    "emails": (CustomerEmail.__table__, tuple(EmailOut.model_fields)),
    "phones": (CustomerPhone.__table__, tuple(PhoneOut.model_fields)),
    "addresses": (CustomerAddress.__table__, tuple(AddressOut.model_fields)),
}
_CUSTOMER_COLUMNS = tuple(n for n in _OUT_FIELDS if n in _C)
_CID = bindparam("cid")
_IDS = bindparam("ids", expanding=True)

_ACCOUNTS = Account.__table__.c
_USERS = User.__table__.c
_VIEW_CUSTOMER = Prepared(
    select(
        *(_C[n] for n in _CUSTOMER_COLUMNS),
        _ACCOUNTS.id.label("account_pk"),
        _ACCOUNTS.name.label("account_name"),
        _USERS.id.label("owner_pk"),
        _USERS.full_name.label("owner_name"),
        _C.merged_into_id,
    )
    .select_from(
        Customer.__table__.outerjoin(Account.__table__, _ACCOUNTS.id == _C.account_id).outerjoin(
            User.__table__, _USERS.id == _C.owner_id
        )
    )
    .where(_C.id == _CID)
)
_CONTACT_MANY = {
    key: select(table.c.customer_id, *(table.c[n] for n in names))
    .where(table.c.customer_id.in_(_IDS))
    .order_by(table.c.customer_id, table.c.id)
    for key, (table, names) in _CONTACT_POINTS.items()
}
# The same for one customer (the 360 view, a page of one as a search by e-mail or phone gives):
# `= :cid` instead of an expanding IN, which SQLAlchemy re-renders into the cached statement on
# every execution (and which a prepared statement cannot take).
_CONTACT_ONE = {
    key: Prepared(select(table.c.customer_id, *(table.c[n] for n in names))
                  .where(table.c.customer_id == _CID)
                  .order_by(table.c.customer_id, table.c.id))
    for key, (table, names) in _CONTACT_POINTS.items()
}
_LC = LifecycleChange.__table__.c
_LIFECYCLE = Prepared(
    select(_LC.from_stage, _LC.to_stage, _LC.changed_at, _LC.reason)
    .where(_LC.customer_id == _CID)
    .order_by(_LC.changed_at, _LC.id)
)
_CFD = CustomFieldDefinition.__table__.c
_CFV = CustomFieldValue.__table__.c
# Every customer field definition with this customer's value (if any): definitions and values
# in one statement.
_CUSTOM_ONE = Prepared(
    select(
        _CFD.key, _CFD.label, _CFD.type, _CFD.sensitive,
        _CFV.field_id, _CFV.value_text, _CFV.value_number, _CFV.value_date,
    )
    .select_from(
        CustomFieldDefinition.__table__.outerjoin(
            CustomFieldValue.__table__, and_(_CFV.field_id == _CFD.id, _CFV.record_id == _CID)
        )
    )
    .where(_CFD.entity == "customer")
    .order_by(_CFD.id)
)
_CUSTOM_VALUES = (
    select(
        _CFV.record_id, _CFD.key, _CFD.type, _CFD.sensitive,
        _CFV.value_text, _CFV.value_number, _CFV.value_date,
    )
    .join(CustomFieldDefinition.__table__, _CFD.id == _CFV.field_id)
    .order_by(_CFV.field_id, _CFV.record_id)
)
_CUSTOM_MANY = _CUSTOM_VALUES.where(_CFV.record_id.in_(_IDS), _CFD.entity == "customer")
_CUSTOM_MANY_ONE = Prepared(
    _CUSTOM_VALUES.where(_CFV.record_id == _CID, _CFD.entity == "customer"))


# The list's columns: the output's, plus what a cursor is built from (`name_key`).
_LIST_BASE = select(
    *(_C[n] for n in _CUSTOMER_COLUMNS),
    *(_C[n] for n in sorted({s.column.key for s in _SORTS.values()} - set(_CUSTOMER_COLUMNS))),
)


def _custom_value(kind: str, text: str | None, number: Any, day: date | None) -> Any:
    """A stored custom value as the API shows it (same rule as `custom_fields.values_for`)."""
    if kind == "number":
        if number is None:
            return None
        number = number.normalize()
        return int(number) if number == number.to_integral_value() else float(number)
    return day if kind == "date" else text


def _customer_dict(
    values: dict[str, Any], masked: list[str], custom: dict[str, Any]
) -> dict[str, Any]:
    """What `to_out(...)` serialises to: `CustomerOut`'s keys in order, masked ones absent."""
    values["custom"] = custom
    values["masked_fields"] = list(masked)
    return {k: values[k] for k in _OUT_FIELDS if k not in masked}


def view_360_data(
    session: Session, principal: Principal, customer_id: int, timeline_limit: int = 50
) -> dict[str, Any]:
    """Everything one employee may see about one customer, in one read, as JSON-ready data
    (`customer` is the dict `CustomerOut` would serialise to). Same rules as `get_customer`:
    404 out of read scope."""
    from accord.commerce import service as commerce
    from accord.interactions import service as interactions

    conn = session.connection()
    row = _VIEW_CUSTOMER.first(conn, {"cid": customer_id})
    if row is None or not record_in_scope(
        principal, scope_for(principal, RESOURCE, "read"), row.owner_id, row.team_id
    ):
        raise NotFound(f"customer {customer_id} does not exist")
    if row.merged_into_id is not None:
        raise _merged(session, customer_id, "read", "/360")
    values = dict(zip(_CUSTOMER_COLUMNS, row, strict=False))
    for key, stmt in _CONTACT_ONE.items():
        names = _CONTACT_POINTS[key][1]
        values[key] = [dict(zip(names, r[1:], strict=True))
                       for r in stmt.all(conn, {"cid": row.id})]
    see_sensitive = can_see_sensitive_custom(principal)
    custom: dict[str, Any] = {}
    definitions = []
    for d in _CUSTOM_ONE.all(conn, {"cid": row.id}):
        if d.sensitive and not see_sensitive:
            continue
        definitions.append({"key": d.key, "label": d.label, "type": d.type})
        if d.field_id is not None:
            custom[d.key] = _custom_value(d.type, d.value_text, d.value_number, d.value_date)
    timeline: list[dict[str, Any]] = []
    if can(principal, "interactions", "read"):
        timeline += interactions.timeline_entries(session, row.id, timeline_limit)
    summary = None
    if can(principal, "orders", "read"):
        orders, summary = commerce.timeline_and_summary(session, row.id, timeline_limit)
        timeline += orders
    timeline.sort(key=lambda e: (e["at"], e["id"]), reverse=True)
    return {
        "customer": _customer_dict(values, sorted(hidden(principal)), custom),
        "account": {"id": row.account_pk, "name": row.account_name}
        if row.account_pk is not None
        else None,
        "owner": {"id": row.owner_pk, "full_name": row.owner_name}
        if row.owner_pk is not None
        else None,
        "lifecycle_history": [
            {"from_stage": h[0], "to_stage": h[1], "changed_at": h[2], "reason": h[3]}
            for h in _LIFECYCLE.all(conn, {"cid": row.id})
        ],
        "custom_fields": definitions,
        "purchase_summary": summary,
        "timeline": timeline[:timeline_limit],
    }


def view_360(
    session: Session, principal: Principal, customer_id: int, timeline_limit: int = 50
) -> dict[str, Any]:
    """The 360° view with `customer` as a `CustomerOut` (for the web page's templates)."""
    view = view_360_data(session, principal, customer_id, timeline_limit)
    view["customer"] = CustomerOut.model_validate(view["customer"])
    return view


def list_customer_dicts(
    session: Session, principal: Principal, params: ListParams, spec: ListSpec | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of `list_customers` as the dicts `to_out(c, principal, custom)` serialises to
    (contact points and readable custom values included), in five statements whatever the
    page size. `spec` is `list_spec(...)`'s (its sort columns are in `_LIST_BASE`)."""
    spec = spec or list_spec(session, principal)
    scope = scope_for(principal, RESOURCE, "read")
    if scope is None:
        raise Forbidden("your role may not read customers")
    stmt = _LIST_BASE.where(scope_clause(principal, scope, _C.owner_id, _C.team_id),
                            _C.merged_into_id.is_(None))
    if params.q:
        stmt = stmt.where(search_clause(params.q))
    conn = session.connection()  # Core rows: the ORM's execute path adds nothing here
    rows, cursor = page_of(list(conn.execute(paginate(stmt, spec, params))), spec, params)
    return _page_dicts(conn, principal, rows), cursor


def lookup_customer_dicts(
    session: Session, principal: Principal, params: ListParams, field: str, value: str,
    spec: ListSpec | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """`list_customer_dicts` for the usual search: `params` (already checked by
    `parse_list_params`) holds nothing but `field` = `value`, one e-mail address or phone
    number, in the default order. The same page, through a statement prepared once per kind of
    scope: building, caching and executing the general query through SQLAlchemy cost a quarter
    of such a search (~0.2 ms)."""
    spec = spec or list_spec(session, principal)
    if ((params.sort_key, params.descending) != ("id", True) or params.cursor or params.q
            or len(params.conditions) != 1):
        return list_customer_dicts(session, principal, params, spec)
    shape = scope_shape(principal, scope_for(principal, RESOURCE, "read"))
    if shape == "none":
        raise Forbidden("your role may not read customers")
    if shape != "all" and principal.user_id is None:  # no own rows: the general query says so
        return list_customer_dicts(session, principal, params, spec)
    (normalized,) = _emails(value) if field == "email" else _phones(value)
    conn = session.connection()
    found = _lookup_page(field, shape).all(conn, {
        "value": normalized, "uid": principal.user_id, "tid": principal.team_id,
        "lim": params.limit + 1,
    })
    rows, cursor = page_of(found, spec, params)
    return _page_dicts(conn, principal, rows), cursor


@functools.cache
def _lookup_page(field: str, shape: str) -> Prepared:
    table, column = (_EMAIL, "email_normalized") if field == "email" else (_PHONE, "e164")
    stmt = _LIST_BASE.where(
        _C.merged_into_id.is_(None),
        _C.id.in_(select(table.customer_id).where(table[column] == bindparam("value"))),
    )
    own = _C.owner_id == bindparam("uid")
    if shape == "own":
        stmt = stmt.where(own)
    elif shape == "team":
        stmt = stmt.where(or_(own, _C.team_id == bindparam("tid")))
    return Prepared(stmt.order_by(_C.id.desc()).limit(bindparam("lim", type_=Integer)))


def _page_dicts(conn: Connection, principal: Principal, rows: list[Any]) -> list[dict[str, Any]]:
    """A page's rows (columns of `_LIST_BASE`) with their contact points and readable custom
    values, masked for `principal`."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    one = len(ids) == 1
    by_ids = {"cid": ids[0]} if one else {"ids": ids}
    values = {r.id: dict(zip(_CUSTOMER_COLUMNS, r, strict=False)) for r in rows}
    for key, stmt_many in _CONTACT_MANY.items():
        names = _CONTACT_POINTS[key][1]
        for v in values.values():
            v[key] = []
        found = (_CONTACT_ONE[key].all(conn, by_ids) if one
                 else conn.execute(stmt_many, by_ids))
        for r in found:
            values[r[0]][key].append(dict(zip(names, r[1:], strict=True)))
    see_sensitive = can_see_sensitive_custom(principal)
    custom: dict[int, dict[str, Any]] = {i: {} for i in ids}
    for c in (_CUSTOM_MANY_ONE.all(conn, by_ids) if one
              else conn.execute(_CUSTOM_MANY, by_ids)):
        if see_sensitive or not c.sensitive:
            custom[c.record_id][c.key] = _custom_value(
                c.type, c.value_text, c.value_number, c.value_date
            )
    masked = sorted(hidden(principal))
    return [_customer_dict(values[i], masked, custom[i]) for i in ids]


def customers_by_ids(session: Session, principal: Principal, ids: list[int]) -> dict[int, Customer]:
    """Readable customers among `ids` (other domains use this to enforce the parent's scope)."""
    if not ids:
        return {}
    stmt = visible_query(principal).where(Customer.id.in_(ids))
    return {c.id: c for c in session.execute(stmt).scalars()}


def readable_clause(
    principal: Principal, customer_id_col: Any, action: str = "read"
) -> ColumnElement[bool]:
    """SQL for 'the parent customer is in the caller's scope' (child lists: interactions...)."""
    scope = scope_for(principal, RESOURCE, "read" if action == "read" else "update")
    if scope is None:
        raise Forbidden("your role may not read customers")
    if scope == "all":
        return and_(True)  # type: ignore[arg-type]
    return customer_id_col.in_(
        select(Customer.id).where(
            scope_clause(principal, scope, Customer.owner_id, Customer.team_id)
        )
    )


def child_visible_clause(
    principal: Principal, resource: str, customer_id_col: Any
) -> ColumnElement[bool]:
    """SQL for 'the caller may read this child record' (interactions, orders): the customer is
    readable, and the child resource's own grant (if narrower) covers that customer too."""
    scope = scope_for(principal, resource, "read")
    if scope is None:
        raise Forbidden(f"your role may not read {resource}")
    clause = readable_clause(principal, customer_id_col)
    customer_scope = scope_for(principal, RESOURCE, "read")
    if customer_scope is not None and SCOPE_RANK[scope] < SCOPE_RANK[customer_scope]:
        clause = and_(
            clause,
            customer_id_col.in_(
                select(Customer.id).where(
                    scope_clause(principal, scope, Customer.owner_id, Customer.team_id)
                )
            ),
        )
    return clause


def customer_for_child(
    session: Session, principal: Principal, resource: str, customer_id: int, action: str = "read"
) -> Customer:
    """The customer a child record hangs off: 404 out of read scope, 403 when it may not act."""
    require(principal, resource, "read")
    if action != "read":
        require(principal, resource, action)
    customer = get_customer(session, principal, customer_id)
    if not record_in_scope(
        principal, scope_for(principal, resource, "read"), customer.owner_id, customer.team_id
    ):
        raise NotFound(f"customer {customer_id} does not exist")
    if action != "read" and not record_in_scope(
        principal, scope_for(principal, resource, action), customer.owner_id, customer.team_id
    ):
        raise Forbidden(f"your role may not {action} {resource} of this customer")
    return customer


def get_child(
    session: Session,
    principal: Principal,
    resource: str,
    model: Any,
    record_id: int,
    action: str = "read",
    options: tuple[Any, ...] = (),
) -> Any:
    """A record hanging off a customer (interaction, order): 404 when missing or out of read
    scope (no existence oracle), 403 when readable but the action is not allowed."""
    require(principal, resource, "read")
    if action != "read":
        require(principal, resource, action)
    row = session.get(model, record_id, options=list(options))
    label = resource.rstrip("s")
    if row is None:
        raise NotFound(f"{label} {record_id} does not exist")
    try:
        customer_for_child(session, principal, resource, row.customer_id, action)
    except NotFound:
        raise NotFound(f"{label} {record_id} does not exist") from None
    return row


def child_list_query(
    session: Session, principal: Principal, resource: str, model: Any, customer_id: int | None
) -> Select[Any]:
    """One customer's child records (checked), or those of every customer the caller may read."""
    if customer_id is not None:
        customer_for_child(session, principal, resource, customer_id)
        return select(model).where(model.customer_id == customer_id)
    return select(model).where(child_visible_clause(principal, resource, model.customer_id))
