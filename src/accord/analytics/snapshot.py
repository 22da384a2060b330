"""A columnar snapshot of the operational tables that analytics reads (Parquet, one file a table).

Batch analytics never query the operational store directly: a refresh first copies the columns
it needs into `<ACCORD_DATA_DIR>/snapshots/<UTC timestamp>/<table>.parquet`, then DuckDB or Spark
read those files. Copying is streamed: Core selects (never ORM objects) fetched in partitions of
`CHUNK` rows, each partition turned into an Arrow record batch and appended to the table's file,
so memory stays flat at millions of rows.

Privacy by design: the snapshot keeps ids, codes, amounts and timestamps only. No names, e-mail
addresses, phone numbers, addresses, notes, interaction subjects or bodies, lifecycle change
reasons. Customer ids are pseudonyms; the older snapshots are deleted after each refresh (only
`ACCORD_ANALYTICS_SNAPSHOT_KEEP` are kept), so an erased person leaves the snapshots at the
next refresh. Timestamps are written as naive UTC (both engines then agree on month boundaries
whatever their session time zone); money as double (aggregates only).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import DateTime, Float, String, cast, inspect, select, type_coerce
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from accord.core.settings import get_settings
from accord.models import (
    Customer,
    Interaction,
    LifecycleChange,
    MarketingSpend,
    Order,
    OrderLine,
    Product,
)

CHUNK = 100_000
SNAPSHOT_DIR = "snapshots"

INT, FLOAT, TEXT, TS, DATE = pa.int64(), pa.float64(), pa.string(), pa.timestamp("us"), pa.date32()


@dataclass(frozen=True)
class Col:
    name: str
    expr: Any
    type: pa.DataType


@dataclass(frozen=True)
class TableSpec:
    """One snapshot table: the columns analytics needs, in key order."""

    name: str
    columns: tuple[Col, ...]
    order_by: Any


def _specs() -> tuple[TableSpec, ...]:
    c, o, ol, p, i, lc, ms = (
        Customer.__table__.c, Order.__table__.c, OrderLine.__table__.c, Product.__table__.c,
        Interaction.__table__.c, LifecycleChange.__table__.c, MarketingSpend.__table__.c,
    )
    return (
        TableSpec("customers", (
            Col("id", c.id, INT), Col("created_at", c.created_at, TS),
            Col("lifecycle_stage", c.lifecycle_stage, TEXT), Col("value_tier", c.value_tier, TEXT),
            Col("country", c.country, TEXT), Col("owner_id", c.owner_id, INT),
            Col("team_id", c.team_id, INT), Col("merged_into_id", c.merged_into_id, INT),
        ), c.id),
        TableSpec("orders", (
            Col("id", o.id, INT), Col("customer_id", o.customer_id, INT),
            Col("status", o.status, TEXT), Col("currency", o.currency, TEXT),
            Col("total", o.total, FLOAT), Col("ordered_at", o.ordered_at, TS),
            Col("channel", o.channel, TEXT),
        ), o.id),
        TableSpec("order_lines", (
            Col("id", ol.id, INT), Col("order_id", ol.order_id, INT),
            Col("product_id", ol.product_id, INT), Col("quantity", ol.quantity, INT),
            Col("unit_price", ol.unit_price, FLOAT), Col("line_total", ol.line_total, FLOAT),
        ), ol.id),
        TableSpec("products", (
            Col("id", p.id, INT), Col("category", p.category, TEXT),
            Col("price", p.price, FLOAT), Col("currency", p.currency, TEXT),
            Col("active", p.active, pa.bool_()),
        ), p.id),
        TableSpec("interactions", (
            Col("id", i.id, INT), Col("customer_id", i.customer_id, INT),
            Col("channel", i.channel, TEXT), Col("direction", i.direction, TEXT),
            Col("department", i.department, TEXT), Col("occurred_at", i.occurred_at, TS),
        ), i.id),
        TableSpec("lifecycle_changes", (
            Col("id", lc.id, INT), Col("customer_id", lc.customer_id, INT),
            Col("from_stage", lc.from_stage, TEXT), Col("to_stage", lc.to_stage, TEXT),
            Col("changed_at", lc.changed_at, TS),
        ), lc.id),
        TableSpec("marketing_spend", (
            Col("id", ms.id, INT), Col("channel", ms.channel, TEXT),
            Col("period_start", ms.period_start, DATE), Col("period_end", ms.period_end, DATE),
            Col("amount", ms.amount, FLOAT), Col("currency", ms.currency, TEXT),
        ), ms.id),
    )


# The service domain's tables: copied when present (a database before migration 0007 has
# none), so the KPIs that read them light up by themselves. Column name → Arrow type; every
# listed column must exist. Ticket durations are the business seconds the SLA rules computed
# (`accord.service.sla`), so the KPI and the SLA timers never disagree.
OPTIONAL_TABLES: dict[str, dict[str, pa.DataType]] = {
    "survey_responses": {"id": INT, "customer_id": INT, "kind": TEXT, "score": FLOAT,
                         "responded_at": TS},
    "tickets": {"id": INT, "customer_id": INT, "created_at": TS,
                "first_response_seconds": FLOAT, "resolution_seconds": FLOAT},
}

# Empty stand-ins so every KPI query can name every table (a KPI without data yields no rows).
EMPTY_SCHEMAS: dict[str, pa.Schema] = {
    name: pa.schema(list(cols.items())) for name, cols in OPTIONAL_TABLES.items()
}


@dataclass
class Snapshot:
    path: Path
    taken_at: datetime
    rows: dict[str, int] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)  # tables copied from the store
    seconds: float = 0.0

    def file(self, table: str) -> Path:
        return self.path / f"{table}.parquet"

    @property
    def tables(self) -> dict[str, Path]:
        return {p.stem: p for p in sorted(self.path.glob("*.parquet"))}


def snapshots_root() -> Path:
    return get_settings().data_dir / SNAPSHOT_DIR


def _select_expr(col: Col, dialect: str) -> ColumnElement[Any]:
    """Skip the per-value Python conversions (Decimal, aware datetimes): Arrow converts faster."""
    if col.type == FLOAT:
        return cast(col.expr, Float)  # the drivers hand back floats, not Decimals
    if col.type == TS:
        # SQLite keeps ISO text: Arrow parses it; PostgreSQL returns datetimes.
        return type_coerce(col.expr, String if dialect == "sqlite" else DateTime(timezone=True))
    return col.expr


def _epoch_days(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Spend periods as epoch days: day arithmetic that both engines spell the same way."""
    days = {n: pc.cast(batch.column(n), pa.int32()) for n in ("period_start", "period_end")}
    return batch.append_column("start_day", days["period_start"]).append_column(
        "end_day", days["period_end"])


DERIVE: dict[str, Callable[[pa.RecordBatch], pa.RecordBatch]] = {
    "marketing_spend": _epoch_days,
}


def _to_array(values: list[Any], dtype: pa.DataType, dialect: str) -> pa.Array:
    if dialect == "sqlite" and dtype == pa.bool_():
        return pa.array(values, pa.int8()).cast(dtype)
    if dialect == "sqlite" and dtype == DATE:
        return pa.array(values, pa.string()).cast(dtype)
    if dtype == TS:
        if dialect == "sqlite":
            return pa.array(values, pa.string()).cast(TS)
        arr = pa.array(values)
        if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
            arr = arr.cast(pa.timestamp("us", tz="UTC")).cast(TS)  # naive UTC wall clock
        return arr.cast(TS)
    return pa.array(values, dtype)


def _batches(conn: Connection, names: list[str], exprs: list[Any], types: list[pa.DataType],
             stmt: Any) -> Iterator[pa.RecordBatch]:
    """Fetch through the driver's own cursor (server-side on PostgreSQL): no per-row objects
    beyond the driver's tuples. The statement has no parameters (columns and an ORDER BY)."""
    dialect = conn.dialect.name
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    raw = conn.connection.dbapi_connection
    assert raw is not None
    if dialect == "postgresql":
        cursor = raw.cursor(name=f"accord_snapshot_{uuid.uuid4().hex[:12]}")
        cursor.itersize = CHUNK
    else:
        cursor = raw.cursor()
    try:
        cursor.execute(sql)
        while part := cursor.fetchmany(CHUNK):
            columns = list(zip(*part, strict=True))
            yield pa.RecordBatch.from_arrays(
                [_to_array(list(v), t, dialect) for v, t in zip(columns, types, strict=True)],
                names=names,
            )
    finally:
        cursor.close()


def _copy(conn: Connection, table: str, names: list[str], exprs: list[Any],
          types: list[pa.DataType], order_by: Any, out: Path) -> int:
    schema = pa.schema(list(zip(names, types, strict=True)))
    derive = DERIVE.get(table)
    if derive is not None:
        schema = derive(pa.RecordBatch.from_pylist([], schema=schema)).schema
    stmt = select(*exprs).order_by(order_by)
    rows = 0
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for batch in _batches(conn, names, exprs, types, stmt):
            writer.write_batch(derive(batch) if derive else batch)
            rows += batch.num_rows
    return rows


def take_snapshot(conn: Connection, root: Path | None = None, *,
                  progress: Callable[[str, int], None] | None = None) -> Snapshot:
    """Copy the analytics tables into a new snapshot directory (written aside, then renamed)."""
    started = time.perf_counter()
    taken_at = datetime.now(UTC)
    root = root or snapshots_root()
    root.mkdir(parents=True, exist_ok=True)
    stamp = taken_at.strftime("%Y%m%dT%H%M%S%fZ")
    partial = root / f".{stamp}.partial"
    partial.mkdir()
    snap = Snapshot(partial, taken_at)
    dialect = conn.dialect.name
    conn.execute(select(1))  # begin the one read transaction every table is copied in
    try:
        for spec in _specs():
            names = [col.name for col in spec.columns]
            exprs = [_select_expr(col, dialect).label(col.name) for col in spec.columns]
            types = [col.type for col in spec.columns]
            snap.rows[spec.name] = _copy(conn, spec.name, names, exprs, types, spec.order_by,
                                         snap.file(spec.name))
            snap.present.add(spec.name)
            if progress:
                progress(spec.name, snap.rows[spec.name])
        inspector = inspect(conn)
        existing = set(inspector.get_table_names())
        for name, cols in OPTIONAL_TABLES.items():
            have = {c["name"] for c in inspector.get_columns(name)} if name in existing else set()
            if name in existing and set(cols) <= have:
                from sqlalchemy import column, table

                t = table(name, *(column(n) for n in cols))
                exprs = [_select_expr(Col(n, t.c[n], ty), dialect).label(n)
                         for n, ty in cols.items()]
                snap.rows[name] = _copy(conn, name, list(cols), exprs, list(cols.values()),
                                        t.c.id, snap.file(name))
                snap.present.add(name)
            else:
                empty = pa.RecordBatch.from_pylist([], schema=EMPTY_SCHEMAS[name])
                derive = DERIVE.get(name)
                pq.write_table(pa.Table.from_batches([derive(empty) if derive else empty]),
                               snap.file(name))
                snap.rows[name] = 0
        final = root / stamp
        partial.rename(final)
        snap.path = final
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    snap.seconds = time.perf_counter() - started
    return snap


def _finished(root: Path) -> list[Path]:
    """Completed snapshots, oldest first (partial ones are hidden: `.<stamp>.partial`)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def prune(root: Path | None = None, keep: int | None = None) -> list[Path]:
    """Delete all but the newest `keep` snapshots (and abandoned partial ones)."""
    root = root or snapshots_root()
    keep = get_settings().analytics_snapshot_keep if keep is None else keep
    if not root.is_dir():
        return []
    done = _finished(root)
    doomed = done[: max(0, len(done) - keep)]
    stale = time.time() - 6 * 3600  # a partial snapshot this old was abandoned by a crash
    doomed += [p for p in root.iterdir()
               if p.is_dir() and p.name.endswith(".partial") and p.stat().st_mtime < stale]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def latest(root: Path | None = None) -> Path | None:
    root = root or snapshots_root()
    if not root.is_dir():
        return None
    done = _finished(root)
    return done[-1] if done else None
