"""Churn prediction on any customer table: features, calibrated gradient boosting, model card.

The model is LightGBM (shallow trees, small learning rate: on the IBM Telco table it beat
scikit-learn's HistGradientBoosting and a logistic-regression baseline in 5-fold CV) wrapped in
scikit-learn's ``CalibratedClassifierCV``. Platt (sigmoid) calibration is fitted on the booster's
log-odds with cross-validated predictions, so the calibrated log-odds are a linear map of the raw
score; that keeps the per-customer TreeSHAP contributions (LightGBM ``pred_contrib``) additive:
``base + sum(contributions) == logit(churn probability)`` for every customer.

Everything works on a plain pandas DataFrame; the integration with the operational tables feeds
this module a customer table (profile, custom fields, aggregated orders, tickets, ...).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Target labels understood without ``positive_label`` (compared lower-case, trimmed).
POSITIVE_LABELS = frozenset(
    {"yes", "y", "true", "t", "1", "1.0", "churn", "churned", "left", "lost", "cancelled",
     "canceled", "exited", "inactive", "lapsed"}
)
NEGATIVE_LABELS = frozenset(
    {"no", "n", "false", "f", "0", "0.0", "active", "retained", "stayed", "current", "kept",
     "not churned", "no churn", "loyal"}
)

#: Column names (normalised: lower-case, letters and digits only) used as fairness groups
#: when the caller names none.
GROUP_COLUMN_HINTS = frozenset(
    {"gender", "sex", "female", "male", "seniorcitizen", "senior", "country", "countrycode",
     "age", "ageband", "agegroup"}
)
ID_NAME_HINTS = frozenset({"id", "rownames", "rowname", "index", "unnamed0", "rowid"})
AGE_BANDS = [(-math.inf, 25, "<25"), (25, 35, "25-34"), (35, 45, "35-44"), (45, 55, "45-54"),
             (55, 65, "55-64"), (65, math.inf, "65+")]

#: Default booster settings: shallow, regularised trees that generalise on a few thousand rows
#: and stay fast at a million. One thread: OpenMP spin-waiting on a shared, busy machine made
#: multi-threaded fits of these small trees ~10x slower, not faster.
DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 300,
    "learning_rate": 0.03,
    "num_leaves": 4,
    "min_child_samples": 40,
    "reg_lambda": 1.0,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "random_state": 0,
    "verbose": -1,
    "n_jobs": 1,
}
MAX_LISTED_ROWS = 10


class ChurnInputError(ValueError):
    """The customer table cannot be used to train a churn model (message says why)."""


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _rows(mask: np.ndarray | pd.Series) -> str:
    """1-based data row numbers (after the header) of the True entries, truncated."""
    idx = np.flatnonzero(np.asarray(mask)) + 1
    listed = ", ".join(str(i) for i in idx[:MAX_LISTED_ROWS])
    more = len(idx) - MAX_LISTED_ROWS
    return listed + (f" and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------- target


def map_target(
    values: pd.Series, positive_label: str | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """Map a churn column to 0/1; refuse missing, unrecognised, empty or one-class targets."""
    name = values.name
    if len(values) == 0:
        raise ChurnInputError(f"target column {name!r} is empty: no customers to train on")
    missing = values.isna().to_numpy()
    if isinstance(values.dtype, pd.StringDtype) or values.dtype == object:
        missing |= values.astype(str).str.strip().eq("").to_numpy() & ~missing
    if missing.any():
        raise ChurnInputError(
            f"target column {name!r} has {int(missing.sum())} missing value(s) at row(s) "
            f"{_rows(missing)}; fill or remove them (a model never guesses its own labels)"
        )
    text = values.astype(str).str.strip().str.lower()
    if positive_label is not None:
        pos = text == str(positive_label).strip().lower()
        if not pos.any():
            raise ChurnInputError(
                f"target column {name!r} never equals the positive label {positive_label!r}"
            )
        y = pos.to_numpy().astype(np.int8)
    else:
        known = text.isin(POSITIVE_LABELS | NEGATIVE_LABELS).to_numpy()
        if not known.all():
            bad = sorted(set(values[~known].astype(str)))[:5]
            raise ChurnInputError(
                f"target column {name!r} has values not recognisable as churned/active: "
                f"{', '.join(repr(b) for b in bad)} at row(s) {_rows(~known)}; use yes/no, "
                "true/false, 1/0, churned/active, or name the churn value with --positive"
            )
        y = text.isin(POSITIVE_LABELS).to_numpy().astype(np.int8)
    pairs = pd.DataFrame({"v": values.astype(str).to_numpy(), "y": y}).drop_duplicates("v")
    mapping = dict(sorted(zip(pairs["v"], pairs["y"].astype(int).tolist(), strict=True)))
    if len(set(y.tolist())) < 2:
        only = "churned" if y[0] == 1 else "active"
        raise ChurnInputError(
            f"target column {name!r} has only one class (all {len(y)} customers are {only}); "
            "a churn model needs both churned and active customers"
        )
    return y, mapping


# --------------------------------------------------------------------------- features


@dataclass
class FeatureSpec:
    """How raw columns become model features; reused unchanged when scoring new customers."""

    numeric: list[str] = field(default_factory=list)
    categorical: dict[str, list[str]] = field(default_factory=dict)
    dropped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        """Numeric columns coerced, categoricals with the training levels (unseen → missing)."""
        absent = [c for c in self.features if c not in df.columns]
        if absent:
            raise ChurnInputError(f"customer table lacks feature column(s): {', '.join(absent)}")
        out: dict[str, Any] = {}
        for col in self.numeric:
            out[col] = _to_numeric(df[col])
        for col, levels in self.categorical.items():
            out[col] = pd.Categorical(_to_text(df[col]), categories=levels)
        return pd.DataFrame(out, index=df.index)[self.features]


def _to_text(s: pd.Series) -> pd.Series:
    text = s.astype("string").str.strip()
    return text.mask(text == "")


def _to_numeric(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    if pd.api.types.is_datetime64_any_dtype(s):
        return (s - pd.Timestamp("1970-01-01")).dt.days.astype(float)
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(float)
    return pd.to_numeric(_to_text(s), errors="coerce").astype(float)


def _numeric_looking(s: pd.Series) -> bool:
    """All non-blank values parse as numbers (e.g. Telco's TotalCharges with blank cells)."""
    text = _to_text(s).dropna()
    return len(text) > 0 and bool(pd.to_numeric(text, errors="coerce").notna().all())


def build_feature_spec(
    df: pd.DataFrame, exclude: Sequence[str] = ()
) -> FeatureSpec:
    """Decide each column's role; identifier-like and constant columns are dropped with a note."""
    spec = FeatureSpec()
    n = len(df)
    for col in df.columns:
        if col in exclude:
            continue
        s = df[col]
        non_null = s.dropna()
        if non_null.nunique() <= 1:
            spec.dropped.append({"column": str(col), "reason": "constant or empty"})
            continue
        unique_per_row = n >= 20 and non_null.nunique() == n
        is_text = not (
            pd.api.types.is_numeric_dtype(s)
            or pd.api.types.is_bool_dtype(s)
            or pd.api.types.is_datetime64_any_dtype(s)
        )
        if unique_per_row and is_text and not _numeric_looking(s):
            spec.dropped.append({"column": str(col), "reason": "unique per row: an identifier"})
            continue
        if unique_per_row and pd.api.types.is_integer_dtype(s) and (
            _norm(col) in ID_NAME_HINTS
            or _norm(col).endswith("id")
            or int(non_null.max()) - int(non_null.min()) == n - 1
        ):
            spec.dropped.append(
                {"column": str(col), "reason": "unique consecutive integers: a row number or id"}
            )
            continue
        if (
            pd.api.types.is_numeric_dtype(s)
            or pd.api.types.is_bool_dtype(s)
            or pd.api.types.is_datetime64_any_dtype(s)
        ):
            spec.numeric.append(str(col))
            if pd.api.types.is_datetime64_any_dtype(s):
                spec.notes.append(f"{col}: dates used as days since 1970-01-01")
            continue
        if _numeric_looking(s):
            spec.numeric.append(str(col))
            blanks = int(_to_text(s).isna().sum() - s.isna().sum())
            spec.notes.append(
                f"{col}: numeric text coerced to numbers"
                + (f" ({blanks} blank cell(s) treated as missing)" if blanks else "")
            )
            continue
        text = _to_text(s)
        levels = sorted(text.dropna().unique().tolist())
        if n >= 20 and len(levels) > n / 2:
            spec.dropped.append(
                {"column": str(col), "reason": f"free text ({len(levels)} distinct values)"}
            )
            continue
        spec.categorical[str(col)] = levels
    if not spec.features:
        raise ChurnInputError("no usable feature columns left after dropping ids and constants")
    return spec


# --------------------------------------------------------------------------- model


def _estimator_class() -> type:
    import lightgbm as lgb

    class ChurnBooster(lgb.LGBMClassifier):
        """LightGBM exposing its log-odds, so Platt scaling is a linear map of them."""

        def decision_function(self, X: Any) -> np.ndarray:
            return np.asarray(self.predict(X, raw_score=True), dtype=float)

    return ChurnBooster


def make_model(
    params: dict[str, Any] | None = None, calibration: str = "sigmoid", calibration_cv: int = 5
) -> Any:
    """A fresh calibrated booster (cross-validated calibration, one final booster)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold

    if calibration not in ("sigmoid", "isotonic"):
        raise ChurnInputError(f"calibration must be sigmoid or isotonic, not {calibration!r}")
    booster = _estimator_class()(**{**DEFAULT_PARAMS, **(params or {})})
    seed = int((params or {}).get("random_state", DEFAULT_PARAMS["random_state"]))
    cv = StratifiedKFold(calibration_cv, shuffle=True, random_state=seed)
    return CalibratedClassifierCV(booster, method=calibration, cv=cv, ensemble=False)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


@dataclass
class ChurnModel:
    """A trained churn model: score customers and explain each score."""

    spec: FeatureSpec
    estimator: Any
    calibration: str
    id_col: str | None = None

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability per customer."""
        return self.estimator.predict_proba(self.spec.transform(df))[:, 1]

    def contributions(self, df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """Per-feature TreeSHAP contributions and the base value, in calibrated log-odds.

        With sigmoid calibration ``base + row sum == logit(predict_proba)`` exactly; with
        isotonic calibration they are the booster's log-odds, a monotone proxy.
        """
        X = self.spec.transform(df)
        fitted = self.estimator.calibrated_classifiers_[0]
        raw = np.asarray(fitted.estimator.predict(X, pred_contrib=True), dtype=float)
        scale, shift = 1.0, 0.0
        if self.calibration == "sigmoid":
            # The calibrator maps raw log-odds f to sigmoid(scale * f + shift); read both
            # coefficients off two evaluations instead of relying on private attributes.
            p = fitted.calibrators[0].predict(np.array([0.0, 1.0]))
            z = _logit(np.asarray(p, dtype=float))
            shift, scale = float(z[0]), float(z[1] - z[0])
        contrib = pd.DataFrame(raw[:, :-1] * scale, columns=self.spec.features, index=df.index)
        base = raw[:, -1] * scale + shift
        return contrib, base

    def explain(self, df: pd.DataFrame, top_k: int = 3) -> pd.DataFrame:
        """Churn probability and the top reasons (features raising the risk most) per customer."""
        X = self.spec.transform(df)
        proba = self.estimator.predict_proba(X)[:, 1]
        contrib, base = self.contributions(df)
        values = contrib.to_numpy()
        k = min(top_k, values.shape[1])
        order = np.argsort(-values, axis=1, kind="stable")[:, :k]
        out = pd.DataFrame(index=df.index)
        if self.id_col and self.id_col in df.columns:
            out[self.id_col] = df[self.id_col].to_numpy()
        out["churn_probability"] = proba
        out["base_logit"] = base
        names = np.asarray(self.spec.features, dtype=object)
        for j in range(k):
            cols = order[:, j]
            c = values[np.arange(len(values)), cols]
            shown = [
                f"{names[f]}={_fmt(X.iat[i, f])}" if c[i] > 0 else None
                for i, f in enumerate(cols)
            ]
            out[f"reason_{j + 1}"] = shown
            out[f"reason_{j + 1}_contribution"] = np.where(c > 0, c, np.nan)
        return out


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return "missing"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


# --------------------------------------------------------------------------- evaluation


def reliability_bins(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict[str, Any]]:
    """Equal-width probability bins: mean predicted vs observed churn rate (empty bins omitted)."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        m = idx == b
        if m.any():
            bins.append({
                "lower": float(edges[b]), "upper": float(edges[b + 1]), "count": int(m.sum()),
                "mean_predicted": float(p[m].mean()), "observed_rate": float(y[m].mean()),
            })
    return bins


def classification_scores(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    two = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if two else None,
        "pr_auc": float(average_precision_score(y, p)) if two else None,
        "brier": float(brier_score_loss(y, p, pos_label=1)),
    }


def _group_series(df: pd.DataFrame, col: str) -> pd.Series:
    """Group labels for fairness: ages in bands, other wide numeric columns in quartiles."""
    s = df[col]
    num = _to_numeric(s) if _numeric_looking(s) or pd.api.types.is_numeric_dtype(s) else None
    if num is not None and _norm(col) == "age":
        labels = pd.Series("(missing)", index=s.index, dtype=object)
        for lo, hi, name in AGE_BANDS:
            labels[(num >= lo) & (num < hi)] = name
        return labels
    if num is not None and num.nunique() > 10:
        return pd.qcut(num, 4, duplicates="drop").astype(str).replace("nan", "(missing)")
    if num is not None:
        return num.map(_fmt).astype(object).fillna("(missing)")
    return _to_text(s).astype(object).fillna("(missing)")


def fairness_report(
    df: pd.DataFrame, y: np.ndarray, p: np.ndarray, group_cols: Sequence[str],
    threshold: float = 0.5,
) -> dict[str, Any]:
    """fairlearn MetricFrame per group column on out-of-fold predictions at ``threshold``."""
    from fairlearn.metrics import (
        MetricFrame,
        count,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import roc_auc_score

    def auc(yt: np.ndarray, ys: np.ndarray) -> float:
        return float(roc_auc_score(yt, ys)) if len(np.unique(yt)) == 2 else float("nan")

    def base_rate(yt: np.ndarray, _: np.ndarray) -> float:
        return float(np.mean(yt))

    def mean_predicted(_: np.ndarray, ys: np.ndarray) -> float:
        return float(np.mean(ys))

    y_hat = (p >= threshold).astype(int)
    report: dict[str, Any] = {"threshold": threshold, "groups": {}}
    for col in group_cols:
        groups = _group_series(df, col).to_numpy()
        hard = MetricFrame(
            metrics={"count": count, "churn_rate": base_rate, "selection_rate": selection_rate,
                     "tpr": true_positive_rate, "fpr": false_positive_rate},
            y_true=y, y_pred=y_hat, sensitive_features=pd.Series(groups, name=col),
        )
        soft = MetricFrame(
            metrics={"roc_auc": auc, "mean_predicted": mean_predicted},
            y_true=y, y_pred=p, sensitive_features=pd.Series(groups, name=col),
        )
        table = hard.by_group.join(soft.by_group)
        rows = [
            {"group": str(g), **{k: int(v) if k == "count" else _num(v) for k, v in r.items()}}
            for g, r in table.to_dict(orient="index").items()
        ]
        auc_diff = soft.difference()["roc_auc"]
        report["groups"][col] = {
            "by_group": rows,
            "demographic_parity_difference": float(
                demographic_parity_difference(y, y_hat, sensitive_features=groups)
            ),
            "equalized_odds_difference": float(
                equalized_odds_difference(y, y_hat, sensitive_features=groups)
            ),
            "roc_auc_difference": _num(auc_diff),
        }
    return report


def _num(v: Any) -> Any:
    if isinstance(v, np.integer | int) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, np.floating | float):
        return None if math.isnan(float(v)) else float(v)
    return v


def json_safe(obj: Any) -> Any:
    """Plain JSON types throughout: numpy scalars unwrapped, NaN/inf as null."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    v = _num(obj)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def default_group_columns(df: pd.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Columns that look like gender, seniority, country or age."""
    return [c for c in df.columns if c not in exclude and _norm(c) in GROUP_COLUMN_HINTS]


# --------------------------------------------------------------------------- training


@dataclass
class ChurnResult:
    """The final model (trained on all rows), its model card and the out-of-fold predictions."""

    model: ChurnModel
    card: dict[str, Any]
    oof_probability: np.ndarray


def _require_column(df: pd.DataFrame, col: str | None, role: str) -> None:
    if col is not None and col not in df.columns:
        raise ChurnInputError(
            f"{role} column {col!r} not in the customer table (columns: "
            f"{', '.join(map(str, df.columns[:30]))})"
        )


def _parse_dates(df: pd.DataFrame, col: str) -> pd.Series:
    s = df[col]
    dates = pd.to_datetime(s, errors="coerce", utc=False, format="mixed") \
        if not pd.api.types.is_datetime64_any_dtype(s) else s
    bad = dates.isna().to_numpy()
    if bad.any():
        raise ChurnInputError(
            f"date column {col!r} has {int(bad.sum())} missing or unparseable value(s) at "
            f"row(s) {_rows(bad)}"
        )
    return dates


def train_churn_model(
    df: pd.DataFrame,
    target: str,
    *,
    id_col: str | None = None,
    date_col: str | None = None,
    group_cols: Sequence[str] | None = None,
    folds: int = 5,
    positive_label: str | None = None,
    calibration: str = "sigmoid",
    calibration_cv: int = 5,
    holdout_fraction: float = 0.2,
    threshold: float = 0.5,
    params: dict[str, Any] | None = None,
    top_features: int = 15,
) -> ChurnResult:
    """Cross-validate, hold out (by time when ``date_col`` is given), fit and document a model."""
    import lightgbm
    import sklearn
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import StratifiedKFold, train_test_split

    if df.shape[1] == 0:
        raise ChurnInputError("customer table has no columns")
    _require_column(df, target, "target")
    _require_column(df, id_col, "id")
    _require_column(df, date_col, "date")
    if group_cols is not None:
        for g in group_cols:
            _require_column(df, g, "group")
    if folds < 2:
        raise ChurnInputError(f"folds must be at least 2, not {folds}")
    df = df.reset_index(drop=True)
    y, mapping = map_target(df[target], positive_label)
    minority = int(min(y.sum(), len(y) - y.sum()))
    needed = 2 * max(folds, calibration_cv)
    if minority < needed:
        raise ChurnInputError(
            f"too few customers in the smaller class ({minority}; churned {int(y.sum())}, "
            f"active {int(len(y) - y.sum())}): {folds}-fold CV with calibration needs at "
            f"least {needed} of each"
        )
    dates = _parse_dates(df, date_col) if date_col else None
    exclude = [c for c in (target, id_col, date_col) if c]
    spec = build_feature_spec(df, exclude=exclude)
    X = spec.transform(df)
    notes = list(spec.notes)
    if id_col:
        notes.append(f"{id_col}: identifier, not used as a feature")
    if date_col:
        notes.append(f"{date_col}: used for the time-based holdout, not as a feature")

    # Stratified K-fold: honest ranking and calibration figures on every customer.
    oof = np.zeros(len(y))
    per_fold = []
    skf = StratifiedKFold(folds, shuffle=True, random_state=0)
    for k, (tr, te) in enumerate(skf.split(X, y)):
        m = make_model(params, calibration, calibration_cv).fit(X.iloc[tr], y[tr])
        oof[te] = m.predict_proba(X.iloc[te])[:, 1]
        per_fold.append({"fold": k + 1, "rows": int(len(te)),
                         **classification_scores(y[te], oof[te])})
    cv = {
        "folds": folds,
        "roc_auc": float(np.mean([f["roc_auc"] for f in per_fold])),
        "roc_auc_std": float(np.std([f["roc_auc"] for f in per_fold])),
        "pr_auc": float(np.mean([f["pr_auc"] for f in per_fold])),
        "pr_auc_std": float(np.std([f["pr_auc"] for f in per_fold])),
        "brier": float(np.mean([f["brier"] for f in per_fold])),
        "pooled": classification_scores(y, oof),
        "per_fold": per_fold,
    }

    # Holdout: train on the earlier customers, test on the later ones (or a stratified split).
    holdout: dict[str, Any]
    if dates is not None:
        order = np.argsort(dates.to_numpy(), kind="stable")
        cutoff = dates.iloc[order[int(len(order) * (1 - holdout_fraction)) - 1]]
        tr_idx = np.flatnonzero((dates <= cutoff).to_numpy())
        te_idx = np.flatnonzero((dates > cutoff).to_numpy())
        holdout = {"kind": "time", "date_col": date_col, "cutoff": str(cutoff.date()),
                   "train_until": str(dates.iloc[tr_idx].max().date()),
                   "test_from": str(dates.iloc[te_idx].min().date()) if len(te_idx) else None}
    else:
        tr_idx, te_idx = train_test_split(
            np.arange(len(y)), test_size=holdout_fraction, stratify=y, random_state=0
        )
        holdout = {"kind": "random", "stratified": True}
    holdout.update({"train_rows": int(len(tr_idx)), "test_rows": int(len(te_idx))})
    permutation: dict[str, float] = {}
    y_tr = y[tr_idx]
    if min(y_tr.sum(), len(y_tr) - y_tr.sum()) < calibration_cv or len(te_idx) == 0:
        holdout.update({"roc_auc": None, "pr_auc": None, "brier": None})
        notes.append("holdout skipped: too few churned or active customers before the cutoff")
    else:
        hm = make_model(params, calibration, calibration_cv).fit(X.iloc[tr_idx], y_tr)
        X_te, y_te = X.iloc[te_idx], y[te_idx]
        p_te = hm.predict_proba(X_te)[:, 1]
        holdout.update({**classification_scores(y_te, p_te),
                        "positive_rate": float(y_te.mean())})
        if holdout["roc_auc"] is not None:
            pi = permutation_importance(
                hm, X_te, y_te, scoring="roc_auc", n_repeats=5, random_state=0
            )
            permutation = dict(zip(spec.features, pi.importances_mean.tolist(), strict=True))
        else:
            notes.append("holdout test period has one class: no ROC-AUC or permutation importance")

    # Final model on every customer: the one that scores and explains.
    final = make_model(params, calibration, calibration_cv).fit(X, y)
    model = ChurnModel(spec=spec, estimator=final, calibration=calibration, id_col=id_col)
    contrib, _ = model.contributions(df)
    mean_abs = contrib.abs().mean()
    importance = [
        {"feature": f, "mean_abs_contribution": float(mean_abs[f]),
         "permutation_roc_auc_drop": permutation.get(f)}
        for f in spec.features
    ]
    key = "permutation_roc_auc_drop" if permutation else "mean_abs_contribution"
    importance.sort(key=lambda r: -(r[key] or 0.0))

    groups = list(group_cols) if group_cols is not None else default_group_columns(df, exclude)
    brier_ref = float(y.mean() * (1 - y.mean()))
    bins = reliability_bins(y, oof)
    ece = sum(b["count"] * abs(b["mean_predicted"] - b["observed_rate"]) for b in bins) / len(y)
    booster = final.calibrated_classifiers_[0].estimator
    card = {
        "model": "churn",
        "algorithm": "LightGBM gradient boosting, calibrated (CalibratedClassifierCV)",
        "trained_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "target": {"column": target, "mapping": mapping if len(mapping) <= 20 else None},
        "data": {
            "rows": int(len(y)),
            "features": len(spec.features),
            "positives": int(y.sum()),
            "positive_rate": float(y.mean()),
            "numeric_features": spec.numeric,
            "categorical_features": list(spec.categorical),
            "dropped_columns": spec.dropped,
        },
        "params": {
            **{k: _num(v) for k, v in booster.get_params().items()
               if k in DEFAULT_PARAMS or k in (params or {})},
            "calibration": calibration,
            "calibration_cv": calibration_cv,
            "lightgbm": lightgbm.__version__,
            "scikit_learn": sklearn.__version__,
        },
        "cv": cv,
        "roc_auc": cv["roc_auc"],
        "pr_auc": cv["pr_auc"],
        "brier": cv["brier"],
        "holdout": holdout,
        "calibration": {
            "brier": float(cv["pooled"]["brier"]),
            "brier_no_skill": brier_ref,
            "expected_calibration_error": float(ece),
            "bins": bins,
            "source": "out-of-fold predictions",
        },
        "feature_importance": importance[:top_features],
        "fairness": fairness_report(df, y, oof, groups, threshold),
        "notes": notes,
    }
    return ChurnResult(model=model, card=card, oof_probability=oof)


def summary_lines(card: dict[str, Any]) -> list[str]:
    """A short human-readable model card."""
    d, cv, h = card["data"], card["cv"], card["holdout"]
    lines = [
        f"churn model: {d['rows']} customers, {d['features']} features, "
        f"{d['positive_rate']:.1%} churned",
        f"{cv['folds']}-fold CV: ROC-AUC {cv['roc_auc']:.4f} ± {cv['roc_auc_std']:.4f}, "
        f"PR-AUC {cv['pr_auc']:.4f} ± {cv['pr_auc_std']:.4f}, Brier {cv['brier']:.4f}",
    ]
    if h.get("roc_auc") is not None:
        lines.append(
            f"{h['kind']} holdout ({h['test_rows']} customers): ROC-AUC {h['roc_auc']:.4f}, "
            f"PR-AUC {h['pr_auc']:.4f}, Brier {h['brier']:.4f}"
        )
    cal = card["calibration"]
    lines.append(
        f"calibration: Brier {cal['brier']:.4f} (no-skill {cal['brier_no_skill']:.4f}), "
        f"ECE {cal['expected_calibration_error']:.4f}"
    )
    top = ", ".join(r["feature"] for r in card["feature_importance"][:5])
    lines.append(f"top features: {top}")
    for col, g in card["fairness"]["groups"].items():
        lines.append(
            f"fairness {col}: demographic parity diff {g['demographic_parity_difference']:.3f}, "
            f"equalized odds diff {g['equalized_odds_difference']:.3f}"
        )
    for c in card["data"]["dropped_columns"]:
        lines.append(f"dropped {c['column']}: {c['reason']}")
    lines.extend(f"note: {n}" for n in card["notes"])
    return lines
