"""How long do the analytics snapshot and the full KPI refresh take at scale, on DuckDB?

Builds (in a child process, so its memory does not count) a SQLite store with CUSTOMERS demo
customers (`accord demo`'s generator, with their whole history) and tops the purchase history up
to LINES order lines with orders drawn by numpy and written with a raw `executemany` (the demo
generator makes ~3 lines per customer; 10 per customer would take it far too long). Then, in
this process:

- the snapshot (store → Parquet, streamed), once;
- the baseline: the same KPI SQL run directly by DuckDB on the already-exported Parquet
  (`kpis.compute`), median of K runs;
- Accord's refresh without the snapshot (queries + bulk write-back + run record), median of K;
- one full `refresh_kpis` (snapshot + queries + write-back), as `accord analytics run` does;

and prints peak resident memory after each phase. Target: the KPI refresh under 10 s on DuckDB
at 1,000,000 customers and 10,000,000 order lines.

    python bench/analytics_scale.py [--customers 1000000] [--lines 10000000] [--repeat 3]
                                    [--db FILE]   # reuse a store built before
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LINES_PER_ORDER = 2.5
BATCH = 200_000


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(db: Path, customers: int, lines: int, seed: int) -> None:
    """Demo customers, then numpy orders until the store holds `lines` order lines."""
    import numpy as np

    from accord.core import db as dbmod
    from accord.core.migrate import upgrade
    from accord.core.settings import reset_settings
    from accord.demo.generator import Progress, generate

    os.environ["ACCORD_DATABASE_URL"] = f"sqlite:///{db}"
    reset_settings()
    dbmod.dispose_all()
    upgrade()
    started = time.perf_counter()
    stats = generate(customers, seed, progress=Progress())
    print(f"demo generator: {customers:,} customers, {sum(stats.rows.values()):,} rows in "
          f"{time.perf_counter() - started:.1f} s", flush=True)
    dbmod.dispose_all()
    conn = sqlite3.connect(db, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-262144",
                   "foreign_keys=OFF"):
        conn.execute(f"PRAGMA {pragma}")
    have = conn.execute("SELECT COUNT(*) FROM order_lines").fetchone()[0]
    max_c = conn.execute("SELECT MAX(id) FROM customers").fetchone()[0]
    next_o = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM orders").fetchone()[0]
    next_l = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM order_lines").fetchone()[0]
    products = np.array([r[0] for r in conn.execute(
        "SELECT id FROM products WHERE currency = 'EUR'")])
    missing = max(0, lines - have)
    print(f"order lines from the generator: {have:,}; adding {missing:,} with numpy", flush=True)
    rng = np.random.default_rng(seed)
    now = time.time()
    started = time.perf_counter()
    while missing > 0:
        n_lines = min(BATCH, missing)
        n_orders = max(1, int(n_lines / LINES_PER_ORDER))
        order_of_line = np.sort(rng.integers(0, n_orders, n_lines))
        qty = rng.integers(1, 4, n_lines)
        price = rng.integers(500, 20_000, n_lines) / 100
        line_total = qty * price
        totals = np.bincount(order_of_line, weights=line_total, minlength=n_orders)
        cust = rng.integers(1, max_c + 1, n_orders)
        when = now - rng.random(n_orders) * 3 * 365 * 86400
        stamps = [time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) for t in when]
        status = rng.choice(np.array(["delivered", "paid", "shipped", "cancelled", "refunded"]),
                            n_orders, p=[0.6, 0.2, 0.15, 0.03, 0.02])
        channel = rng.choice(np.array(["web", "app", "store", "phone", "email"]), n_orders,
                             p=[0.55, 0.25, 0.12, 0.05, 0.03])
        oids = np.arange(next_o, next_o + n_orders)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO orders (id, customer_id, number, status, currency, total, ordered_at, "
            "channel, created_at, updated_at, version) VALUES (?,?,?,?,?,?,?,?,?,?,1)",
            [(int(o), int(c), f"B-{o:010d}", str(s), "EUR", round(float(t), 2), w, str(ch), w, w)
             for o, c, s, t, w, ch in zip(oids, cust, status, totals, stamps, channel,
                                          strict=True)])
        conn.executemany(
            "INSERT INTO order_lines (id, order_id, product_id, description, quantity, "
            "unit_price, line_total) VALUES (?,?,?,?,?,?,?)",
            [(int(i), int(next_o + o), int(p), "bench", int(q), float(pr), round(float(t), 2))
             for i, o, p, q, pr, t in zip(range(next_l, next_l + n_lines), order_of_line,
                                          rng.choice(products, n_lines), qty, price,
                                          line_total, strict=True)])
        conn.execute("COMMIT")
        next_o += n_orders
        next_l += n_lines
        missing -= n_lines
    conn.execute("ANALYZE")
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: S608
              for t in ("customers", "orders", "order_lines")}
    conn.close()
    print(f"numpy top-up: {time.perf_counter() - started:.1f} s; store: {counts}", flush=True)


def measure(db: Path, repeat: int, workdir: Path) -> None:
    os.environ["ACCORD_DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["ACCORD_DATA_DIR"] = str(workdir)
    from accord.analytics import kpis, service
    from accord.analytics.snapshot import take_snapshot
    from accord.core import db as dbmod
    from accord.core.clock import utcnow
    from accord.core.settings import reset_settings
    from accord.models import AnalyticsRun

    reset_settings()
    engine = dbmod.get_engine()
    print(f"peak RSS before: {peak_mb():.0f} MB")
    started = time.perf_counter()
    with engine.connect() as conn:
        snap = take_snapshot(conn, workdir / "bench-snapshots")
    snapshot_s = time.perf_counter() - started
    print(f"snapshot: {snapshot_s:.2f} s ({snap.rows['customers']:,} customers, "
          f"{snap.rows['orders']:,} orders, {snap.rows['order_lines']:,} order lines, "
          f"{snap.rows['interactions']:,} interactions); peak RSS {peak_mb():.0f} MB", flush=True)
    as_of = snap.taken_at.date()

    baseline, accord = [], []
    values = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = kpis.compute(snap.path, as_of, engine="duckdb")
        baseline.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with dbmod.session_scope() as session:
            run = AnalyticsRun(engine="duckdb", status="running", started_at=utcnow(),
                               figures={})
            session.add(run)
            session.flush()
            rows = kpis.compute(snap.path, as_of, engine="duckdb")
            service.write_values(session, run.id, rows)
            run.status, run.finished_at = "done", utcnow()
        accord.append(time.perf_counter() - t0)
        values = len(rows)
    b, a = statistics.median(baseline), statistics.median(accord)
    print(f"baseline — KPI SQL by DuckDB on the Parquet: median {b:.2f} s of {repeat}")
    print(f"Accord refresh (queries + write-back of {values:,} values): median {a:.2f} s "
          f"of {repeat} — {a / b:.2f}× the baseline; target < 10 s: "
          f"{'met' if a < 10 else 'NOT met'}; peak RSS {peak_mb():.0f} MB", flush=True)
    t0 = time.perf_counter()
    with dbmod.session_scope() as session:
        run = service.refresh_kpis(session, "duckdb")
        figures = dict(run.figures)
    print(f"full refresh incl. snapshot (`accord analytics run`): "
          f"{time.perf_counter() - t0:.2f} s — snapshot {figures['snapshot_seconds']} s, "
          f"queries {figures['compute_seconds']} s, write-back {figures['write_seconds']} s; "
          f"peak RSS {peak_mb():.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", type=Path, help="an existing store to measure (built if absent)")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build(args.db, args.customers, args.lines, args.seed)
        return
    workdir = Path(tempfile.mkdtemp(prefix="accord-analytics-"))
    db = args.db or workdir / "store.db"
    if not db.exists():
        subprocess.run([sys.executable, __file__, "--build-only", "--db", str(db),
                        "--customers", str(args.customers), "--lines", str(args.lines),
                        "--seed", str(args.seed)], check=True)
    measure(db, args.repeat, workdir)


if __name__ == "__main__":
    main()
