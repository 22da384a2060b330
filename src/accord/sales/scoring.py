"""Lead scoring: explainable fit and engagement rules, plus a predictive model of conversion.

Three parts, each 0..100, each listing the points of every factor in `Lead.score_factors` so
that the lead page can show *why* a lead scores what it does:

* **fit** — rules over firmographics and the person (`FIT_RULES` below: industry, size, revenue,
  territory, job-title seniority, business vs free-mail domain, BANT answers);
* **engagement** — each engagement signal's weight (`ENGAGEMENT_WEIGHTS`) decayed exponentially
  with its age (`ENGAGEMENT_HALF_LIFE_DAYS`): a demo request today counts fully, one from a
  half-life ago counts half;
* **predicted** — the probability of conversion from the newest active `LeadScoreModel`
  (logistic regression trained on past outcomes, see `train_lead_model`), shown per factor as
  its contribution to the log-odds (coefficient × standardised value), so
  ``intercept + sum(contributions) == logit(p)``.

The combined score: ``rules = 0.6 × fit + 0.4 × engagement``; with an active model
``score = 0.7 × predicted + 0.3 × rules``, otherwise ``score = rules`` (rounded, 0..100).

Scores are derived data: `score_lead` sets them on the ORM object without an audit entry and
without committing; `rescore_leads` recomputes every open lead in chunks with set-based reads
and one executemany UPDATE per chunk (no ORM objects, no version bump, `updated_at` kept).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import SYSTEM, Principal
from accord.access.service import require
from accord.core.clock import as_utc, utcnow
from accord.core.errors import ValidationProblem
from accord.models.sales import Lead, LeadEngagement, LeadScoreModel

# --------------------------------------------------------------------------------------------
# The rules: one readable table (configurable later; tests pin the points)
# --------------------------------------------------------------------------------------------

#: Industries the product sells best into (lower-case), with their points.
INDUSTRY_POINTS: dict[str, int] = {
    "software": 15,
    "technology": 15,
    "financial services": 12,
    "banking": 12,
    "insurance": 10,
    "telecommunications": 10,
    "healthcare": 8,
    "manufacturing": 8,
    "retail": 6,
    "education": 3,
}
#: Employee bands: (lowest head count, label, points); the first band the lead reaches counts.
EMPLOYEE_BANDS: tuple[tuple[int, str, int], ...] = (
    (1000, "1000+", 15),
    (200, "200-999", 12),
    (50, "50-199", 8),
    (10, "10-49", 4),
    (0, "1-9", 0),
)
#: Annual revenue bands (any currency, taken at face value): (lowest, label, points).
REVENUE_BANDS: tuple[tuple[int, str, int], ...] = (
    (100_000_000, "100M+", 10),
    (10_000_000, "10M-100M", 8),
    (1_000_000, "1M-10M", 5),
    (0, "<1M", 0),
)
#: Served territories (ISO 3166-1 alpha-2) and their points.
COUNTRY_POINTS: dict[str, int] = {
    "GB": 5, "IE": 5, "DE": 5, "FR": 5, "NL": 5, "BE": 5, "AT": 5, "CH": 5, "ES": 4, "IT": 4,
    "SE": 4, "DK": 4, "NO": 4, "FI": 4, "US": 5, "CA": 4,
}
#: Job-title seniority: (regular expression on the lower-case title, label, points); first hit.
SENIORITY_RULES: tuple[tuple[str, str, int], ...] = (
    (r"\b(chief|ceo|cto|cfo|coo|cio|cmo|cro|founder|owner|president|partner)\b", "c-level", 15),
    (r"\b(vp|svp|evp|vice president|head of|director)\b", "vp/director", 12),
    (r"\b(manager|lead|principal)\b", "manager", 7),
)
#: Free-mail domains: a lead writing from one of these is probably not buying for a company.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "hotmail.com",
    "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com", "msn.com", "aol.com", "icloud.com",
    "me.com", "mac.com", "gmx.de", "gmx.net", "web.de", "proton.me", "protonmail.com",
    "mail.com", "yandex.ru", "orange.fr", "free.fr", "t-online.de", "qq.com", "163.com",
})
BUSINESS_EMAIL_POINTS = 5
FREE_MAIL_POINTS = -5
BUDGET_POINTS = 10
AUTHORITY_POINTS: dict[str, int] = {"decision_maker": 10, "influencer": 5}
TIMELINE_POINTS: dict[str, int] = {"now": 10, "quarter": 7, "half_year": 3}

#: Engagement kinds and their full (undecayed) points: demo > trial > webinar > whitepaper >
#: newsletter > form. Short aliases are accepted for signals coming from other systems.
ENGAGEMENT_WEIGHTS: dict[str, float] = {
    "demo_requested": 30.0,
    "trial_started": 25.0,
    "webinar_attended": 15.0,
    "whitepaper_downloaded": 10.0,
    "newsletter_signup": 5.0,
    "form_submitted": 4.0,
    "email_clicked": 3.0,
    "page_view": 1.0,
}
ENGAGEMENT_ALIASES: dict[str, str] = {
    "demo_request": "demo_requested", "demo": "demo_requested",
    "trial": "trial_started", "webinar": "webinar_attended",
    "whitepaper": "whitepaper_downloaded", "whitepaper_download": "whitepaper_downloaded",
    "newsletter": "newsletter_signup", "newsletter_subscribed": "newsletter_signup",
    "form": "form_submitted", "form_submission": "form_submitted",
}
OTHER_ENGAGEMENT_POINTS = 2.0
ENGAGEMENT_HALF_LIFE_DAYS = 30.0

#: Weights of the combined score (see the module docstring).
RULES_FIT_WEIGHT = 0.6
PREDICTED_WEIGHT = 0.7

#: The predicted part lists its largest contributions; the rest are summed into one line.
MAX_SHOWN_CONTRIBUTIONS = 8

OPEN_STATUSES = ("new", "working", "nurturing", "qualified")

# The lead columns the rules and the model read (set-based paths select exactly these).
LEAD_COLUMNS = (
    "id", "industry", "employees", "annual_revenue", "country", "job_title", "email",
    "budget", "authority", "timeline", "source", "status",
)


def _clamp(value: float) -> int:
    return max(0, min(100, round(value)))


def _factor(label: str, points: float) -> dict[str, Any]:
    return {"factor": label, "points": round(points, 2) if isinstance(points, float) else points}


def seniority(job_title: str | None) -> str | None:
    """The seniority label of a job title (`SENIORITY_RULES`), or None."""
    if not job_title:
        return None
    title = job_title.lower()
    for pattern, label, _points in SENIORITY_RULES:
        if re.search(pattern, title):
            return label
    return None


def email_kind(email: str | None) -> str | None:
    """'business' or 'free' for an e-mail address (by its domain), None without one."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower()
    return "free" if domain in FREE_MAIL_DOMAINS else "business"


def _band(value: float | None, bands: Sequence[tuple[int, str, int]]) -> tuple[str, int] | None:
    if value is None:
        return None
    for low, label, points in bands:
        if value >= low:
            return label, points
    return None


def fit_factors(lead: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each fit rule that fires on the lead, with its points (zero-point bands omitted)."""
    out: list[dict[str, Any]] = []
    industry = (lead.get("industry") or "").strip().lower()
    if industry in INDUSTRY_POINTS:
        out.append(_factor(f"industry: {industry}", INDUSTRY_POINTS[industry]))
    band = _band(lead.get("employees"), EMPLOYEE_BANDS)
    if band and band[1]:
        out.append(_factor(f"employees: {band[0]}", band[1]))
    revenue = lead.get("annual_revenue")
    band = _band(float(revenue) if revenue is not None else None, REVENUE_BANDS)
    if band and band[1]:
        out.append(_factor(f"annual revenue: {band[0]}", band[1]))
    country = (lead.get("country") or "").upper()
    if country in COUNTRY_POINTS:
        out.append(_factor(f"territory: {country}", COUNTRY_POINTS[country]))
    level = seniority(lead.get("job_title"))
    if level is not None:
        points = next(p for _pat, label, p in SENIORITY_RULES if label == level)
        out.append(_factor(f"seniority: {level}", points))
    kind = email_kind(lead.get("email"))
    if kind == "business":
        out.append(_factor("e-mail: business domain", BUSINESS_EMAIL_POINTS))
    elif kind == "free":
        out.append(_factor("e-mail: free-mail domain", FREE_MAIL_POINTS))
    budget = lead.get("budget")
    if budget is not None and Decimal(str(budget)) > 0:
        out.append(_factor("budget: stated", BUDGET_POINTS))
    authority = lead.get("authority")
    if authority in AUTHORITY_POINTS:
        out.append(_factor(f"authority: {authority}", AUTHORITY_POINTS[authority]))
    timeline = lead.get("timeline")
    if timeline in TIMELINE_POINTS:
        out.append(_factor(f"timeline: {timeline}", TIMELINE_POINTS[timeline]))
    return out


def engagement_kind(kind: str) -> str:
    """The canonical engagement kind (aliases folded, lower-case)."""
    k = (kind or "").strip().lower()
    return ENGAGEMENT_ALIASES.get(k, k)


def half_life_days() -> float:
    """`ACCORD_LEAD_SCORE_HALF_LIFE_DAYS` (default 30)."""
    from accord.core.settings import get_settings

    return float(get_settings().lead_score_half_life_days)


def decay(age_days: float, half_life_days: float = ENGAGEMENT_HALF_LIFE_DAYS) -> float:
    """Weight of a signal `age_days` old: 1 today, 0.5 one half-life ago (future counts as now)."""
    return float(0.5 ** (max(age_days, 0.0) / half_life_days))


def engagement_factors(
    events: Iterable[tuple[str, datetime]], now: datetime,
    half_life_days: float = ENGAGEMENT_HALF_LIFE_DAYS,
) -> list[dict[str, Any]]:
    """Decayed points per engagement kind, strongest first."""
    now = as_utc(now)
    points: dict[str, float] = {}
    counts: dict[str, int] = {}
    for raw_kind, occurred_at in events:
        kind = engagement_kind(raw_kind)
        weight = ENGAGEMENT_WEIGHTS.get(kind, OTHER_ENGAGEMENT_POINTS)
        age = (now - as_utc(occurred_at)).total_seconds() / 86400.0
        points[kind] = points.get(kind, 0.0) + weight * decay(age, half_life_days)
        counts[kind] = counts.get(kind, 0) + 1
    ordered = sorted(points.items(), key=lambda kv: (-kv[1], kv[0]))
    return [
        {"factor": kind if counts[kind] == 1 else f"{kind} ×{counts[kind]}",
         "points": round(value, 2), "count": counts[kind]}
        for kind, value in ordered
    ]


def combine(fit: int, engagement: int, predicted: int | None) -> int:
    """The combined 0..100 score (formula in the module docstring)."""
    rules = RULES_FIT_WEIGHT * fit + (1 - RULES_FIT_WEIGHT) * engagement
    if predicted is None:
        return _clamp(rules)
    return _clamp(PREDICTED_WEIGHT * predicted + (1 - PREDICTED_WEIGHT) * rules)


# --------------------------------------------------------------------------------------------
# Predictive model: features shared by training and scoring
# --------------------------------------------------------------------------------------------

CATEGORICAL_FEATURES = ("industry", "country", "authority", "timeline", "seniority",
                        "email_kind", "source")
BASE_NUMERIC_FEATURES = ("log_employees", "log_annual_revenue", "budget_stated")
#: Engagement counts (log1p) before the outcome are numeric features too.
ENGAGEMENT_FEATURE_KINDS = tuple(ENGAGEMENT_WEIGHTS)
NUMERIC_FEATURES = BASE_NUMERIC_FEATURES + tuple(f"engagement_{k}" for k in
                                                 ENGAGEMENT_FEATURE_KINDS)


def _log1p(value: Any) -> float | None:
    if value is None:
        return None
    return math.log1p(max(float(value), 0.0))


def raw_features(
    lead: Mapping[str, Any], engagement_counts: Mapping[str, int] | None = None
) -> tuple[dict[str, float | None], dict[str, str | None]]:
    """(numeric, categorical) feature values of one lead, before standardising / one-hot."""
    counts = engagement_counts or {}
    budget = lead.get("budget")
    numeric: dict[str, float | None] = {
        "log_employees": _log1p(lead.get("employees")),
        "log_annual_revenue": _log1p(lead.get("annual_revenue")),
        "budget_stated": 1.0 if budget is not None and float(budget) > 0 else 0.0,
    }
    for kind in ENGAGEMENT_FEATURE_KINDS:
        numeric[f"engagement_{kind}"] = math.log1p(counts.get(kind, 0))
    industry = (lead.get("industry") or "").strip().lower() or None
    country = (lead.get("country") or "").upper() or None
    categorical: dict[str, str | None] = {
        "industry": industry,
        "country": country,
        "authority": lead.get("authority") or None,
        "timeline": lead.get("timeline") or None,
        "seniority": seniority(lead.get("job_title")),
        "email_kind": email_kind(lead.get("email")),
        "source": lead.get("source") or None,
    }
    return numeric, categorical


@dataclass(frozen=True)
class CompiledModel:
    """A stored logistic-regression model, parsed once per scoring run."""

    id: int
    intercept: float
    numeric: tuple[tuple[str, float, float, float], ...]  # name, mean, scale, coef
    categorical: dict[tuple[str, str], float]  # (feature, value) -> coef

    @classmethod
    def from_row(cls, model: LeadScoreModel) -> CompiledModel:
        params = model.params
        return cls(
            id=model.id,
            intercept=float(params["intercept"]),
            numeric=tuple((n["name"], float(n["mean"]), float(n["scale"]), float(n["coef"]))
                          for n in params["numeric"]),
            categorical={(c["feature"], c["value"]): float(c["coef"])
                         for c in params["categorical"]},
        )

    def explain(
        self, numeric: Mapping[str, float | None], categorical: Mapping[str, str | None]
    ) -> tuple[float, list[dict[str, Any]]]:
        """(logit, contributions): contributions sum with the intercept to the logit."""
        contributions: list[dict[str, Any]] = []
        logit = self.intercept
        for name, mean, scale, coef in self.numeric:
            value = numeric.get(name)
            if value is None:
                continue  # imputed with the mean: standardised 0, contributes nothing
            z = (value - mean) / scale
            c = coef * z
            logit += c
            if c != 0.0:
                contributions.append({"factor": name, "value": value, "log_odds": c})
        for feature, value in categorical.items():
            shown = value if value is not None else "(none)"
            coef = self.categorical.get((feature, shown))
            label = f"{feature}: {shown}"
            if coef is None:  # rare or unseen in training: pooled, as training pooled it
                coef = self.categorical.get((feature, "(other)"))
                label += " (other)"
            if coef:
                logit += coef
                contributions.append({"factor": label, "log_odds": coef})
        contributions.sort(key=lambda c: -abs(c["log_odds"]))
        for c in contributions[:MAX_SHOWN_CONTRIBUTIONS]:
            if "value" in c:
                c["value"] = round(c["value"], 4)
        return logit, contributions


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def active_model_row(session: Session) -> LeadScoreModel | None:
    """The newest active stored model (its card), or None before the first training."""
    return session.scalars(
        select(LeadScoreModel).where(LeadScoreModel.active.is_(True))
        .order_by(LeadScoreModel.trained_at.desc(), LeadScoreModel.id.desc()).limit(1)
    ).first()


def active_model(session: Session) -> CompiledModel | None:
    """The newest active predictive model, or None (rules only)."""
    row = active_model_row(session)
    return CompiledModel.from_row(row) if row is not None else None


_MODEL_KEY = "accord.sales.lead_model"


def _session_model(session: Session) -> CompiledModel | None:
    """The active model, looked up once per session: an import or a form burst scores many
    leads in one transaction, each would otherwise re-read and re-parse the stored model.
    Training in the same session drops the memo (`train_lead_model`)."""
    if _MODEL_KEY not in session.info:
        session.info[_MODEL_KEY] = active_model(session)
    return session.info[_MODEL_KEY]


def compute(
    lead: Mapping[str, Any],
    events: Sequence[tuple[str, datetime]],
    model: CompiledModel | None,
    now: datetime,
) -> dict[str, Any]:
    """Every score column for one lead (pure: no session)."""
    fit = fit_factors(lead)
    fit_score = _clamp(sum(f["points"] for f in fit))
    engagement = engagement_factors(events, now, half_life_days())
    engagement_score = _clamp(sum(f["points"] for f in engagement))
    factors: dict[str, Any] = {"fit": fit, "engagement": engagement}
    predicted: int | None = None
    if model is not None:
        counts: dict[str, int] = {}
        for kind, _at in events:
            k = engagement_kind(kind)
            counts[k] = counts.get(k, 0) + 1
        numeric, categorical = raw_features(lead, counts)
        logit, contributions = model.explain(numeric, categorical)
        probability = _sigmoid(logit)
        predicted = _clamp(100 * probability)
        shown = contributions[:MAX_SHOWN_CONTRIBUTIONS]
        rest = contributions[MAX_SHOWN_CONTRIBUTIONS:]
        listed = [{**c, "log_odds": round(c["log_odds"], 4)} for c in shown]
        if rest:  # keep the sum exact: intercept + Σ log_odds == logit
            listed.append({"factor": f"{len(rest)} smaller factors",
                           "log_odds": round(sum(c["log_odds"] for c in rest), 4)})
        factors["predicted"] = listed
        factors["model"] = {"id": model.id, "intercept": round(model.intercept, 4),
                            "logit": round(logit, 4), "probability": round(probability, 4)}
    score = combine(fit_score, engagement_score, predicted)
    factors["formula"] = (
        "score = 0.7 × predicted + 0.3 × (0.6 × fit + 0.4 × engagement)" if predicted is not None
        else "score = 0.6 × fit + 0.4 × engagement"
    )
    return {
        "fit_score": fit_score, "engagement_score": engagement_score,
        "predicted_score": predicted, "score": score, "score_factors": factors,
        "scored_at": now,
    }


def _lead_mapping(lead: Lead) -> dict[str, Any]:
    return {name: getattr(lead, name) for name in LEAD_COLUMNS}


def score_lead(session: Session, lead: Lead, now: datetime | None = None) -> None:
    """Recompute one lead's scores in place (derived data: no audit, no commit)."""
    now = now or utcnow()
    events: list[tuple[str, datetime]] = []
    if lead.id is not None:
        events = [(k, at) for k, at in session.execute(
            select(LeadEngagement.kind, LeadEngagement.occurred_at)
            .where(LeadEngagement.lead_id == lead.id))]
        # callers may score under `no_autoflush`: count signals added but not yet flushed
        events += [(e.kind, e.occurred_at or now) for e in session.new
                   if isinstance(e, LeadEngagement) and e.lead_id == lead.id]
    values = compute(_lead_mapping(lead), events, _session_model(session), now)
    for name, value in values.items():
        setattr(lead, name, value)


def rescore_leads(
    session: Session, *, now: datetime | None = None, chunk_size: int = 5000,
    statuses: Sequence[str] = OPEN_STATUSES,
) -> int:
    """Recompute the scores of every lead in `statuses`, chunk by chunk; returns the count.

    Set-based: per chunk one keyset SELECT of the lead columns, one SELECT of their engagement
    rows and one executemany UPDATE. The version and `updated_at` are left alone (derived data
    must not make a user's If-Match stale)."""
    now = now or utcnow()
    model = active_model(session)
    leads = Lead.__table__
    cols = [leads.c[name] for name in LEAD_COLUMNS]
    stmt = (
        update(leads).where(leads.c.id == bindparam("b_id"))
        .values(fit_score=bindparam("b_fit"), engagement_score=bindparam("b_eng"),
                predicted_score=bindparam("b_pred"), score=bindparam("b_score"),
                score_factors=bindparam("b_factors", type_=leads.c.score_factors.type),
                scored_at=bindparam("b_at", type_=leads.c.scored_at.type),
                updated_at=leads.c.updated_at)
    )
    done = 0
    last_id = 0
    while True:
        rows = session.execute(
            select(*cols).where(and_(leads.c.status.in_(statuses), leads.c.id > last_id))
            .order_by(leads.c.id).limit(chunk_size)
        ).mappings().all()
        if not rows:
            break
        lo, hi = rows[0]["id"], rows[-1]["id"]
        events: dict[int, list[tuple[str, datetime]]] = {}
        for lead_id, kind, at in session.execute(
            select(LeadEngagement.lead_id, LeadEngagement.kind, LeadEngagement.occurred_at)
            .where(LeadEngagement.lead_id.between(lo, hi))
        ):
            events.setdefault(lead_id, []).append((kind, at))
        params = []
        for row in rows:
            v = compute(row, events.get(row["id"], []), model, now)
            params.append({"b_id": row["id"], "b_fit": v["fit_score"],
                           "b_eng": v["engagement_score"], "b_pred": v["predicted_score"],
                           "b_score": v["score"], "b_factors": v["score_factors"],
                           "b_at": now})
        session.execute(stmt, params)
        done += len(rows)
        last_id = hi
    return done


# --------------------------------------------------------------------------------------------
# Training on past outcomes
# --------------------------------------------------------------------------------------------

#: Label: a lead that reached `converted` is a positive, one that reached `disqualified` a
#: negative; open leads (outcome unknown) are not used. Engagement features count the signals
#: up to the outcome (`converted_at`, else `updated_at` for disqualified leads) so that what
#: happened after the decision does not leak into the model.
POSITIVE_STATUS = "converted"
NEGATIVE_STATUS = "disqualified"
MIN_TRAINING_ROWS = 40
MIN_CLASS_ROWS = 10
#: A categorical value seen fewer times than this is pooled into "(other)".
MIN_CATEGORY_COUNT = 5
CV_FOLDS = 5
#: Training reads at most this many outcomes (the newest first): plenty for a linear model,
#: and it keeps memory bounded with a million closed leads.
MAX_TRAINING_ROWS = 200_000
ALGORITHM = "logistic_regression"


class LeadModelError(ValidationProblem):
    """The data cannot train a lead-scoring model (message says why)."""


@dataclass
class TrainingSet:
    numeric: np.ndarray  # (n, len(NUMERIC_FEATURES)), NaN where missing
    categorical: list[list[str | None]]  # per feature, the n raw values
    labels: np.ndarray  # 1 converted, 0 disqualified


def training_set(session: Session, limit: int = MAX_TRAINING_ROWS) -> TrainingSet:
    """Features and labels of the closed leads: two set-based reads (leads, grouped counts)."""
    leads = Lead.__table__
    cols = [leads.c[name] for name in LEAD_COLUMNS]
    rows = session.execute(
        select(*cols).where(leads.c.status.in_((POSITIVE_STATUS, NEGATIVE_STATUS)))
        .order_by(leads.c.id.desc()).limit(limit)
    ).all()
    if not rows:
        return TrainingSet(np.zeros((0, len(NUMERIC_FEATURES))),
                           [[] for _ in CATEGORICAL_FEATURES], np.zeros(0))
    min_id = rows[-1][0]
    cutoff = func.coalesce(leads.c.converted_at, leads.c.updated_at)
    eng = LeadEngagement.__table__
    counts: dict[int, dict[str, int]] = {}
    for lead_id, kind, n in session.execute(
        select(eng.c.lead_id, eng.c.kind, func.count())
        .join(leads, leads.c.id == eng.c.lead_id)
        .where(leads.c.status.in_((POSITIVE_STATUS, NEGATIVE_STATUS)),
               leads.c.id >= min_id, eng.c.occurred_at <= cutoff)
        .group_by(eng.c.lead_id, eng.c.kind)
    ):
        per = counts.setdefault(lead_id, {})
        k = engagement_kind(kind)
        per[k] = per.get(k, 0) + int(n)
    numeric = np.full((len(rows), len(NUMERIC_FEATURES)), np.nan)
    categorical: list[list[str | None]] = [[] for _ in CATEGORICAL_FEATURES]
    labels = np.zeros(len(rows))
    for i, row in enumerate(rows):
        lead = dict(zip(LEAD_COLUMNS, row, strict=True))
        num, cat = raw_features(lead, counts.get(lead["id"], {}))
        for j, name in enumerate(NUMERIC_FEATURES):
            value = num[name]
            if value is not None:
                numeric[i, j] = value
        for j, name in enumerate(CATEGORICAL_FEATURES):
            categorical[j].append(cat[name])
        labels[i] = 1.0 if lead["status"] == POSITIVE_STATUS else 0.0
    return TrainingSet(numeric, categorical, labels)


def _category(value: str | None, kept: set[str]) -> str:
    v = value if value is not None else "(none)"
    return v if v in kept else "(other)"


def fit_model(data: TrainingSet, *, min_rows: int = MIN_TRAINING_ROWS,
              folds: int = CV_FOLDS) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(params, metrics, feature names) of a logistic regression fitted on `data`.

    Numeric features are standardised (missing → the mean), categorical ones one-hot encoded
    with rare values pooled. Metrics are cross-validated (stratified folds): ROC-AUC, PR-AUC."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    n = len(data.labels)
    positives = int(data.labels.sum())
    negatives = n - positives
    if n < min_rows:
        raise LeadModelError(
            f"too little data to train: {n} closed leads (converted or disqualified), "
            f"at least {min_rows} needed", field="leads")
    if positives == 0 or negatives == 0:
        only = "converted" if negatives == 0 else "disqualified"
        raise LeadModelError(
            f"all {n} closed leads are {only}: a model needs both converted and "
            "disqualified leads", field="leads")
    if min(positives, negatives) < MIN_CLASS_ROWS:
        raise LeadModelError(
            f"too few examples of one outcome ({positives} converted, {negatives} "
            f"disqualified): at least {MIN_CLASS_ROWS} of each needed", field="leads")

    x_num = data.numeric.copy()
    means = np.zeros(x_num.shape[1])
    scales = np.ones(x_num.shape[1])
    for j in range(x_num.shape[1]):
        col = x_num[:, j]
        present = ~np.isnan(col)
        if present.any():
            means[j] = float(col[present].mean())
            std = float(col[present].std())
            scales[j] = std if std > 1e-12 else 1.0
        col[~present] = means[j]
        x_num[:, j] = (col - means[j]) / scales[j]

    onehot: list[tuple[str, str]] = []
    rows_idx: list[np.ndarray] = []
    cols_idx: list[np.ndarray] = []
    for j, feature in enumerate(CATEGORICAL_FEATURES):
        counts = Counter("(none)" if v is None else v for v in data.categorical[j])
        kept = {value for value, c in counts.items() if c >= MIN_CATEGORY_COUNT}
        mapped = [_category(v, kept) for v in data.categorical[j]]
        levels = sorted(set(mapped))
        if len(levels) < 2:
            continue  # a constant feature carries no information
        base = x_num.shape[1] + len(onehot)
        index = {level: base + k for k, level in enumerate(levels)}
        onehot.extend((feature, level) for level in levels)
        rows_idx.append(np.arange(n))
        cols_idx.append(np.array([index[m] for m in mapped]))
    n_cols = x_num.shape[1] + len(onehot)
    cat_part = sparse.csr_matrix(
        (np.ones(sum(len(r) for r in rows_idx)),
         (np.concatenate(rows_idx) if rows_idx else np.zeros(0, dtype=int),
          np.concatenate(cols_idx) if cols_idx else np.zeros(0, dtype=int))),
        shape=(n, n_cols))
    num_part = sparse.csr_matrix(
        (x_num.ravel(), (np.repeat(np.arange(n), x_num.shape[1]),
                         np.tile(np.arange(x_num.shape[1]), n))), shape=(n, n_cols))
    x = (num_part + cat_part).tocsr()
    y = data.labels.astype(int)

    clf = LogisticRegression(C=1.0, max_iter=2000)
    k = max(2, min(folds, positives, negatives))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=0)
    proba = cross_val_predict(clf, x, y, cv=cv, method="predict_proba")[:, 1]
    metrics = {
        "roc_auc_cv": round(float(roc_auc_score(y, proba)), 4),
        "pr_auc_cv": round(float(average_precision_score(y, proba)), 4),
        "positive_rate": round(positives / n, 4),
        "n_converted": positives, "n_disqualified": negatives, "cv_folds": k,
    }
    clf.fit(x, y)
    coef = clf.coef_[0]
    params = {
        "intercept": float(clf.intercept_[0]),
        "numeric": [{"name": name, "mean": float(means[j]), "scale": float(scales[j]),
                     "coef": float(coef[j])} for j, name in enumerate(NUMERIC_FEATURES)],
        "categorical": [{"feature": f, "value": v, "coef": float(coef[len(NUMERIC_FEATURES) + i])}
                        for i, (f, v) in enumerate(onehot)],
        "label": f"{POSITIVE_STATUS}=1, {NEGATIVE_STATUS}=0",
        "regularisation": {"penalty": "l2", "C": 1.0},
    }
    features = list(NUMERIC_FEATURES) + [f"{f}={v}" for f, v in onehot]
    return params, metrics, features


def train_lead_model(
    session: Session, principal: Principal = SYSTEM, *, now: datetime | None = None,
    min_rows: int = MIN_TRAINING_ROWS,
) -> LeadScoreModel:
    """Train on past outcomes, store the model as the active one (older ones deactivated).

    Refuses (`LeadModelError`, 422) with too little data or a single outcome. Lead scoring is
    sales configuration: the caller needs `sales_config:update`."""
    require(principal, "sales_config", "update")
    now = now or utcnow()
    params, metrics, features = fit_model(training_set(session), min_rows=min_rows)
    session.execute(update(LeadScoreModel).where(LeadScoreModel.active.is_(True))
                    .values(active=False))
    model = LeadScoreModel(trained_at=now, algorithm=ALGORITHM, features=features,
                           params=params, metrics=metrics,
                           n_samples=metrics["n_converted"] + metrics["n_disqualified"],
                           active=True)
    session.add(model)
    session.flush()
    session.info.pop(_MODEL_KEY, None)
    audit.record(session, principal, "create", "sales_config", f"lead_score_model:{model.id}",
                 detail={"algorithm": ALGORITHM, "metrics": metrics})
    return model


__all__ = [
    "ENGAGEMENT_HALF_LIFE_DAYS", "ENGAGEMENT_WEIGHTS", "CompiledModel", "active_model",
    "combine", "compute", "decay", "engagement_factors", "fit_factors", "rescore_leads",
    "score_lead", "train_lead_model", "LeadModelError", "fit_model", "training_set",
]

