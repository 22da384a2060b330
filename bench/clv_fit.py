"""CLV at scale: BG/NBD + Gamma-Gamma fit and scoring time for N customers, beside `lifetimes`.

    python bench/clv_fit.py [--customers 1000000] [--lifetimes-customers N] [--repeat 3]
                            [--seed 0] [--no-lifetimes]

Transactions are drawn from the BG/NBD and Gamma-Gamma processes themselves (CDNOW-like
parameters, time unit weeks, purchase days over two years; see
`accord.analytics.clv.simulate_transactions`). For our implementation it times, each as the
median of --repeat runs: the RFM summary from the transaction arrays, the fit (BG/NBD + Gamma-
Gamma) and the scoring of every customer (12-month expected purchases, P(alive), expected spend,
12-month discounted CLV). Peak memory is measured in a separate, untimed run of each step with
tracemalloc (numpy's allocations included). Then `lifetimes` does the same work (summary with
freq="D", freq_multiplier=7; BetaGeoFitter; GammaGammaFitter; predict, P(alive) and
customer_lifetime_value) on the first --lifetimes-customers customers (default: all), once,
and the per-customer rates are compared. Targets (issue 4): fit < 3 s, scoring < 0.5 s at
1,000,000 customers.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from accord.analytics import clv

TRUE_BG = clv.BGNBDParams(r=0.25, alpha=4.0, a=0.8, b=2.5)
TRUE_GG = clv.GammaGammaParams(p=6.0, q=4.0, gamma=15.0)
HORIZON, DISCOUNT = 12, 0.01


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process)."""
    gc.collect()
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def peak_mb(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


class Ours:
    def __init__(self, customers: np.ndarray, dates: np.ndarray, amounts: np.ndarray) -> None:
        self.data = (customers, dates, amounts)
        self.summary: clv.RFMSummary | None = None
        self.models: tuple[clv.BGNBDParams, clv.GammaGammaParams] | None = None

    def summarise(self) -> clv.RFMSummary:
        self.summary = clv.rfm_summary(*self.data, time_unit="week")
        return self.summary

    def fit(self) -> tuple[clv.BGNBDParams, clv.GammaGammaParams]:
        s = self.summary
        assert s is not None
        bg = clv.fit_bgnbd(s.frequency, s.recency, s.T)
        gg = clv.fit_gamma_gamma(s.frequency, s.monetary_value)
        self.models = (bg, gg)
        return self.models

    def score(self) -> pd.DataFrame:
        s, (bg, gg) = self.summary, self.models  # type: ignore[misc]
        assert s is not None
        return clv.score_customers(
            bg,
            gg,
            s.frequency,
            s.recency,
            s.T,
            s.monetary_value,
            time_unit="week",
            horizon_months=HORIZON,
            discount_rate=DISCOUNT,
        )


def run_ours(data: tuple[np.ndarray, ...], repeat: int, label: str) -> dict[str, Any]:
    ours = Ours(*data)
    times: dict[str, list[tuple[float, float]]] = {"summary": [], "fit": [], "score": []}
    steps = {"summary": ours.summarise, "fit": ours.fit, "score": ours.score}
    for _ in range(repeat):
        for step, fn in steps.items():
            _, wall, cpu = timed(fn)
            times[step].append((wall, cpu))
    med = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for k, v in times.items()
    }
    peaks = {step: peak_mb(fn) for step, fn in steps.items()}
    bg, gg = ours.models  # type: ignore[misc]
    print(f"\n[accord.analytics.clv] {label}")
    for step in ("summary", "fit", "score"):
        wall, cpu = med[step]
        print(f"  {step:<8} {wall:7.3f} s wall  {cpu:7.3f} s CPU   peak {peaks[step]:7.1f} MiB")
    print(
        f"  BG/NBD r={bg.r:.4f} alpha={bg.alpha:.4f} a={bg.a:.4f} b={bg.b:.4f} "
        f"LL={bg.log_likelihood:.1f} converged={bg.converged}"
    )
    print(
        f"  Gamma-Gamma p={gg.p:.4f} q={gg.q:.4f} gamma={gg.gamma:.4f} "
        f"({gg.n_customers} repeat customers) converged={gg.converged}"
    )
    return {"times": med, "peaks": peaks, "bg": bg, "gg": gg, "n": len(ours.summary)}  # type: ignore[arg-type]


def run_lifetimes(data: tuple[np.ndarray, ...]) -> dict[str, Any] | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lifetimes import BetaGeoFitter, GammaGammaFitter
            from lifetimes.utils import summary_data_from_transaction_data
    except ImportError as exc:
        print(f"\n[lifetimes] not available: {exc}")
        return None
    customers, dates, amounts = data
    frame = pd.DataFrame({"c": customers, "d": dates, "a": amounts})
    warnings.simplefilter("ignore")

    def summary() -> pd.DataFrame:
        return summary_data_from_transaction_data(
            frame, "c", "d", monetary_value_col="a", freq="D", freq_multiplier=7
        )

    s, t_sum, c_sum = timed(summary)

    def fit() -> tuple[Any, Any]:
        bgf = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
        rep = s[s["frequency"] > 0]
        ggf = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
        return bgf, ggf

    (bgf, ggf), t_fit, c_fit = timed(fit)

    def score() -> tuple[Any, ...]:
        x, tx, age, m = s["frequency"], s["recency"], s["T"], s["monetary_value"]
        expected = bgf.predict(HORIZON * 4.345, x, tx, age)
        alive = bgf.conditional_probability_alive(x, tx, age)
        value = ggf.customer_lifetime_value(
            bgf, x, tx, age, m, time=HORIZON, discount_rate=DISCOUNT, freq="W"
        )
        return expected, alive, value

    _, t_score, c_score = timed(score)
    r, alpha, a, b = bgf.params_.to_numpy()
    p, q, g = ggf.params_.to_numpy()
    print(f"\n[lifetimes] {len(s):,} customers, once")
    for step, wall, cpu in (
        ("summary", t_sum, c_sum),
        ("fit", t_fit, c_fit),
        ("score", t_score, c_score),
    ):
        print(f"  {step:<8} {wall:7.3f} s wall  {cpu:7.3f} s CPU")
    print(f"  BG/NBD r={r:.4f} alpha={alpha:.4f} a={a:.4f} b={b:.4f}")
    print(f"  Gamma-Gamma p={p:.4f} q={q:.4f} gamma={g:.4f}")
    return {
        "times": {"summary": (t_sum, c_sum), "fit": (t_fit, c_fit), "score": (t_score, c_score)},
        "n": len(s),
        "params": np.array([r, alpha, a, b, p, q, g]),
    }


def subset(data: tuple[np.ndarray, ...], n: int) -> tuple[np.ndarray, ...]:
    customers = data[0]
    keep = customers < n  # customer ids are 0..N-1, independent draws
    return tuple(col[keep] for col in data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--lifetimes-customers", type=int, default=None, help="default: all")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-lifetimes", action="store_true")
    args = ap.parse_args()

    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, pandas {pd.__version__}")
    data, t_gen, _ = timed(
        lambda: clv.simulate_transactions(args.customers, TRUE_BG, TRUE_GG, seed=args.seed)
    )
    print(
        f"generated {args.customers:,} customers, {len(data[0]):,} transactions in {t_gen:.2f} s"
        f" (true BG/NBD r=0.25 alpha=4 a=0.8 b=2.5; Gamma-Gamma p=6 q=4 gamma=15; weeks)"
    )

    ours = run_ours(data, args.repeat, f"{args.customers:,} customers, median of {args.repeat}")
    fit_s, score_s = ours["times"]["fit"][0], ours["times"]["score"][0]
    verdict = "met" if fit_s < 3 and score_s < 0.5 else "NOT met"
    print(
        f"  targets at this size (fit < 3 s, scoring < 0.5 s): {verdict}"
        + ("" if args.customers == 1_000_000 else " (targets are for 1,000,000)")
    )

    if args.no_lifetimes:
        return
    n_lt = min(args.lifetimes_customers or args.customers, args.customers)
    lt_data = data if n_lt == args.customers else subset(data, n_lt)
    if n_lt < args.customers:
        print(f"\nlifetimes runs on a subset: the first {n_lt:,} of {args.customers:,} customers")
        same = run_ours(
            lt_data, args.repeat, f"same {n_lt:,}-customer subset, median of {args.repeat}"
        )
    else:
        same = ours
    lt = run_lifetimes(lt_data)
    if lt is None:
        return
    mine = np.array(
        [
            same["bg"].r,
            same["bg"].alpha,
            same["bg"].a,
            same["bg"].b,
            same["gg"].p,
            same["gg"].q,
            same["gg"].gamma,
        ]
    )
    print(
        f"\nparameters, largest relative difference to lifetimes on the same data: "
        f"{np.max(np.abs(mine / lt['params'] - 1)):.1e}"
    )
    print("\nper-customer rates (customers per CPU second; ratio = accord / lifetimes):")
    for step in ("summary", "fit", "score"):
        ours_rate = same["n"] / same["times"][step][1]
        lt_rate = lt["n"] / lt["times"][step][1]
        print(
            f"  {step:<8} accord {ours_rate:14,.0f}/s   lifetimes {lt_rate:12,.0f}/s   "
            f"x{ours_rate / lt_rate:,.1f}"
        )
    print(
        f"\nprocess peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
