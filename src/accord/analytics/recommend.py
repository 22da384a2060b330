"""Upsell and cross-sell recommendations from order baskets: "bought together" and item-kNN.

Why these two models: association rules (support, confidence, lift) are what merchandisers know
and can check by hand; item-kNN (cosine similarity of products over the customer × product
matrix) is personalised, explainable ("bought X and Y; customers who bought those also bought
Z"), needs no training loop and is a strong baseline on purchase data. Both are a handful of
sparse counts (scipy.sparse, np.bincount), so each fits 10 M order lines in ~5 s. `implicit` ALS
was measured beside item-kNN in `bench/recommend_scale.py` (see docs/analytics.md) and is not
needed.

Input: one row per order line with a customer, an order, a product and the order date. Rows
with a missing id or an unparseable date are rejected row by row (`Lines.rejected`) and the rest
is used; too little valid data raises `RecommendInputError` with the reason.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

MIN_ORDERS = 2
MIN_PRODUCTS = 2
DEFAULT_NEIGHBOURS = 100
DENSE_LIMIT = 5000  # up to this many products the similarity is also kept dense (≤ 100 MB)
REASON_POPULAR = "popular with all customers"
REASON_POPULAR_NEW = "popular with all customers (no purchase history yet)"
# Columns of `recommendations_frame`: what the lead stores per customer and suggestion.
RECOMMENDATION_COLUMNS: tuple[str, ...] = (
    "customer_id", "rank", "product_id", "score", "reason", "because_product_id_1",
    "because_product_id_2", "model", "generated_at",
)
BOUGHT_TOGETHER_COLUMNS: tuple[str, ...] = (
    "product_id", "rank", "other_product_id", "orders_together", "support", "confidence", "lift",
)


class RecommendInputError(ValueError):
    """The order lines cannot be used (missing column, too little valid data): says why."""


@dataclass(frozen=True)
class RejectedLine:
    """One rejected input row (0-based position in the frame given) and why."""

    row: int
    column: str
    reason: str


@dataclass
class Lines:
    """Validated order lines with integer codes for customers, orders and products."""

    frame: pd.DataFrame  # customer, order, product (codes), ordered_at (datetime64)
    customers: pd.Index  # code → customer id
    products: pd.Index  # code → product id
    rows_read: int
    rejected: list[RejectedLine] = field(default_factory=list)

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    @property
    def n_products(self) -> int:
        return len(self.products)


def prepare_lines(
    df: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    order_col: str = "order_id",
    product_col: str = "product_id",
    date_col: str | None = "ordered_at",
) -> Lines:
    """Check the columns, reject rows with a missing id or bad date, and encode ids as codes."""
    wanted = [customer_col, order_col, product_col] + ([date_col] if date_col else [])
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns))
        raise RecommendInputError(f"no column {', '.join(map(repr, missing))} (columns: {have})")
    n = len(df)
    bad = np.zeros(n, dtype=bool)
    rejected: list[RejectedLine] = []
    for col in (customer_col, order_col, product_col):
        values = df[col]
        blank = values.isna().to_numpy()
        if values.dtype == object:
            blank |= values.astype(str).str.strip().eq("").to_numpy()
        for i in np.flatnonzero(blank & ~bad)[:1000]:
            rejected.append(RejectedLine(int(i), col, "missing"))
        bad |= blank
    if date_col:
        raw = df[date_col]
        dates = raw if pd.api.types.is_datetime64_any_dtype(raw) else pd.to_datetime(
            raw, errors="coerce", format="ISO8601", utc=True
        )
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
        nat = dates.isna().to_numpy()
        for i in np.flatnonzero(nat & ~bad)[:1000]:
            reason = "missing" if pd.isna(raw.iloc[i]) else f"not a date: {raw.iloc[i]!r}"
            rejected.append(RejectedLine(int(i), date_col, reason))
        bad |= nat
    else:
        dates = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    keep = ~bad
    cust_codes, customers = pd.factorize(df[customer_col].to_numpy()[keep])
    order_codes, _ = pd.factorize(df[order_col].to_numpy()[keep])
    prod_codes, products = pd.factorize(df[product_col].to_numpy()[keep])
    frame = pd.DataFrame({
        "customer": cust_codes.astype(np.int32),
        "order": order_codes.astype(np.int64),
        "product": prod_codes.astype(np.int32),
        "ordered_at": dates.to_numpy()[keep],
    })
    rejected.sort(key=lambda r: r.row)
    return Lines(frame, pd.Index(customers), pd.Index(products), n, rejected)


def order_lines_from_tables(
    orders: pd.DataFrame,
    order_lines: pd.DataFrame,
    *,
    exclude_statuses: Collection[str] = ("cancelled", "refunded"),
) -> pd.DataFrame:
    """Order lines with their order's customer and date, from the `orders`/`order_lines` tables.

    Cancelled and refunded orders are not purchases; lines without a product (free-text lines)
    cannot be recommended and are left out here, on purpose.
    """
    o = orders[["id", "customer_id", "ordered_at"] + (["status"] if "status" in orders else [])]
    if "status" in o:
        o = o[~o["status"].isin(list(exclude_statuses))]
    lines = order_lines[order_lines["product_id"].notna()][["order_id", "product_id"]]
    out = lines.merge(o.rename(columns={"id": "order_id"}), on="order_id", how="inner")
    return out[["customer_id", "order_id", "product_id", "ordered_at"]]


def _check_enough(lines: Lines, where: str = "") -> None:
    n_orders = lines.frame["order"].nunique()
    rejected = lines.rows_read - len(lines.frame)
    if n_orders < MIN_ORDERS:
        raise RecommendInputError(
            f"too little valid data{where}: {n_orders} order(s)"
            + (f" after rejecting {rejected} of {lines.rows_read} rows" if rejected else "")
            + f"; need {MIN_ORDERS}"
        )
    n_products = lines.frame["product"].nunique()
    if n_products < MIN_PRODUCTS:
        raise RecommendInputError(
            f"only {n_products} distinct product(s){where}: nothing to recommend "
            f"(need at least {MIN_PRODUCTS})"
        )


def _binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """0/1 matrix with a one where (row, col) occurs at least once (duplicates collapsed)."""
    m = sp.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=shape, dtype=np.float32
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _cooccurrence(m: sp.csr_matrix, max_pairs: int = 4_000_000) -> sp.csr_matrix:
    """M^T M for a 0/1 matrix: how many rows (orders, customers) hold both columns.

    Up to DENSE_LIMIT columns the pairs inside each row are enumerated and counted with
    `np.bincount` in row blocks of ≤ `max_pairs` pairs: ~10x faster than scipy's sparse product
    here, whose scattered row reads miss the cache at millions of rows.
    """
    n = m.shape[1]
    if n > DENSE_LIMIT:
        return (m.T @ m).tocsr()
    m = m.tocsr()
    m.sort_indices()
    lengths = np.diff(m.indptr).astype(np.int64)
    squares = lengths * lengths
    ends = np.cumsum(squares)
    counts = np.zeros(n * n, dtype=np.int64)
    start_row = 0
    while start_row < len(lengths):
        base = ends[start_row - 1] if start_row else 0
        stop_row = max(int(np.searchsorted(ends, base + max_pairs, side="right")), start_row + 1)
        rows = np.arange(start_row, stop_row)
        size = squares[rows]
        pair_row = np.repeat(rows, size)
        q = np.arange(len(pair_row)) - np.repeat(np.cumsum(size) - size, size)
        length = lengths[pair_row]
        first = m.indptr[pair_row]
        a = m.indices[first + q // length].astype(np.int64)
        b = m.indices[first + q % length]
        counts += np.bincount(a * n + b, minlength=n * n)
        start_row = stop_row
    return sp.csr_matrix(counts.reshape(n, n).astype(np.float32))


# --------------------------------------------------------------------------------------------
# Bought together: association rules over order baskets


def bought_together(
    lines: Lines,
    *,
    top_n: int = 10,
    min_orders: int = 2,
    min_support: float = 0.0,
    min_confidence: float = 0.0,
    rank_by: str = "lift",
) -> pd.DataFrame:
    """Top-N products bought in the same order as each product, with support, confidence, lift.

    support = share of orders holding both; confidence(A → B) = P(B in order | A in order);
    lift = confidence / P(B). A pair needs `min_orders` shared orders (and `min_support`,
    `min_confidence`): lift on one or two orders is noise.
    """
    if rank_by not in ("lift", "confidence", "orders_together"):
        raise ValueError(f"rank_by must be lift, confidence or orders_together, not {rank_by!r}")
    _check_enough(lines)
    f = lines.frame
    order_codes, _ = pd.factorize(f["order"].to_numpy())
    n_orders = int(order_codes.max()) + 1
    basket = _binary(order_codes, f["product"].to_numpy(), (n_orders, lines.n_products))
    item_orders = np.asarray(basket.sum(axis=0)).ravel()
    co = _cooccurrence(basket).tocoo()
    a, b, together = co.row, co.col, co.data.astype(np.int64)
    keep = (a != b) & (together >= max(1, min_orders))
    keep &= together >= min_support * n_orders
    a, b, together = a[keep], b[keep], together[keep]
    confidence = together / item_orders[a]
    lift = confidence / (item_orders[b] / n_orders)
    keep = confidence >= min_confidence
    out = pd.DataFrame({
        "a": a[keep], "b": b[keep], "orders_together": together[keep],
        "support": together[keep] / n_orders, "confidence": confidence[keep], "lift": lift[keep],
    })
    if out.empty:
        return pd.DataFrame(columns=list(BOUGHT_TOGETHER_COLUMNS))
    secondary = "confidence" if rank_by != "confidence" else "lift"
    out = out.sort_values(["a", rank_by, secondary, "b"], ascending=[True, False, False, True])
    out["rank"] = out.groupby("a").cumcount() + 1
    out = out[out["rank"] <= top_n]
    out.insert(0, "product_id", lines.products[out["a"].to_numpy()])
    out.insert(2, "other_product_id", lines.products[out["b"].to_numpy()])
    return out[list(BOUGHT_TOGETHER_COLUMNS)].reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Personalised: item-kNN over the customer × product matrix


def _top_k_rows(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of each row (ties by position) of a CSR matrix."""
    m = m.tocsr()
    m.sort_indices()
    lengths = np.diff(m.indptr)
    if lengths.max(initial=0) <= k:
        return m
    row = np.repeat(np.arange(m.shape[0]), lengths)
    order = np.lexsort((-m.data, row))  # by row, then descending value
    pos = np.arange(len(order)) - np.repeat(m.indptr[:-1], lengths)
    chosen = order[pos < k]
    out = sp.csr_matrix((m.data[chosen], (row[chosen], m.indices[chosen])), shape=m.shape)
    out.sort_indices()
    return out


@dataclass
class Recommender:
    """A fitted item-kNN model: purchase history, pruned item similarities and popularity."""

    customers: pd.Index  # row → customer id
    products: pd.Index  # column → product id
    history: sp.csr_matrix  # customers × products, 1 where bought
    similarity: sp.csr_matrix  # products × products cosine, top `neighbours` per row
    popularity: np.ndarray  # customers who bought each product
    repeat: np.ndarray  # bool per product: may be recommended again to a buyer
    names: dict[Any, str] = field(default_factory=dict)
    fitted_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _dense: np.ndarray | None = field(default=None, init=False, repr=False)

    # -- scoring -------------------------------------------------------------------------------

    def _dense_similarity(self) -> np.ndarray | None:
        if self.similarity.shape[0] > DENSE_LIMIT:
            return None
        cached = self._dense
        if cached is None:
            cached = self.similarity.toarray()
            self._dense = cached
        return cached

    def top_k_codes(
        self, rows: np.ndarray, k: int, *, model: str = "knn", batch: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k product codes and scores for customer rows (-1: no history) and the row mask.

        Returns (codes [n, k], scores [n, k], from_model [n, k] bool). Already-bought products
        are excluded unless `repeat`; slots the model cannot fill (no similar product) go to the
        most popular products, with `from_model` False and score 0; code -1 where the customer
        has bought everything else.
        """
        n_items = len(self.products)
        k = min(k, n_items)
        # popularity rank as a tiny tie-breaker: zero-score slots follow popularity
        pop_rank = np.argsort(np.argsort(-self.popularity, kind="stable"), kind="stable")
        tiebreak = ((n_items - pop_rank) / (n_items + 1.0) * 1e-6).astype(np.float32)
        batch = batch or max(1, 4_000_000 // max(n_items, 1))  # ~16 MB blocks: cache-friendly
        codes = np.empty((len(rows), k), dtype=np.int32)
        scores = np.zeros((len(rows), k), dtype=np.float32)
        from_model = np.zeros((len(rows), k), dtype=bool)
        known = rows >= 0
        for start in range(0, len(rows), batch):
            r = rows[start:start + batch]
            hist = self.history[np.where(r >= 0, r, 0)]
            if not known[start:start + batch].all():  # unknown customers: empty history
                hist = sp.diags((r >= 0).astype(np.float32)) @ hist
                hist = sp.csr_matrix(hist)
            if model == "knn":
                sim = self._dense_similarity()
                product = hist @ (self.similarity if sim is None else sim)
                dense = np.asarray(product.todense() if sp.issparse(product) else product,
                                   dtype=np.float32)
            elif model == "popular":
                dense = np.zeros((len(r), n_items), dtype=np.float32)
            else:
                raise ValueError(f"model must be knn or popular, not {model!r}")
            dense += tiebreak
            bought = hist.tocoo()
            block = ~self.repeat[bought.col]
            dense[bought.row[block], bought.col[block]] = -np.inf
            part, top = _top_k_dense(dense, k)
            sl = slice(start, start + len(r))
            codes[sl] = np.where(np.isfinite(top), part, -1)  # -1: nothing left to suggest
            model_hit = top > 1e-5
            scores[sl] = np.where(model_hit, top, 0.0)
            from_model[sl] = model_hit
        return codes, scores, from_model

    def _because(self, rows: np.ndarray, items: np.ndarray, top: int = 2) -> np.ndarray:
        """For each (customer row, product) pair, the ≤`top` bought products contributing most.

        Segment maxima (no sort): pairs' bought products are contiguous runs; ties go to the
        lower product code.
        """
        out = np.full((len(rows), top), -1, dtype=np.int32)
        if len(rows) == 0:
            return out
        indptr = self.history.indptr
        lengths = indptr[rows + 1] - indptr[rows]
        nonempty = np.flatnonzero(lengths > 0)
        rows, items, lengths = rows[nonempty], items[nonempty], lengths[nonempty]
        starts = np.cumsum(lengths) - lengths
        pair = np.repeat(np.arange(len(rows)), lengths)
        position = np.arange(len(pair))
        bought = self.history.indices[np.repeat(indptr[rows] - starts, lengths) + position]
        target = items[pair]
        dense = self._dense_similarity()
        if dense is not None:
            contrib = dense[bought, target].astype(np.float64)
        else:
            contrib = np.asarray(self.similarity[bought, target], dtype=np.float64).ravel()
        for t in range(top):
            best = np.maximum.reduceat(contrib, starts)
            first = np.where(contrib == best[pair], position, len(pair))
            where = np.minimum.reduceat(first, starts)
            ok = best > 0
            out[nonempty[ok], t] = bought[where[ok]]
            contrib[where[ok]] = -np.inf
        return out

    def _labels(self) -> np.ndarray:
        return np.asarray([str(self.names.get(p, p)) for p in self.products], dtype=object)

    def recommend_for(
        self,
        customer_ids: Iterable[Any],
        k: int = 10,
        *,
        with_because: bool = False,
        with_reasons: bool = True,
        chunk: int = 200_000,
    ) -> pd.DataFrame:
        """Top-k suggestions per customer: customer_id, rank, product_id, score, reason.

        Customers without purchase history (or unknown) get the most popular products, saying so.
        With `with_because`, `because_product_id_1/2` name the bought products behind each one;
        `with_reasons=False` leaves `reason` empty (None): the text is the slow part at millions.
        """
        ids = np.asarray(list(customer_ids) + [None], dtype=object)[:-1]
        if len(ids) == 0 or k < 1:
            cols = ["customer_id", "rank", "product_id", "score", "reason"]
            if with_because:
                cols += ["because_product_id_1", "because_product_id_2"]
            return pd.DataFrame(columns=cols)
        rows_all = self.customers.get_indexer(ids).astype(np.int64)
        labels = self._labels()
        product_ids = np.asarray(self.products, dtype=object)
        parts = []
        for start in range(0, len(ids), chunk):
            rows = rows_all[start:start + chunk]
            codes, scores, from_model = self.top_k_codes(rows, k)
            n, kk = codes.shape
            valid = codes.ravel() >= 0
            flat_rows = np.repeat(rows, kk)[valid]
            flat_codes = codes.ravel()[valid]
            flat_model = from_model.ravel()[valid]
            because = np.full((len(flat_codes), 2), -1, dtype=np.int32)
            hit = np.flatnonzero(flat_model)
            because[hit] = self._because(flat_rows[hit], flat_codes[hit])
            part = pd.DataFrame({
                "customer_id": np.repeat(ids[start:start + chunk], kk)[valid],
                "rank": np.tile(np.arange(1, kk + 1), n)[valid],
                "product_id": product_ids[flat_codes],
                "score": scores.ravel()[valid].astype(float),
                "reason": _reasons(labels, flat_codes, because, flat_model, flat_rows >= 0)
                if with_reasons else None,
            })
            if with_because:
                for t in range(2):
                    b = because[:, t]
                    part[f"because_product_id_{t + 1}"] = np.where(
                        b >= 0, product_ids[np.maximum(b, 0)], None
                    )
            parts.append(part)
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _top_k_dense(dense: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of each row's k largest entries, best first.

    A value partition for the k-th largest then a sort of the few survivors: several times
    faster than argpartition along rows of a wide float matrix.
    """
    n_rows, n_cols = dense.shape
    kth = np.partition(dense, n_cols - k, axis=1)[:, n_cols - k]
    r, c = np.nonzero(dense >= kth[:, None])
    v = dense[r, c]
    order = np.lexsort((c, -v, r))
    r, c, v = r[order], c[order], v[order]
    pos = np.arange(len(r)) - np.searchsorted(r, r)
    keep = pos < k  # every row has ≥ k survivors; ties beyond k are cut
    return c[keep].reshape(n_rows, k), v[keep].reshape(n_rows, k)


def _reasons(
    labels: np.ndarray, codes: np.ndarray, because: np.ndarray, from_model: np.ndarray,
    known: np.ndarray,
) -> np.ndarray:
    """Reason texts, built with object-array string concatenation (no per-row Python call)."""
    out = np.where(known, REASON_POPULAR, REASON_POPULAR_NEW).astype(object)
    z = labels[codes]
    one = from_model & (because[:, 0] >= 0) & (because[:, 1] < 0)
    two = from_model & (because[:, 1] >= 0)
    b1, b2 = labels[np.maximum(because[:, 0], 0)], labels[np.maximum(because[:, 1], 0)]
    out[one] = "bought " + b1[one] + "; customers who bought it also bought " + z[one]
    out[two] = ("bought " + b1[two] + " and " + b2[two]
                + "; customers who bought those also bought " + z[two])
    return out


def fit_recommender(
    lines: Lines,
    *,
    neighbours: int = DEFAULT_NEIGHBOURS,
    repeat_products: Collection[Any] = (),
    names: Mapping[Any, str] | None = None,
) -> Recommender:
    """Item-kNN: cosine similarity of products over who bought them, top `neighbours` each.

    Already-bought products are never suggested again, except those in `repeat_products`
    (consumables such as socks or reproofer that customers buy again).
    """
    _check_enough(lines)
    f = lines.frame
    history = _binary(
        f["customer"].to_numpy(), f["product"].to_numpy(), (lines.n_customers, lines.n_products)
    )
    popularity = np.asarray(history.sum(axis=0)).ravel()
    co = _cooccurrence(history)
    co.setdiag(0)
    co.eliminate_zeros()
    norm = 1.0 / np.sqrt(np.maximum(popularity, 1.0)).astype(np.float32)
    sim = sp.csr_matrix(sp.diags(norm) @ co @ sp.diags(norm), dtype=np.float32)
    sim = _top_k_rows(sim, neighbours)
    repeat = np.asarray(lines.products.isin(list(repeat_products)), dtype=bool)
    return Recommender(
        customers=lines.customers, products=lines.products, history=history,
        similarity=sim, popularity=popularity.astype(np.int64), repeat=repeat,
        names=dict(names or {}),
    )


def recommendations_frame(
    model: Recommender,
    customer_ids: Iterable[Any] | None = None,
    k: int = 10,
    *,
    model_name: str = "item_knn",
    with_reasons: bool = True,
) -> pd.DataFrame:
    """What to store: `RECOMMENDATION_COLUMNS`, one row per customer and suggestion (rank 1..k).

    `because_product_id_1/2` are the bought products behind a suggestion (None for popularity
    fill-ins, and _2 when only one contributes); `generated_at` is the model's fit time (UTC).
    """
    ids = list(model.customers) if customer_ids is None else list(customer_ids)
    out = model.recommend_for(ids, k, with_because=True, with_reasons=with_reasons)
    out["model"] = model_name
    out["generated_at"] = pd.Timestamp(model.fitted_at)
    return out[list(RECOMMENDATION_COLUMNS)]


# --------------------------------------------------------------------------------------------
# Evaluation on a time split


def _subset(lines: Lines, mask: np.ndarray) -> Lines:
    return Lines(lines.frame[mask].reset_index(drop=True), lines.customers, lines.products,
                 int(mask.sum()))


def evaluate_time_split(
    lines: Lines,
    *,
    split_date: Any = None,
    k: int = 10,
    neighbours: int = DEFAULT_NEIGHBOURS,
    repeat_products: Collection[Any] = (),
    extra_models: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on orders before the split, test on what each customer buys from it on.

    The test set of a customer is the products bought on or after the split that they had not
    bought before (or any, for repeat products); only customers with history before the split
    and something new after it are scored. Default split: the 80th percentile of order dates.
    `extra_models` maps a name to `fn(train_history csr, k, exclude csr) -> codes [n, k]`
    (for measuring other models, e.g. ALS, beside ours in the same run).
    """
    _check_enough(lines)
    f = lines.frame
    if f["ordered_at"].isna().all():
        raise RecommendInputError("a time split needs order dates (date column)")
    if split_date is None:
        split = f.drop_duplicates("order")["ordered_at"].quantile(0.8)
    else:
        split = pd.Timestamp(split_date)
        if split.tzinfo is not None:
            split = split.tz_convert("UTC").tz_localize(None)
    before = (f["ordered_at"] < split).to_numpy()
    if before.sum() == 0 or before.all():
        raise RecommendInputError(
            f"split date {split.date()} leaves no {'training' if before.sum() == 0 else 'test'} "
            f"orders (orders from {f['ordered_at'].min().date()} to {f['ordered_at'].max().date()})"
        )
    train = _subset(lines, before)
    _check_enough(train, f" before the split date {split.date()}")
    model = fit_recommender(train, neighbours=neighbours, repeat_products=repeat_products)
    shape = (lines.n_customers, lines.n_products)
    test = _binary(f["customer"].to_numpy()[~before], f["product"].to_numpy()[~before], shape)
    seen = model.history.multiply(~model.repeat[None, :]).tocsr() if model.repeat.any() \
        else model.history
    test = (test - test.multiply(seen)).tocsr()
    test.eliminate_zeros()
    has_train = np.diff(model.history.indptr) > 0
    n_test = np.diff(test.indptr)
    rows = np.flatnonzero(has_train & (n_test > 0))
    if len(rows) == 0:
        raise RecommendInputError(
            f"no customer bought before {split.date()} and something new after it: nothing to test"
        )
    t0 = datetime.now(UTC)
    results: dict[str, Any] = {}
    candidates: dict[str, np.ndarray] = {
        "item_knn": model.top_k_codes(rows, k)[0],
        "popularity": model.top_k_codes(rows, k, model="popular")[0],
    }
    for name, fn in (extra_models or {}).items():
        candidates[name] = fn(model.history, k, rows)
    truth = test[rows]
    for name, codes in candidates.items():
        results[name] = _metrics(codes, truth, k, lines.n_products)
    return {
        "split_date": str(split.date()),
        "k": k,
        "train_lines": int(before.sum()),
        "test_lines": int((~before).sum()),
        "customers_evaluated": len(rows),
        "customers_in_test_without_history": int(((n_test > 0) & ~has_train).sum()),
        "products": lines.n_products,
        "models": results,
        "lift_over_popularity": (
            results["item_knn"]["precision_at_k"] / results["popularity"]["precision_at_k"]
            if results["popularity"]["precision_at_k"] > 0 else None
        ),
        "seconds": (datetime.now(UTC) - t0).total_seconds(),
    }


def _metrics(codes: np.ndarray, truth: sp.csr_matrix, k: int, n_products: int) -> dict[str, float]:
    """precision@k, recall@k, hit rate and catalogue coverage of top-k lists against truth rows."""
    n = codes.shape[0]
    valid = codes.ravel() >= 0
    rec = sp.csr_matrix(
        (np.ones(int(valid.sum()), dtype=np.float32),
         (np.repeat(np.arange(n), codes.shape[1])[valid], codes.ravel()[valid])),
        shape=truth.shape,
    )
    hits = np.asarray(rec.multiply(truth).sum(axis=1)).ravel()
    relevant = np.diff(truth.indptr)
    return {
        "precision_at_k": float(np.mean(hits / k)),
        "recall_at_k": float(np.mean(hits / np.maximum(relevant, 1))),
        "hit_rate": float(np.mean(hits > 0)),
        "coverage": float(len(np.unique(codes[codes >= 0])) / n_products),
    }


# --------------------------------------------------------------------------------------------
# Synthetic data with a planted preference structure (tests and bench)


def planted_orders(
    customers: int,
    lines: int,
    products: int = 1000,
    *,
    tastes: int = 50,
    taste_share: float = 0.5,
    pair_share: float = 0.2,
    seed: int = 0,
    days: int = 730,
) -> pd.DataFrame:
    """Order lines where each customer has a taste (a group of products) and products have partners.

    A line is drawn from the customer's taste group with probability `taste_share`, otherwise
    from a Zipf-like popularity over the whole catalogue; with probability `pair_share` the
    product's fixed partner is added to the same order. Both patterns are generated; whether a
    model finds them is measured.
    """
    rng = np.random.default_rng(seed)
    group_size = max(2, products // tastes)
    perm = rng.permutation(products)
    groups = np.resize(perm, (tastes, group_size))
    partner = np.roll(perm, 1)[np.argsort(perm)]  # a fixed partner per product
    pop = 1.0 / np.arange(1, products + 1) ** 0.8
    pop = pop[np.argsort(rng.permutation(products))]
    pop /= pop.sum()
    taste = rng.integers(0, tastes, customers)
    base = lines / (1.0 + pair_share)
    per_order = 2.5
    n_orders = max(customers, int(base / per_order))
    order_customer = np.concatenate([
        np.arange(customers), rng.integers(0, customers, n_orders - customers)
    ])
    sizes = 1 + rng.poisson(per_order - 1, n_orders)
    line_order = np.repeat(np.arange(n_orders), sizes)
    cust = order_customer[line_order]
    from_taste = rng.random(len(line_order)) < taste_share
    product = np.where(
        from_taste,
        groups[taste[cust], rng.integers(0, group_size, len(line_order))],
        rng.choice(products, size=len(line_order), p=pop),
    )
    add = rng.random(len(line_order)) < pair_share
    line_order = np.concatenate([line_order, line_order[add]])
    product = np.concatenate([product, partner[product[add]]])
    start = np.datetime64("2024-01-01T00:00:00", "s")
    order_time = start + rng.integers(0, days * 86400, n_orders).astype("timedelta64[s]")
    out = pd.DataFrame({
        "order_id": line_order,
        "customer_id": order_customer[line_order],
        "product_id": product,
        "ordered_at": order_time[line_order],
        "quantity": np.ones(len(line_order), dtype=np.int32),
    })
    out.attrs["partner"] = partner  # product → its planted partner (for checking)
    out.attrs["taste"] = taste  # customer → taste group
    return out
