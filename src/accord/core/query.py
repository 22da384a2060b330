"""Allow-listed filters and sorts, and keyset (cursor) pagination.

One definition per resource serves the REST API and the web UI. Only names listed here reach
SQL; values are bound parameters; an unknown or hidden field is a 422 naming it, so a hidden
field cannot be probed through a filter or a sort.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property, partial
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_

from accord.core.errors import ValidationProblem

OPS = {"eq", "ne", "lt", "lte", "gt", "gte", "in", "prefix", "isnull"}
RESERVED = {"limit", "cursor", "sort", "q"}
INT64_MAX = 2**63 - 1  # ids are BIGINT: larger numbers are refused here, not by the database


def parse_value(raw: str, kind: type, name: str) -> Any:
    try:
        if "\x00" in raw:
            raise ValueError("NUL character")
        if kind is str:
            if len(raw) > 500:
                raise ValueError("too long")
            return raw
        if kind is int:
            number = int(raw)
            if not -INT64_MAX <= number <= INT64_MAX:
                raise ValueError("out of range")
            return number
        if kind is Decimal:
            return Decimal(raw)
        if kind is bool:
            if raw.lower() in ("true", "1", "yes"):
                return True
            if raw.lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if kind is date:
            return date.fromisoformat(raw)
        if kind is datetime:
            value = datetime.fromisoformat(raw)
            if value.tzinfo is None:
                return value.replace(tzinfo=UTC)
            return value.astimezone(UTC)  # 9999-12-31T23:59-14:00 overflows here, not in SQL
    except (ValueError, InvalidOperation, OverflowError):
        raise ValidationProblem(
            f"{raw[:50]!r} is not a valid {kind.__name__}", field=name
        ) from None
    raise AssertionError(kind)


@dataclass(frozen=True)
class Filter:
    """`column` may be a column or a factory `(op, value) -> clause` for joined/derived fields.

    A factory is called while the parameters are parsed, so that it may refuse a value there,
    unless the filter has a `check`: that checks (and may normalise) the value at once, and the
    factory then gets the checked value only when a query is built from the parameters.
    """

    column: Any
    kind: type = str
    ops: frozenset[str] = frozenset({"eq", "ne", "in"})
    choices: tuple[str, ...] | None = None
    check: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Sort:
    """`nullable` defaults to the column's own nullability; NULLs sort last ascending and first
    descending on both engines, and the keyset condition walks through them."""

    column: Any
    kind: type = str
    nullable: bool | None = None

    @property
    def can_be_null(self) -> bool:
        if self.nullable is not None:
            return self.nullable
        return bool(getattr(getattr(self.column, "expression", self.column), "nullable", False))


@dataclass
class ListSpec:
    resource: str
    id_column: Any
    filters: dict[str, Filter]
    sorts: dict[str, Sort]
    default_sort: str = "-id"
    dynamic: Callable[[str, str, str], ColumnElement[bool] | None] | None = None


@dataclass
class ListParams:
    """Checked list parameters. `conditions` build the filters' SQL, and `where` calls them on
    first use: a search answered by a statement prepared once (the customer lookup by e-mail)
    never needs it, and building SQLAlchemy clauses cost ~15% of such a search
    (bench/README.md)."""

    limit: int
    sort_key: str
    descending: bool
    cursor: tuple[Any, int] | None
    conditions: list[Callable[[], ColumnElement[bool]]] = field(default_factory=list)
    q: str | None = None

    @cached_property
    def where(self) -> list[ColumnElement[bool]]:
        return [build() for build in self.conditions]


def _factory(flt: Filter) -> bool:
    return callable(flt.column) and not hasattr(flt.column, "key")


def _clause(flt: Filter, op: str, value: Any) -> ColumnElement[bool]:
    if _factory(flt):
        return flt.column(op, value)
    col = flt.column
    return {
        "eq": lambda: col == value,
        "ne": lambda: col != value,
        "lt": lambda: col < value,
        "lte": lambda: col <= value,
        "gt": lambda: col > value,
        "gte": lambda: col >= value,
        "in": lambda: col.in_(value),
        "prefix": lambda: col.startswith(value, autoescape=True),
        "isnull": lambda: col.is_(None) if value else col.is_not(None),
    }[op]()


def parse_list_params(
    params: Mapping[str, Any],
    spec: ListSpec,
    *,
    hidden: set[str],
    default_limit: int,
    max_limit: int,
) -> ListParams:
    """Validate query parameters against the allow-list; any unknown name is a 422."""
    for name in params:
        if name in RESERVED:
            continue
        base, _, op = name.partition("__")
        op = op or "eq"
        known = base in spec.filters or (spec.dynamic is not None and base.startswith("cf."))
        if not known or base in hidden:
            raise ValidationProblem(f"unknown filter field {base!r}", field=name)
        if op not in OPS:
            raise ValidationProblem(f"unknown filter operator {op!r}", field=name)
    try:
        limit = int(params.get("limit", default_limit))
    except (TypeError, ValueError):
        raise ValidationProblem("limit must be an integer", field="limit") from None
    if not 1 <= limit <= max_limit:
        raise ValidationProblem(f"limit must be between 1 and {max_limit}", field="limit")

    sort_raw = str(params.get("sort") or spec.default_sort)
    descending = sort_raw.startswith("-")
    sort_key = sort_raw.lstrip("-+")
    if sort_key not in spec.sorts or sort_key in hidden:
        raise ValidationProblem(f"unknown sort field {sort_key!r}", field="sort")

    conditions: list[Callable[[], ColumnElement[bool]]] = []
    for name, raw in params.items():
        if name in RESERVED:
            continue
        base, _, op = name.partition("__")
        op = op or "eq"
        if base.startswith("cf.") and base not in spec.filters:
            assert spec.dynamic is not None
            clause = spec.dynamic(base[3:], op, str(raw))
            if clause is None:
                raise ValidationProblem(f"unknown filter field {base!r}", field=name)
            conditions.append(partial(_built, clause))
            continue
        flt = spec.filters[base]
        if op not in flt.ops:
            raise ValidationProblem(f"operator {op!r} is not supported on {base!r}", field=name)
        if op == "isnull":
            value: Any = parse_value(str(raw), bool, name)
        elif op == "in":
            value = [parse_value(v, flt.kind, name) for v in str(raw).split(",") if v != ""]
        else:
            value = parse_value(str(raw), flt.kind, name)
        if flt.choices is not None:
            for v in value if isinstance(value, list) else [value]:
                if op != "isnull" and v not in flt.choices:
                    raise ValidationProblem(
                        f"{v!r} is not one of {', '.join(flt.choices)}", field=name
                    )
        if flt.check is not None:
            value = flt.check(value)
        elif _factory(flt):  # it may refuse the value: asked now, not when a query is built
            conditions.append(partial(_built, _clause(flt, op, value)))
            continue
        conditions.append(partial(_clause, flt, op, value))

    cursor = (
        decode_cursor(params.get("cursor"), sort_key, spec.sorts[sort_key].kind)
        if params.get("cursor")
        else None
    )
    q = params.get("q")
    if q is not None and len(str(q)) > 200:
        raise ValidationProblem("search text is too long (200 characters at most)", field="q")
    if q is not None and "\x00" in str(q):
        raise ValidationProblem("search text may not contain NUL characters", field="q")
    return ListParams(limit, sort_key, descending, cursor, conditions,
                      str(q).strip() if q else None)


def _built(clause: ColumnElement[bool]) -> ColumnElement[bool]:
    return clause


def request_params(params: Mapping[str, Any], spec: ListSpec, *,
                   hidden: set[str] | frozenset[str] = frozenset()) -> ListParams:
    """`parse_list_params` with the deployment's page sizes (`ACCORD_PAGE_SIZE_DEFAULT` /
    `_MAX`): what a list endpoint or page without its own limits uses, so that every list
    pages the same way."""
    from accord.core.settings import get_settings

    settings = get_settings()
    return parse_list_params(params, spec, hidden=set(hidden),
                             default_limit=settings.page_size_default,
                             max_limit=settings.page_size_max)


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def encode_cursor(sort_key: str, value: Any, last_id: int) -> str:
    raw = json.dumps([sort_key, _encode_value(value), last_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: Any, sort_key: str, kind: type) -> tuple[Any, int]:
    try:
        token = str(token)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key, value, last_id = json.loads(raw)
        if (
            key != sort_key
            or not isinstance(last_id, int)
            or isinstance(last_id, bool)
            or not -INT64_MAX <= last_id <= INT64_MAX
        ):
            raise ValueError
        if value is not None and kind is not str:
            value = parse_value(str(value), kind, "cursor")
        elif value is not None and not isinstance(value, str):
            raise ValueError
        return value, last_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, ValidationProblem):
        raise ValidationProblem(
            "the cursor is invalid or belongs to another sort", field="cursor"
        ) from None


def paginate(stmt: Select[Any], spec: ListSpec, params: ListParams) -> Select[Any]:
    """Apply filters, keyset condition, order and limit (+1 row to know if there is more)."""
    sort = spec.sorts[params.sort_key]
    sort_col, id_col, desc = sort.column, spec.id_column, params.descending
    nullable = sort.can_be_null and sort_col is not id_col
    if params.where:
        stmt = stmt.where(and_(*params.where))
    if params.cursor is not None:
        value, last_id = params.cursor
        after_id = id_col < last_id if desc else id_col > last_id
        if sort_col is id_col:
            stmt = stmt.where(after_id)
        elif value is None:
            # Inside the block of NULLs: last when ascending, first when descending.
            in_nulls = and_(sort_col.is_(None), after_id)
            stmt = stmt.where(or_(in_nulls, sort_col.is_not(None)) if desc else in_nulls)
        else:
            beyond = sort_col < value if desc else sort_col > value
            cond = or_(beyond, and_(sort_col == value, after_id))
            if nullable and not desc:
                cond = or_(cond, sort_col.is_(None))
            stmt = stmt.where(cond)
    if sort_col is id_col:
        order = [id_col.desc() if desc else id_col.asc()]
    else:
        first = sort_col.desc() if desc else sort_col.asc()
        if nullable:
            first = first.nulls_first() if desc else first.nulls_last()
        order = [first, id_col.desc() if desc else id_col.asc()]
    return stmt.order_by(*order).limit(params.limit + 1)


def page_of(
    rows: list[Any], spec: ListSpec, params: ListParams, get: Callable[[Any, str], Any] = getattr
) -> tuple[list[Any], str | None]:
    """Cut the extra row and build the next cursor from the last row kept."""
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    if not more or not rows:
        return rows, None
    last = rows[-1]
    sort_attr = spec.sorts[params.sort_key].column.key
    return rows, encode_cursor(params.sort_key, get(last, sort_attr), get(last, "id"))
