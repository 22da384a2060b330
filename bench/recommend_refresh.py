"""Recommendations refresh into the store: load → fit → top-10 per customer → bulk write-back.

    python bench/recommend_refresh.py [--customers 50000] [--lines-per-customer 10]
                                      [--products 1000] [--url sqlite:///...] [--seed 0]

Seeds a fresh migrated database (default: a temporary SQLite file) with planted purchases
(`accord.analytics.recommend.planted_orders`), then times `refresh_recommendations` as a whole
and its phases (load + fit, recommend, write), twice (the second run replaces the first), and
prints beside them a baseline in the same process: the same fit and top-10 frame computed from an
in-memory frame with no database. Peak RSS is printed at the end.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
from sqlalchemy import func, insert, select

from accord.analytics.recommend import (
    fit_recommender,
    planted_orders,
    prepare_lines,
    recommendations_frame,
)
from accord.analytics.recommend_service import refresh_recommendations
from accord.core import db as dbmod
from accord.core.migrate import upgrade
from accord.models import Customer, CustomerRecommendation, Order, OrderLine, Product

CHUNK = 50_000


def seed(url: str, customers: int, lines: int, products: int, seed_: int) -> int:
    df = planted_orders(customers, lines, products, seed=seed_)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with dbmod.session_scope(url) as s:
        s.execute(insert(Product.__table__), [
            {"id": p + 1, "sku": f"SKU-{p}", "name": f"Product {p}", "price": Decimal("9.90"),
             "currency": "EUR", "active": True, "created_at": now, "updated_at": now,
             "version": 1} for p in range(products)])
        for start in range(0, customers, CHUNK):
            s.execute(insert(Customer.__table__), [
                {"id": c + 1, "first_name": "C", "last_name": str(c), "display_name": f"C {c}",
                 "name_key": f"c{c}", "name_key_alt": f"c{c}", "created_at": now,
                 "updated_at": now, "version": 1}
                for c in range(start, min(customers, start + CHUNK))])
        orders = df.drop_duplicates("order_id")
        ids, cust = orders["order_id"].to_numpy(), orders["customer_id"].to_numpy()
        when = [t.to_pydatetime() for t in orders["ordered_at"].dt.tz_localize("UTC")]
        for start in range(0, len(orders), CHUNK):
            s.execute(insert(Order.__table__), [
                {"id": int(ids[i]) + 1, "customer_id": int(cust[i]) + 1, "number": f"O{ids[i]}",
                 "status": "paid", "currency": "EUR", "total": Decimal("9.90"),
                 "ordered_at": when[i], "created_at": now, "updated_at": now, "version": 1}
                for i in range(start, min(len(orders), start + CHUNK))])
        o, p = df["order_id"].to_numpy(), df["product_id"].to_numpy()
        for start in range(0, len(df), CHUNK):
            s.execute(insert(OrderLine.__table__), [
                {"order_id": int(o[i]) + 1, "product_id": int(p[i]) + 1, "description": "x",
                 "quantity": 1, "unit_price": Decimal("9.90"), "line_total": Decimal("9.90")}
                for i in range(start, min(len(df), start + CHUNK))])
    return len(df)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=50_000)
    ap.add_argument("--lines-per-customer", type=int, default=10)
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--url", default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
    upgrade(url)
    t = time.perf_counter()
    n_lines = seed(url, args.customers, args.customers * args.lines_per_customer,
                   args.products, args.seed)
    print(f"seeded {args.customers:,} customers, {n_lines:,} order lines in "
          f"{time.perf_counter() - t:.1f} s ({url.split(':')[0]})")
    runs = []
    for _ in range(2):
        with dbmod.session_scope(url) as s:
            t = time.perf_counter()
            summary = refresh_recommendations(s)
            total = time.perf_counter() - t
        runs.append(total)
        print(f"refresh: {total:.2f} s total, phases {summary['seconds']}, "
              f"{summary['recommendations']:,} suggestions, {summary['associations']:,} pairs")
    with dbmod.session_scope(url) as s:
        stored = s.scalar(select(func.count()).select_from(CustomerRecommendation))
    print(f"stored rows after two runs: {stored:,} (no duplicates: "
          f"{stored == summary['recommendations']})")
    df = planted_orders(args.customers, args.customers * args.lines_per_customer, args.products,
                        seed=args.seed)
    t = time.perf_counter()
    frame = recommendations_frame(fit_recommender(prepare_lines(df)), with_reasons=False)
    base = time.perf_counter() - t
    print(f"baseline (in memory, no database): fit + top-10 frame {base:.2f} s, "
          f"{len(frame):,} rows; refresh / baseline = {float(np.median(runs)) / base:.1f}x")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    dbmod.dispose_all()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
