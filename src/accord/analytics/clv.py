"""Customer lifetime value: BG/NBD purchase counts and Gamma-Gamma spend, in numpy/scipy.

Why our own implementation: the `lifetimes` package is unmaintained, pulls in autograd, and at a
million customers takes ~11 s to fit and ~9 s to score (bench/clv_fit.py). Everything here is
vectorised and fitted by maximum likelihood with analytical gradients, on the sufficient
statistics (distinct customer histories are fitted once, weighted by how many customers share
them). `tests/analytics/test_clv.py` checks the results against the published CDNOW values and
against `lifetimes` itself.

References:
- Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to the
  Pareto/NBD Model", Marketing Science 24(2) — BG/NBD.
- Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
  Journal of Marketing Research 42(4); Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary
  Value" (brucehardie.com/notes/025) — Gamma-Gamma.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

TIME_UNITS: tuple[str, ...] = ("day", "week")
DAYS_PER_UNIT: dict[str, float] = {"day": 1.0, "week": 7.0}
# Length of the CLV "month" in the time unit, as in lifetimes' customer_lifetime_value.
PERIODS_PER_MONTH: dict[str, float] = {"day": 30.0, "week": 4.345}

MIN_CUSTOMERS = 20
MIN_REPEAT_CUSTOMERS = 10
_LOG_BOUND = 25.0  # |log parameter| bound: keeps exp() finite when the data push to a boundary
# The objectives are mean log-likelihoods (O(1)): stop at a relative change of 1e-13 or a
# projected gradient of 1e-7, far below what 3 significant figures of the parameters need. A
# line search that fails with the gradient already tiny (rounding) counts as converged.
_LBFGS_OPTIONS: dict[str, Any] = {"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-7}
_CONVERGED_GRADIENT = 1e-6
_WARM_START_SAMPLE = 50_000


class CLVDataError(ValueError):
    """The input cannot be used (missing columns, too little valid data): the message says why."""


# --------------------------------------------------------------------------------------------
# Transactions: validation


@dataclass(frozen=True)
class RejectedRow:
    """One problem found in one input row; a row may have several."""

    line: int
    column: str
    reason: str


@dataclass
class Transactions:
    """Valid transaction rows (parallel arrays) and the report of the rejected ones."""

    customer: np.ndarray  # object array of str
    date: np.ndarray  # datetime64[D]
    amount: np.ndarray | None  # float64
    rows_read: int
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def rows_valid(self) -> int:
        return len(self.customer)

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.rows_valid


_TZ_SUFFIX = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")


def _parse_dates(values: pd.Series, date_format: str | None) -> pd.Series:
    """Parse to naive timestamps (NaT where unparseable), keeping the local wall-clock date.

    A purchase's calendar day is the one written in the file: offsets are dropped, not converted
    to UTC, so '2024-01-01T23:30:00-05:00' stays on 1 January.
    """
    fmt = date_format or "ISO8601"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, format=fmt, errors="coerce")
        if parsed.dtype == object:  # mixed offsets (or offset and naive): strip them, re-parse
            stripped = values.str.replace(_TZ_SUFFIX, r"\1", regex=True)
            parsed = pd.to_datetime(stripped, format=fmt, errors="coerce")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed


def validate_transactions(
    frame: pd.DataFrame,
    customer_col: str,
    date_col: str,
    amount_col: str | None = None,
    *,
    known_customers: Collection[str] | None = None,
    date_format: str | None = None,
    first_line: int = 2,
) -> Transactions:
    """Check every row; keep the valid ones and report each problem with its line and column.

    `frame` holds the raw text of the file (dtype str, empty string for an empty cell). Row i
    is reported as line `first_line + i` (line 1 is the CSV header). A row is rejected for a
    missing or unknown customer id, a missing or unparseable date, and a missing, non-numeric,
    non-finite or negative amount (refunds are not purchases).
    """
    missing = [c for c in (customer_col, date_col, amount_col) if c and c not in frame.columns]
    if missing:
        raise CLVDataError(
            f"column(s) {', '.join(repr(c) for c in missing)} not found; "
            f"the file has: {', '.join(map(str, frame.columns))}"
        )
    n = len(frame)
    problems: list[tuple[np.ndarray, str, Any]] = []  # (bad mask, column, reason per bad row)

    cust = frame[customer_col].astype(str).str.strip()
    cust_missing = (cust == "").to_numpy() | frame[customer_col].isna().to_numpy()
    problems.append((cust_missing, customer_col, "missing customer id"))
    if known_customers is not None:
        known = pd.Index(pd.unique(np.asarray([str(k).strip() for k in known_customers], object)))
        unknown = ~cust_missing & ~cust.isin(known).to_numpy()
        problems.append((unknown, customer_col, lambda i: f"unknown customer id {cust.iat[i]!r}"))

    raw_date = frame[date_col].astype(str).str.strip()
    dates = _parse_dates(raw_date, date_format)
    date_missing = (raw_date == "").to_numpy() | frame[date_col].isna().to_numpy()
    date_bad = dates.isna().to_numpy() & ~date_missing
    problems.append((date_missing, date_col, "missing date"))
    fmt_text = f"format {date_format!r}" if date_format else "ISO 8601"
    problems.append(
        (
            date_bad,
            date_col,
            lambda i: f"unparseable date {raw_date.iat[i]!r} (expected {fmt_text})",
        )
    )

    amount: np.ndarray | None = None
    if amount_col is not None:
        raw_amt = frame[amount_col].astype(str).str.strip()
        amount = pd.to_numeric(raw_amt, errors="coerce").to_numpy(dtype=float)
        amt_missing = (raw_amt == "").to_numpy() | frame[amount_col].isna().to_numpy()
        not_number = np.isnan(amount) & ~amt_missing
        with np.errstate(invalid="ignore"):
            infinite = np.isinf(amount)
            negative = amount < 0
        problems.append((amt_missing, amount_col, "missing amount"))
        problems.append((not_number, amount_col, lambda i: f"not a number {raw_amt.iat[i]!r}"))
        problems.append((infinite, amount_col, lambda i: f"not a finite amount {raw_amt.iat[i]!r}"))
        problems.append(
            (negative & ~infinite, amount_col, lambda i: f"negative amount {raw_amt.iat[i]}")
        )

    bad = np.zeros(n, dtype=bool)
    for mask, _, _ in problems:
        bad |= mask
    rejected: list[RejectedRow] = []
    if bad.any():
        entries: list[tuple[int, int, RejectedRow]] = []
        for order, (mask, column, reason) in enumerate(problems):
            for i in np.flatnonzero(mask):
                text = reason(int(i)) if callable(reason) else reason
                entries.append((int(i), order, RejectedRow(first_line + int(i), column, text)))
        entries.sort(key=lambda e: (e[0], e[1]))
        rejected = [e[2] for e in entries]

    good = ~bad
    return Transactions(
        customer=cust.to_numpy(dtype=object)[good],
        date=dates.to_numpy(dtype="datetime64[ns]")[good].astype("datetime64[D]"),
        amount=None if amount is None else amount[good],
        rows_read=n,
        rejected=rejected,
    )


def read_transactions_csv(
    path: str | Path,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str | None = "amount",
    *,
    known_customers: Collection[str] | None = None,
    date_format: str | None = None,
    sep: str | None = ",",
) -> Transactions:
    """Read a transaction CSV as text and validate it (see `validate_transactions`)."""
    path = Path(path)
    if not path.is_file():
        raise CLVDataError("no such file")
    wanted = [c for c in (customer_col, date_col, amount_col) if c]
    try:
        header = pd.read_csv(path, sep=sep, nrows=0, encoding="utf-8-sig")
        missing = [c for c in wanted if c not in header.columns]
        if missing:
            raise CLVDataError(
                f"column(s) {', '.join(repr(c) for c in missing)} not found; "
                f"the file has: {', '.join(map(str, header.columns))}"
            )
        frame = pd.read_csv(
            path, sep=sep, dtype=str, keep_default_na=False, usecols=wanted, encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CLVDataError(f"cannot read as CSV: {exc}") from None
    return validate_transactions(
        frame,
        customer_col,
        date_col,
        amount_col,
        known_customers=known_customers,
        date_format=date_format,
    )


# --------------------------------------------------------------------------------------------
# RFM summary


@dataclass
class RFMSummary:
    """Per customer: repeat purchases x, recency t_x, age T (in `time_unit`), mean repeat spend.

    Purchases of a customer on the same day count as one purchase (their amounts are summed);
    the first purchase starts the customer's clock and is not counted in frequency or spend —
    the conventions of Fader & Hardie and of lifetimes' `summary_data_from_transaction_data`
    with `freq="D"` (and `freq_multiplier=7` for weeks).
    """

    customer_id: np.ndarray
    frequency: np.ndarray  # int64
    recency: np.ndarray  # float64
    T: np.ndarray  # float64
    monetary_value: np.ndarray | None  # float64, 0 when frequency == 0
    time_unit: str
    observation_end: np.datetime64
    transactions_after_end: int = 0

    def __len__(self) -> int:
        return len(self.customer_id)

    def to_frame(self) -> pd.DataFrame:
        data: dict[str, Any] = {
            "frequency": self.frequency,
            "recency": self.recency,
            "T": self.T,
        }
        if self.monetary_value is not None:
            data["monetary_value"] = self.monetary_value
        return pd.DataFrame(data, index=pd.Index(self.customer_id, name="customer_id"))


def _check_time_unit(time_unit: str) -> None:
    if time_unit not in DAYS_PER_UNIT:
        raise CLVDataError(f"time unit must be one of {', '.join(TIME_UNITS)}, not {time_unit!r}")


def rfm_summary(
    customers: Iterable[Any] | np.ndarray,
    dates: Iterable[Any] | np.ndarray,
    amounts: Iterable[float] | np.ndarray | None = None,
    *,
    observation_end: Any = None,
    time_unit: str = "week",
) -> RFMSummary:
    """Summarise transactions into the BG/NBD sufficient statistics (x, t_x, T) and spend.

    Days after `observation_end` (inclusive date; default: the last purchase day) are ignored.
    """
    _check_time_unit(time_unit)
    cust = np.asarray(customers)
    day_values = np.asarray(dates, dtype="datetime64[D]")
    amt = None if amounts is None else np.asarray(amounts, dtype=float)
    if len(cust) != len(day_values) or (amt is not None and len(amt) != len(day_values)):
        raise CLVDataError("customers, dates and amounts must have the same length")
    if len(day_values) == 0:
        raise CLVDataError("no transactions")
    if np.isnat(day_values).any():
        raise CLVDataError("missing dates: check the rows with validate_transactions first")
    days = day_values.astype(np.int64)
    if observation_end is None:
        end = int(days.max())
    else:
        try:
            end_day = pd.Timestamp(observation_end)
        except (ValueError, TypeError):
            raise CLVDataError(f"observation end {observation_end!r} is not a date") from None
        end = int(np.datetime64(end_day.date(), "D").astype(np.int64))
    keep = days <= end
    after = int((~keep).sum())
    if not keep.any():
        raise CLVDataError(
            f"no transactions on or before the observation end {np.datetime64(end, 'D')}"
        )
    if after:
        cust, days = cust[keep], days[keep]
        amt = None if amt is None else amt[keep]

    codes, uniques = pd.factorize(cust)
    if (codes < 0).any():
        raise CLVDataError("missing customer ids: check the rows with validate_transactions first")
    span = int(days.max() - days.min()) + 1
    key = codes.astype(np.int64) * span + (days - days.min())
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    period_start = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
    p_code = codes[order][period_start]
    p_day = days[order][period_start]
    cust_start = np.flatnonzero(np.r_[True, p_code[1:] != p_code[:-1]])
    cust_end = np.r_[cust_start[1:], len(p_code)] - 1
    n_periods = cust_end - cust_start + 1
    first_day = p_day[cust_start]
    last_day = p_day[cust_end]
    unit = DAYS_PER_UNIT[time_unit]
    frequency = (n_periods - 1).astype(np.int64)

    monetary = None
    if amt is not None:
        p_amount = np.add.reduceat(amt[order], period_start)
        p_amount[cust_start] = 0.0  # the first purchase is not a repeat purchase
        repeat_total = np.add.reduceat(p_amount, cust_start)
        with np.errstate(invalid="ignore", divide="ignore"):
            monetary = np.where(frequency > 0, repeat_total / np.maximum(frequency, 1), 0.0)

    return RFMSummary(
        customer_id=np.asarray(uniques)[p_code[cust_start]],
        frequency=frequency,
        recency=(last_day - first_day) / unit,
        T=(end - first_day) / unit,
        monetary_value=monetary,
        time_unit=time_unit,
        observation_end=np.datetime64(end, "D"),
        transactions_after_end=after,
    )


# --------------------------------------------------------------------------------------------
# BG/NBD


@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD: purchase rate λ ~ Gamma(r, α), dropout probability p ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    n_customers: int = 0
    converged: bool = True
    iterations: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product without BLAS: OpenBLAS threads on a busy machine cost more than they save
    here (a fit became 5x slower next to other processes)."""
    return float(np.einsum("i,i->", a, b))


def _converged(res: Any) -> bool:
    at_bound = bool(np.any(np.abs(res.x) >= _LOG_BOUND - 1e-6))
    small = bool(np.all(np.abs(res.jac) <= _CONVERGED_GRADIENT))
    return (bool(res.success) or small) and not at_bound


def _minimize(objective: Any, x0: np.ndarray) -> Any:
    return minimize(
        objective,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(x0),
        options=_LBFGS_OPTIONS,
    )


def _check_rft(frequency: Any, recency: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.asarray(frequency, dtype=float)
    tx = np.asarray(recency, dtype=float)
    t = np.asarray(T, dtype=float)
    x, tx, t = np.broadcast_arrays(x, tx, t)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(tx)) and np.all(np.isfinite(t))):
        raise CLVDataError("frequency, recency and T must be finite numbers")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise CLVDataError("frequency must be a non-negative whole number")
    if np.any(tx < 0) or np.any(tx > t):
        raise CLVDataError("recency must lie between 0 and T")
    if np.any((x == 0) & (tx != 0)):
        raise CLVDataError("recency must be 0 for customers without repeat purchases")
    return x, tx, t


def _codes(*columns: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Group rows by equal values of all `columns`: (row -> group code, per-column group value)."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for col in columns:
        c, u = pd.factorize(col)
        codes, _ = pd.factorize(codes * len(u) + c)  # re-factorised: the key never overflows
    first = np.zeros(codes.max() + 1 if len(codes) else 0, dtype=np.int64)
    first[codes] = np.arange(len(codes))  # any member of a group represents it
    return codes, [col[first] for col in columns]


class _Column:
    """A data column, held as distinct values + codes when it has few (T, t_x at day
    resolution), so that log(α + T) and 1/(α + T) cost one gather instead of one ufunc call."""

    def __init__(self, values: np.ndarray) -> None:
        codes, uniq = pd.factorize(values)
        self.compact = len(uniq) * 4 < len(values)
        self.values, self.codes, self.uniq = values, codes, np.asarray(uniq, dtype=float)

    def log_inv(self, shift: float) -> tuple[np.ndarray, np.ndarray]:
        if self.compact:
            v = shift + self.uniq
            return np.log(v)[self.codes], np.reciprocal(v)[self.codes]
        v = shift + self.values
        return np.log(v), np.reciprocal(v)


class _BGNBDObjective:
    """Negative mean log-likelihood and its gradient in log-parameters, on compressed data.

    Customers without repeat purchases depend on T only; the others on (x, t_x, T): each
    distinct history is evaluated once, weighted by its count. Terms that depend on x alone
    (gammaln, betaln, digamma) are evaluated once per distinct x.
    """

    def __init__(self, x: np.ndarray, tx: np.ndarray, t: np.ndarray, w: np.ndarray) -> None:
        self.total_weight = float(w.sum())
        zero = x == 0
        codes, (t0,) = _codes(t[zero])
        self.t0 = t0
        self.w0 = np.bincount(codes, weights=w[zero], minlength=len(t0))
        self.w_zero = float(self.w0.sum())
        xp, txp, tp = x[~zero], tx[~zero], t[~zero]
        wp = np.zeros(0)
        if len(xp):
            codes, (xp, txp, tp) = _codes(xp, txp, tp)
            wp = np.bincount(codes, weights=w[~zero], minlength=len(xp))
        ux, ix = np.unique(xp, return_inverse=True)
        self.ux, self.ix, self.xp, self.wp = ux, ix, xp, wp
        self.T, self.R = _Column(tp), _Column(txp)
        self.wx = np.bincount(ix, weights=wp, minlength=len(ux))  # weight per distinct x
        self.sum_wx = float(self.wx.sum())

    def __call__(self, log_params: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = np.exp(log_params)
        log_alpha = np.log(alpha)
        # x == 0: ll = r log(α / (α + T))
        l0 = np.log(alpha + self.t0)
        ll = r * (self.w_zero * log_alpha - _dot(self.w0, l0))
        g_r = self.w_zero * log_alpha - _dot(self.w0, l0)
        g_alpha = r * (self.w_zero / alpha - _dot(self.w0, np.reciprocal(alpha + self.t0)))
        g_a = g_b = 0.0
        if len(self.ux):
            ux, ix, wp = self.ux, self.ix, self.wp
            # per distinct x
            lb_ab = betaln(a, b)
            b2 = betaln(a, b + ux) - lb_ab
            b3 = betaln(a + 1.0, b + ux - 1.0) - lb_ab
            d_ab = digamma(a + b) - digamma(a + b + ux)
            # per distinct history: A2 = "alive at T" branch, A3 = "dropped out at t_x" branch
            rx = r + self.xp
            lT, iT = self.T.log_inv(alpha)
            lR, iR = self.R.log_inv(alpha)
            A2 = b2[ix] - rx * lT
            A3 = b3[ix] - rx * lR
            w3 = expit(A3 - A2)  # posterior weight of the dropout branch
            wpw3 = wp * w3
            ll += (
                _dot(self.wx, gammaln(r + ux) - gammaln(r))
                + self.sum_wx * r * log_alpha
                + _dot(wp, np.logaddexp(A2, A3))
            )
            g_r += (
                _dot(self.wx, digamma(r + ux) - digamma(r))
                + self.sum_wx * log_alpha
                - _dot(wp, lT)
                - _dot(wpw3, lR - lT)
            )
            g_alpha += r * self.sum_wx / alpha - _dot(wp * rx, iT + w3 * (iR - iT))
            g_a = _dot(self.wx, d_ab) + wpw3.sum() / a
            w3x = np.bincount(ix, weights=wpw3, minlength=len(ux))
            d_b = d_ab + digamma(b + ux) - digamma(b)
            g_b = _dot(self.wx, d_b) - _dot(w3x, 1.0 / (b + ux - 1.0))
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        n = self.total_weight
        return -ll / n, -grad / n


def bgnbd_log_likelihood(params: BGNBDParams, frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """Per-customer log-likelihood (FHL 2005, eq. 6), evaluated in log space."""
    x, tx, t = _check_rft(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + t)
    a3 = betaln(a + 1.0, b + np.maximum(x, 1.0) - 1.0) - betaln(a, b) - (r + x) * np.log(alpha + tx)
    return a1 + np.where(x > 0, np.logaddexp(a2, a3), a2)


def fit_bgnbd(
    frequency: Any,
    recency: Any,
    T: Any,
    *,
    weights: Any = None,
    min_customers: int = MIN_CUSTOMERS,
    min_repeat_customers: int = MIN_REPEAT_CUSTOMERS,
) -> BGNBDParams:
    """Maximum-likelihood BG/NBD fit (L-BFGS-B on log-parameters, analytical gradient)."""
    x, tx, t = _check_rft(frequency, recency, T)
    x, tx, t = x.ravel(), tx.ravel(), t.ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    n = float(w.sum())
    repeaters = float(w[x > 0].sum())
    if n < min_customers:
        raise CLVDataError(
            f"too little data to fit BG/NBD: {n:.0f} customer(s) (at least {min_customers} needed)"
        )
    if repeaters < min_repeat_customers:
        raise CLVDataError(
            f"too little data to fit BG/NBD: {repeaters:.0f} customer(s) with repeat purchases "
            f"(at least {min_repeat_customers} needed)"
        )
    if not np.any(t > 0):
        raise CLVDataError("too little data to fit BG/NBD: every customer has age T = 0")
    # start: r = a = b = 1 and α matching the mean purchase rate, r / α ≈ Σx / ΣT; on large
    # data, first fit a strided sample of ~50,000 customers and start the full fit from there
    alpha0 = max(float((w * t).sum()) / max(float((w * x).sum()), 1.0), 1e-3)
    x0 = np.log([1.0, alpha0, 1.0, 1.0])
    step = len(x) // _WARM_START_SAMPLE
    if step >= 4 and (x[::step] > 0).sum() >= min_repeat_customers:
        sample = _BGNBDObjective(x[::step], tx[::step], t[::step], w[::step])
        x0 = _minimize(sample, x0).x
    objective = _BGNBDObjective(x, tx, t, w)
    res = _minimize(objective, x0)
    r, alpha, a, b = np.exp(res.x)
    return BGNBDParams(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        log_likelihood=float(-res.fun * objective.total_weight),
        n_customers=int(round(n)),
        converged=_converged(res),
        iterations=int(res.nit),
    )


def bgnbd_expected_purchases(params: BGNBDParams, t: Any) -> np.ndarray:
    """E[X(t)]: repeat purchases of a new customer in t periods (FHL 2005, eq. 9)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    t = np.asarray(t, dtype=float)
    hyp = hyp2f1(r, b, a + b - 1.0, t / (alpha + t))
    return (a + b - 1.0) / (a - 1.0) * (1.0 - hyp * (alpha / (alpha + t)) ** r)


def bgnbd_probability_alive(
    params: BGNBDParams, frequency: Any, recency: Any, T: Any
) -> np.ndarray:
    """P(alive | x, t_x, T) = 1 / (1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x)), in log space."""
    return _p_alive(params, *_check_rft(frequency, recency, T))


def _p_alive(params: BGNBDParams, x: np.ndarray, tx: np.ndarray, t: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    log_odds_dead = (
        np.log(a)
        - np.log(b + np.maximum(x, 1.0) - 1.0)
        + (r + x) * (np.log(alpha + t) - np.log(alpha + tx))
    )
    return np.where(x > 0, expit(-log_odds_dead), 1.0)


def _alive_expected_purchases(
    params: BGNBDParams, t: np.ndarray, x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Expected purchases in (T, T+t] of a customer known to be alive at T (FHL eq. 10 top).

    (a+b+x-1)/(a-1) · [1 - ((α+T)/(α+T+t))^(r+x) · 2F1(r+x, b+x; a+b+x-1; t/(α+T+t))]; where
    2F1 overflows, Euler's transformation 2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a,c-b;c;z) is used.
    """
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    if abs(a - 1.0) < 1e-7:  # removable singularity at a = 1: step beside it
        a = 1.0 + 1e-7
    ha, hb, hc = r + x, b + x, a + b + x - 1.0
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ln_hyp = np.log(hyp2f1(ha, hb, hc, z))
        bad = ~np.isfinite(ln_hyp)
        if np.any(bad):
            ha_, hb_, hc_, z_ = (np.broadcast_to(v, z.shape)[bad] for v in (ha, hb, hc, z))
            ln_hyp[bad] = np.log(hyp2f1(hc_ - ha_, hc_ - hb_, hc_, z_)) + (
                hc_ - ha_ - hb_
            ) * np.log1p(-z_)
    survive = ha * np.log((alpha + T) / (alpha + T + t))  # log ((α+T)/(α+T+t))^(r+x)
    return (a + b + x - 1.0) / (a - 1.0) * -np.expm1(ln_hyp + survive)


def bgnbd_conditional_expected_purchases(
    params: BGNBDParams, t: float, frequency: Any, recency: Any, T: Any
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: a customer's expected repeat purchases in the next t periods."""
    x, tx, age = _check_rft(frequency, recency, T)
    codes, per_pair = _alive_purchases_per_pair(params, [t], x.ravel(), age.ravel())
    p_alive = _p_alive(params, x, tx, age).ravel()
    return (per_pair[codes, 0] * p_alive).reshape(x.shape)


def _alive_purchases_per_pair(
    params: BGNBDParams, horizons: Iterable[float], x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Expected purchases of an alive customer at each horizon, per distinct (x, T) pair.

    The hypergeometric part depends on (x, T) only: it is computed once per distinct pair —
    at day resolution a small fraction of the customers. Returns (row -> pair, pairs × horizons).
    """
    hs = np.asarray(list(horizons), dtype=float)
    codes, (ux, uT) = _codes(x, T)
    return codes, _alive_expected_purchases(params, hs[None, :], ux[:, None], uT[:, None])


# --------------------------------------------------------------------------------------------
# Gamma-Gamma


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma: transaction value ~ Gamma(p, ν), ν ~ Gamma(q, γ)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")
    n_customers: int = 0
    converged: bool = True
    iterations: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def mean_spend(self) -> float:
        """Population mean transaction value p γ / (q - 1) (infinite when q <= 1)."""
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1.0 else float("inf")


def _check_spend(frequency: Any, monetary_value: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(frequency, dtype=float).ravel()
    m = np.asarray(monetary_value, dtype=float).ravel()
    if len(x) != len(m):
        raise CLVDataError("frequency and monetary_value must have the same length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(m))):
        raise CLVDataError("frequency and monetary_value must be finite numbers")
    if np.any(x < 0) or np.any(m < 0):
        raise CLVDataError("frequency and monetary_value must not be negative")
    return x, m


def gamma_gamma_log_likelihood(
    params: GammaGammaParams, frequency: Any, monetary_value: Any
) -> np.ndarray:
    """Per-customer log density of the mean repeat spend z̄ given x purchases (x > 0)."""
    x, m = _check_spend(frequency, monetary_value)
    p, q, g = params.p, params.q, params.gamma
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(g)
        + (p * x - 1.0) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(g + x * m)
    )


class _GammaGammaObjective:
    """Negative mean log-likelihood and gradient in log-parameters; x-only terms per distinct x,
    and the parameter-free terms (Σ log z̄, Σ x log(x z̄)) computed once."""

    def __init__(self, x: np.ndarray, m: np.ndarray) -> None:
        self.x, self.xm, self.n = x, x * m, float(len(x))
        self.ux, ix = np.unique(x, return_inverse=True)
        self.wx = np.bincount(ix, minlength=len(self.ux)).astype(float)
        log_m = np.log(m)
        self.s_xlog = _dot(x, log_m + np.log(x))
        self.s_logm = float(log_m.sum())

    def __call__(self, log_params: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, g = np.exp(log_params)
        x, ux, wx, n = self.x, self.ux, self.wx, self.n
        shifted = g + self.xm
        lg = np.log(shifted)
        inv = np.reciprocal(shifted)
        x_lg, sum_lg = _dot(x, lg), lg.sum()
        px = p * ux
        ll = (
            _dot(wx, gammaln(px + q) - gammaln(px))
            - n * gammaln(q)
            + n * q * np.log(g)
            + p * (self.s_xlog - x_lg)
            - self.s_logm
            - q * sum_lg
        )
        dg_pxq = digamma(px + q)
        g_p = _dot(wx, ux * (dg_pxq - digamma(px))) + self.s_xlog - x_lg
        g_q = _dot(wx, dg_pxq) - n * digamma(q) + n * np.log(g) - sum_lg
        g_g = n * q / g - p * _dot(x, inv) - q * inv.sum()
        grad = np.array([g_p * p, g_q * q, g_g * g])
        return -ll / n, -grad / n


def fit_gamma_gamma(
    frequency: Any,
    monetary_value: Any,
    *,
    min_customers: int = MIN_REPEAT_CUSTOMERS,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit on the customers with repeat purchases.

    Customers with x = 0 carry no spend information (their z̄ is undefined) and are left out,
    as are repeat customers whose repeat purchases were all free (z̄ = 0, outside the model);
    `n_customers` is the number actually used.
    """
    x, m = _check_spend(frequency, monetary_value)
    use = (x > 0) & (m > 0)
    x, m = x[use], m[use]
    if len(x) < min_customers:
        raise CLVDataError(
            f"too little data to fit Gamma-Gamma: {len(x)} customer(s) with repeat purchases of "
            f"positive value (at least {min_customers} needed)"
        )
    # start at p = 1, q = 2 and γ matching the mean spend, p γ / (q - 1) ≈ mean(z̄); on large
    # data, first fit a strided sample (as for BG/NBD)
    x0 = np.log([1.0, 2.0, max(float(m.mean()), 1e-6)])
    step = len(x) // _WARM_START_SAMPLE
    if step >= 4:
        x0 = _minimize(_GammaGammaObjective(x[::step], m[::step]), x0).x
    objective = _GammaGammaObjective(x, m)
    res = _minimize(objective, x0)
    p, q, g = np.exp(res.x)
    return GammaGammaParams(
        p=float(p),
        q=float(q),
        gamma=float(g),
        log_likelihood=float(-res.fun * len(x)),
        n_customers=len(x),
        converged=_converged(res),
        iterations=int(res.nit),
    )


def gamma_gamma_expected_spend(
    params: GammaGammaParams, frequency: Any, monetary_value: Any
) -> np.ndarray:
    """E[Z | x, z̄] = (q-1)/(px+q-1) · pγ/(q-1) + px/(px+q-1) · z̄: shrinks z̄ to the mean."""
    x, m = _check_spend(frequency, monetary_value)
    p, q, g = params.p, params.q, params.gamma
    if q <= 1.0:
        raise CLVDataError(
            f"Gamma-Gamma q = {q:.3g} <= 1: the population mean spend is infinite, so the "
            "expected spend of a customer without repeat purchases is undefined"
        )
    return p * (g + x * m) / (p * x + q - 1.0)


# --------------------------------------------------------------------------------------------
# CLV


def customer_lifetime_value(
    bgnbd: BGNBDParams,
    gamma_gamma: GammaGammaParams,
    frequency: Any,
    recency: Any,
    T: Any,
    monetary_value: Any,
    *,
    time_unit: str = "week",
    horizon_months: int = 12,
    discount_rate: float = 0.01,
) -> np.ndarray:
    """Discounted expected spend over the horizon: see `score_customers`."""
    return score_customers(
        bgnbd,
        gamma_gamma,
        frequency,
        recency,
        T,
        monetary_value,
        time_unit=time_unit,
        horizon_months=horizon_months,
        discount_rate=discount_rate,
    )["clv"].to_numpy()


def score_customers(
    bgnbd: BGNBDParams,
    gamma_gamma: GammaGammaParams,
    frequency: Any,
    recency: Any,
    T: Any,
    monetary_value: Any,
    *,
    time_unit: str = "week",
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    index: Any = None,
) -> pd.DataFrame:
    """Per customer: expected purchases over the horizon, P(alive), expected spend and CLV.

    CLV = Σ_{i=1..H} E[purchases in month i] · E[spend] / (1 + d)^i, a month being 30 days or
    4.345 weeks — lifetimes' `customer_lifetime_value` definition, so the figures compare.
    """
    _check_time_unit(time_unit)
    if horizon_months < 1:
        raise CLVDataError("the CLV horizon must be at least 1 month")
    if discount_rate <= -1.0:
        raise CLVDataError("the discount rate must be greater than -1")
    x, tx, age = _check_rft(frequency, recency, T)
    x, tx, age = x.ravel(), tx.ravel(), age.ravel()
    spend = gamma_gamma_expected_spend(gamma_gamma, x, monetary_value)
    months = np.arange(1, horizon_months + 1, dtype=float)
    codes, alive = _alive_purchases_per_pair(bgnbd, months * PERIODS_PER_MONTH[time_unit], x, age)
    per_month = np.diff(alive, axis=1, prepend=0.0)
    discounted = np.einsum("ij,j->i", per_month, (1.0 + discount_rate) ** -months)  # per pair
    p_alive = _p_alive(bgnbd, x, tx, age)
    return pd.DataFrame(
        {
            "expected_purchases": p_alive * alive[codes, -1],
            "p_alive": p_alive,
            "expected_spend": spend,
            "clv": spend * p_alive * discounted[codes],
        },
        index=index,
    )


# --------------------------------------------------------------------------------------------
# Everything from a transaction file


@dataclass
class CLVResult:
    """Fitted models, the summary they were fitted on, the scores and the input report."""

    transactions: Transactions
    summary: RFMSummary
    bgnbd: BGNBDParams
    gamma_gamma: GammaGammaParams
    scores: pd.DataFrame
    horizon_months: int
    discount_rate: float

    def report(self) -> dict[str, Any]:
        """The JSON document printed by `accord analytics clv --json`."""
        s, tx = self.summary, self.transactions
        clv = self.scores["clv"]
        return {
            "bgnbd": _rounded(self.bgnbd.as_dict()),
            "gamma_gamma": _rounded(self.gamma_gamma.as_dict()),
            "time_unit": s.time_unit,
            "observation_end": str(s.observation_end),
            "counts": {
                "rows_read": tx.rows_read,
                "rows_valid": tx.rows_valid,
                "rows_rejected": tx.rows_rejected,
                "rows_after_observation_end": s.transactions_after_end,
                "customers": len(s),
                "customers_with_repeat_purchases": int((s.frequency > 0).sum()),
            },
            "clv": {
                "horizon_months": self.horizon_months,
                "discount_rate": self.discount_rate,
                "total": _r(float(clv.sum())),
                "mean": _r(float(clv.mean())),
                "median": _r(float(clv.median())),
                "expected_purchases_total": _r(float(self.scores["expected_purchases"].sum())),
            },
            "rejected": [asdict(r) for r in tx.rejected],
        }


def _r(value: float) -> float:
    return float(f"{value:.10g}")


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _r(v) if isinstance(v, float) else v for k, v in d.items()}


def fit_clv(
    transactions: Transactions,
    *,
    observation_end: Any = None,
    time_unit: str = "week",
    horizon_months: int = 12,
    discount_rate: float = 0.01,
) -> CLVResult:
    """Summarise the valid transactions, fit both models and score every customer."""
    if transactions.amount is None:
        raise CLVDataError("an amount column is needed for the spend model")
    if transactions.rows_valid == 0:
        raise CLVDataError(
            f"no valid transactions: all {transactions.rows_read} rows were rejected"
        )
    summary = rfm_summary(
        transactions.customer,
        transactions.date,
        transactions.amount,
        observation_end=observation_end,
        time_unit=time_unit,
    )
    bg = fit_bgnbd(summary.frequency, summary.recency, summary.T)
    gg = fit_gamma_gamma(summary.frequency, summary.monetary_value)
    scores = score_customers(
        bg,
        gg,
        summary.frequency,
        summary.recency,
        summary.T,
        summary.monetary_value,
        time_unit=time_unit,
        horizon_months=horizon_months,
        discount_rate=discount_rate,
        index=pd.Index(summary.customer_id, name="customer_id"),
    )
    return CLVResult(transactions, summary, bg, gg, scores, horizon_months, discount_rate)


# --------------------------------------------------------------------------------------------
# Synthetic data (benchmarks, tests)


def simulate_transactions(
    n_customers: int,
    bgnbd: BGNBDParams,
    gamma_gamma: GammaGammaParams | None = None,
    *,
    start: str = "2023-01-01",
    acquisition_days: int = 365,
    observation_days: int = 730,
    time_unit: str = "week",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Transactions drawn from the BG/NBD (and Gamma-Gamma) processes: (customer, date, amount).

    Customer i makes its first purchase on a uniform day of the acquisition window; repeat
    purchases follow a Poisson process with rate λ ~ Gamma(r, α) (per `time_unit`), and after
    each repeat purchase it drops out with probability p ~ Beta(a, b). Values are Gamma(p, ν) with
    ν ~ Gamma(q, γ). Times are cut to whole days, so a few purchases fall on the same day.
    """
    _check_time_unit(time_unit)
    rng = np.random.default_rng(seed)
    unit = DAYS_PER_UNIT[time_unit]
    first_day = rng.integers(0, acquisition_days, n_customers)
    age = (observation_days - first_day) / unit  # T, in time units
    lam = rng.gamma(bgnbd.r, 1.0 / bgnbd.alpha, n_customers)
    drop = rng.beta(bgnbd.a, bgnbd.b, n_customers)
    lives = rng.geometric(drop)  # dies right after its J-th repeat purchase
    n_events = rng.poisson(lam * age)  # repeat purchases of an immortal customer in (0, T]
    x = np.minimum(lives, n_events)
    # times of the first x of n uniform order statistics on (0, T]: S_k / (S_x + Gamma(n - x + 1))
    cust = np.repeat(np.arange(n_customers), x)
    t_days = np.zeros(0, dtype=np.int64)
    if len(cust):
        cum = np.cumsum(rng.exponential(1.0, len(cust)))
        ends = np.cumsum(x)
        starts = ends - x
        base = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)  # sum before the block
        s_x = np.where(x > 0, cum[np.maximum(ends - 1, 0)], 0.0) - base
        rest = rng.gamma(n_events - x + 1.0)
        u = (cum - base[cust]) / (s_x + rest)[cust]
        t_days = np.floor(u * age[cust] * unit).astype(np.int64)
    all_cust = np.r_[np.arange(n_customers), cust]
    all_days = np.r_[first_day, first_day[cust] + t_days]
    dates = np.datetime64(start, "D") + all_days
    amounts = None
    if gamma_gamma is not None:
        nu = rng.gamma(gamma_gamma.q, 1.0 / gamma_gamma.gamma, n_customers)
        amounts = rng.gamma(gamma_gamma.p, 1.0 / nu[all_cust])
    return all_cust, dates, amounts
