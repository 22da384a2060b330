"""Customer scores at scale: RFM, CLV, churn risk and value tier for N customers, from frames.

    python bench/scores_scale.py [--customers 1000000] [--interactions-per-customer 3]
                                 [--repeat 1] [--seed 0]

Orders are drawn from the BG/NBD and Gamma-Gamma processes (`clv.simulate_transactions`, two
years of purchase days), ~3 % of them cancelled; interactions are spread uniformly over the last
year on random channels. The script times `accord.analytics.scores.score_run` as a whole and its
phases (RFM table, CLV fit + scoring, churn training on at most 100,000 customers, churn scoring
of every buyer with the top-3 reasons), medians of --repeat runs, and prints beside them a
baseline in the same process: a plain pandas RFM (groupby-agg + `qcut` of `rank(method="first")`,
the usual recipe) on the same orders. Peak RSS is printed at the end.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd

from accord.analytics import clv
from accord.analytics.rfm import rfm_table
from accord.analytics.scores import CHANNELS, score_run

AS_OF = pd.Timestamp("2025-01-01", tz="UTC")


def frames(n: int, per_customer: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame,
                                                           pd.DataFrame]:
    cust, dates, amounts = clv.simulate_transactions(
        n, clv.BGNBDParams(0.25, 4.0, 0.8, 2.5), clv.GammaGammaParams(6.0, 4.0, 15.0),
        start="2023-01-01", acquisition_days=365, observation_days=731, time_unit="week",
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    ids = np.arange(1, n + 1)
    customers = pd.DataFrame({
        "id": ids,
        "created_at": pd.Timestamp("2022-12-01", tz="UTC"),
        "country": rng.choice(["DE", "FR", "GB", "ES", "IT"], n),
        "gender": rng.choice(["female", "male"], n),
        "account_id": np.where(rng.random(n) < 0.1, 1.0, np.nan),
    })
    orders = pd.DataFrame({
        "customer_id": cust + 1,
        "ordered_at": pd.to_datetime(dates).tz_localize("UTC") + pd.Timedelta(hours=12),
        "total": np.round(amounts, 2),
        "status": np.where(rng.random(len(cust)) < 0.03, "cancelled", "delivered"),
        "currency": "EUR",
    })
    m = n * per_customer
    interactions = pd.DataFrame({
        "customer_id": rng.integers(1, n + 1, m),
        "occurred_at": AS_OF - pd.to_timedelta(rng.integers(0, 365 * 86400, m), unit="s"),
        "channel": rng.choice(CHANNELS, m),
        "direction": rng.choice(["inbound", "outbound"], m),
        "department": rng.choice(["sales", "support", "marketing"], m),
    })
    return customers, orders, interactions


def baseline_rfm(orders: pd.DataFrame) -> pd.DataFrame:
    valid = orders[~orders["status"].isin(["cancelled", "refunded"])]
    g = valid.groupby("customer_id").agg(last=("ordered_at", "max"), frequency=("total", "size"),
                                         monetary=("total", "sum"))
    g["recency"] = (AS_OF - g["last"]).dt.days
    for col, asc in (("recency", False), ("frequency", True), ("monetary", True)):
        ranked = g[col].rank(method="first", ascending=asc)
        g[col + "_score"] = pd.qcut(ranked, 5, labels=[1, 2, 3, 4, 5]).astype(int)
    return g


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--interactions-per-customer", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t = time.perf_counter()
    customers, orders, interactions = frames(args.customers, args.interactions_per_customer,
                                             args.seed)
    print(f"data: {len(customers):,} customers, {len(orders):,} orders, "
          f"{len(interactions):,} interactions ({time.perf_counter() - t:.1f} s to build)")
    base, _ = timed(lambda: baseline_rfm(orders), args.repeat)
    ours, _ = timed(lambda: rfm_table(orders, AS_OF), args.repeat)
    print(f"RFM table:          {ours:7.2f} s   (baseline pandas groupby+qcut {base:.2f} s, "
          f"ratio {ours / base:.2f})")
    total, run = timed(lambda: score_run(customers, orders, interactions, AS_OF), args.repeat)
    phases = run.timings
    for name, seconds in phases.items():
        print(f"  {name:<18}{seconds:7.2f} s")
    print(f"score_run total:    {total:7.2f} s  ({run.summary()['with_churn_risk']:,} churn "
          f"scores, models: {', '.join(run.models)}; skipped: {run.skipped or 'none'})")
    churn = run.models.get("churn", {})
    if churn:
        print(f"churn model: CV ROC-AUC {churn['roc_auc']:.3f}, trained on "
              f"{churn['data']['rows']:,} customers")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
