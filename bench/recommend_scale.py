"""Recommendations at scale: bought-together, item-kNN fit and top-10 for every customer.

    python bench/recommend_scale.py [CUSTOMERS] [--lines N] [--products P] [--seed S] [--als]

Generates (seeded) CUSTOMERS customers (default 1,000,000) with N order lines (default 10 per
customer) over P products (default 1,000) with a planted preference structure (a taste group per
customer, a partner per product: `accord.analytics.recommend.planted_orders`), then times, in one
process: validating/encoding the lines, the bought-together table, the item-kNN fit, top-10
codes for every customer, the storable frame with and without the reason texts
(`recommendations_frame`), and the
time-split evaluation, printing precision@10 of item-kNN beside the popularity baseline. With
`--als` (needs `implicit`, not a dependency) ALS is fitted and evaluated in the same split.
Peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit warns about threaded BLAS

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from accord.analytics.recommend import (  # noqa: E402
    bought_together,
    evaluate_time_split,
    fit_recommender,
    planted_orders,
    prepare_lines,
    recommendations_frame,
)


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"{label:<44} {time.perf_counter() - t:8.2f} s   rss {rss_mb():7.0f} MB")
    return out


def als_model(factors: int = 64, iterations: int = 15) -> Any:
    def fit_and_recommend(history: sp.csr_matrix, k: int, rows: np.ndarray) -> np.ndarray:
        from implicit.cpu.als import AlternatingLeastSquares

        als = AlternatingLeastSquares(
            factors=factors, iterations=iterations, regularization=0.05, alpha=10.0,
            num_threads=1, random_state=0,
        )
        t = time.perf_counter()
        als.fit(history, show_progress=False)
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        codes, _ = als.recommend(rows, history[rows], N=k, filter_already_liked_items=True)
        print(f"{'  ALS fit (1 thread) / top-10 (test)':<44} {fit_s:8.2f} s / "
              f"{time.perf_counter() - t:.2f} s")
        return codes

    return fit_and_recommend


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("customers", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--lines", type=int, default=None, help="order lines (default 10/customer)")
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--als", action="store_true", help="also measure implicit ALS")
    ap.add_argument("--no-reasons", action="store_true", help="skip the reason texts")
    args = ap.parse_args()
    n_lines = args.lines or 10 * args.customers
    print(f"{args.customers:,} customers, {n_lines:,} order lines, {args.products:,} products, "
          f"seed {args.seed}")
    df = timed("generate (not part of the figures)", planted_orders, args.customers, n_lines,
               args.products, seed=args.seed)
    print(f"  {len(df):,} lines, {df['order_id'].nunique():,} orders")
    base = rss_mb()
    t0 = time.perf_counter()
    lines = timed("validate + encode lines", prepare_lines, df)
    del df
    together = timed("bought together (top 10, ≥ 2 orders)", bought_together, lines, top_n=10)
    model = timed("item-kNN fit (100 neighbours)", fit_recommender, lines)
    rows = np.arange(lines.n_customers)
    timed("top-10 for all customers (codes + scores)", model.top_k_codes, rows, 10)
    fit_total = time.perf_counter() - t0
    timed("popularity top-10 for all (baseline)", model.top_k_codes, rows, 10, model="popular")
    frame = timed("top-10 for all, frame with because ids", recommendations_frame, model,
                  with_reasons=False)
    del frame
    if not args.no_reasons:
        frame = timed("top-10 for all, with reasons (frame)", recommendations_frame, model)
        print(f"  {len(frame):,} rows; e.g. {frame['reason'].iloc[0]!r}")
        del frame
    print(f"{'fit + score total (without reason texts)':<44} {fit_total:8.2f} s")
    print(f"  bought-together pairs kept: {len(together):,}")
    extra = {"als": als_model()} if args.als else None
    report = timed("time-split evaluation (refits on train)", evaluate_time_split, lines,
                   extra_models=extra)
    print(f"split {report['split_date']}: {report['customers_evaluated']:,} customers evaluated "
          f"({report['train_lines']:,} train / {report['test_lines']:,} test lines)")
    print(f"{'model':<12} {'precision@10':>13} {'recall@10':>10} {'hit rate':>9} {'coverage':>9}")
    for name, m in report["models"].items():
        print(f"{name:<12} {m['precision_at_k']:13.4f} {m['recall_at_k']:10.4f} "
              f"{m['hit_rate']:9.4f} {m['coverage']:9.3f}")
    print(f"item-kNN / popularity precision@10: {report['lift_over_popularity']:.2f}x")
    print(f"memory: rss after generation {base:,.0f} MB, peak {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
