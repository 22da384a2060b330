"""Lead scoring: rule points, recency decay, the predictive model and bulk rescoring."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from accord.access.policy import Principal
from accord.core.errors import Forbidden
from accord.models.sales import Lead, LeadEngagement, LeadScoreModel
from accord.sales import scoring

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _points(factors: list[dict[str, Any]]) -> dict[str, float]:
    return {f["factor"]: f["points"] for f in factors}


# --- rules (pure) ---------------------------------------------------------------------------


def test_fit_points_of_a_strong_lead_add_up_by_hand() -> None:
    lead = {
        "industry": "Software", "employees": 250, "annual_revenue": Decimal("25000000"),
        "country": "de", "job_title": "VP of Engineering", "email": "ana@acme.io",
        "budget": Decimal("50000"), "authority": "decision_maker", "timeline": "quarter",
    }
    got = _points(scoring.fit_factors(lead))
    assert got == {
        "industry: software": 15, "employees: 200-999": 12, "annual revenue: 10M-100M": 8,
        "territory: DE": 5, "seniority: vp/director": 12, "e-mail: business domain": 5,
        "budget: stated": 10, "authority: decision_maker": 10, "timeline: quarter": 7,
    }
    # 15 + 12 + 8 + 5 + 12 + 5 + 10 + 10 + 7 = 84
    values = scoring.compute(lead, [], None, NOW)
    assert values["fit_score"] == 84


def test_fit_points_of_a_weak_lead_go_negative_then_clamp_to_zero() -> None:
    lead = {"industry": "farming", "employees": 3, "country": "ZZ", "job_title": "Student",
            "email": "someone@gmail.com", "budget": Decimal("0"), "authority": "user",
            "timeline": "year"}
    assert _points(scoring.fit_factors(lead)) == {"e-mail: free-mail domain": -5}
    values = scoring.compute(lead, [], None, NOW)
    assert values["fit_score"] == 0
    assert values["score"] == 0


def test_seniority_keywords_pick_the_highest_level() -> None:
    assert scoring.seniority("Chief Revenue Officer") == "c-level"
    assert scoring.seniority("Co-Founder & CTO") == "c-level"
    assert scoring.seniority("Head of Sales") == "vp/director"
    assert scoring.seniority("Product Manager") == "manager"
    assert scoring.seniority("Accountant") is None
    assert scoring.seniority(None) is None


def test_engagement_decays_with_its_age() -> None:
    half = scoring.ENGAGEMENT_HALF_LIFE_DAYS
    assert scoring.decay(0) == 1.0
    assert scoring.decay(half) == pytest.approx(0.5)
    assert scoring.decay(2 * half) == pytest.approx(0.25)
    events = [
        ("demo_requested", NOW),  # 30
        ("demo_requested", NOW - timedelta(days=half)),  # 15
        ("whitepaper", NOW - timedelta(days=2 * half)),  # alias, 10 × 0.25
        ("newsletter_signup", NOW + timedelta(days=3)),  # clock skew counts as now: 5
    ]
    got = _points(scoring.engagement_factors(events, NOW))
    assert got == {"demo_requested ×2": 45.0, "newsletter_signup": 5.0,
                   "whitepaper_downloaded": 2.5}
    values = scoring.compute({}, events, None, NOW)
    assert values["engagement_score"] == 52  # 45 + 5 + 2.5 rounds to 52
    # no model: score = 0.6 × fit + 0.4 × engagement
    assert values["score"] == round(0.4 * 52)
    assert values["predicted_score"] is None


def test_engagement_weights_rank_demo_above_form() -> None:
    w = scoring.ENGAGEMENT_WEIGHTS
    assert (w["demo_requested"] > w["trial_started"] > w["webinar_attended"]
            > w["whitepaper_downloaded"] > w["newsletter_signup"] > w["form_submitted"])


def test_combined_score_formula() -> None:
    assert scoring.combine(80, 50, None) == round(0.6 * 80 + 0.4 * 50)
    assert scoring.combine(80, 50, 90) == round(0.7 * 90 + 0.3 * (0.6 * 80 + 0.4 * 50))
    assert scoring.combine(100, 100, 100) == 100


def test_contributions_of_a_hand_made_model() -> None:
    """log-odds = intercept + coef × standardised value + one-hot coefficients, by hand."""
    model = scoring.CompiledModel(
        id=1, intercept=0.5,
        numeric=(("log_employees", 2.0, 1.0, 0.8), ("log_annual_revenue", 10.0, 2.0, 0.4)),
        categorical={("industry", "software"): 1.0, ("industry", "(other)"): -0.3,
                     ("country", "(none)"): 0.2})
    lead = {"industry": "Farming", "employees": round(math.e ** 3 - 1)}  # log1p ≈ 3 → z ≈ 1
    values = scoring.compute(lead, [], model, NOW)
    z = (math.log1p(lead["employees"]) - 2.0) / 1.0
    logit = 0.5 + 0.8 * z - 0.3 + 0.2  # revenue missing: the mean, contributes nothing
    factors = values["score_factors"]
    assert factors["model"]["logit"] == pytest.approx(logit, abs=1e-4)
    assert {f["factor"]: f["log_odds"] for f in factors["predicted"]} == pytest.approx({
        "log_employees": 0.8 * z, "industry: farming (other)": -0.3, "country: (none)": 0.2,
    }, abs=1e-4)
    p = 1 / (1 + math.exp(-logit))
    assert values["predicted_score"] == round(100 * p) == 77
    assert values["score"] == round(0.7 * 77 + 0.3 * (0.6 * values["fit_score"]))


# --- score_lead on the database ---------------------------------------------------------------


def test_score_lead_sets_every_score_column(session: Session) -> None:
    lead = Lead(industry="banking", employees=60, email="x@bank.example", timeline="now",
                status="new")
    session.add(lead)
    session.flush()
    session.add_all([
        LeadEngagement(lead_id=lead.id, kind="webinar_attended", occurred_at=NOW),
        LeadEngagement(lead_id=lead.id, kind="form_submitted",
                       occurred_at=NOW - timedelta(days=60)),
    ])
    session.flush()
    scoring.score_lead(session, lead, now=NOW)
    assert lead.fit_score == 12 + 8 + 5 + 10
    assert lead.engagement_score == round(15 + 4 * 0.25)
    assert lead.predicted_score is None
    assert lead.score == round(0.6 * 35 + 0.4 * 16)
    assert lead.scored_at == NOW
    assert [f["factor"] for f in lead.score_factors["fit"]][0] == "industry: banking"
    assert lead.score_factors["engagement"][0]["factor"] == "webinar_attended"
    session.flush()  # JSON factors and the timestamp are storable on this engine
    session.expire(lead)
    assert lead.score_factors["fit"][0]["points"] == 12
    # a signal added but not flushed yet (callers score under no_autoflush) counts too
    with session.no_autoflush:
        session.add(LeadEngagement(lead_id=lead.id, kind="demo_requested", occurred_at=NOW))
        scoring.score_lead(session, lead, now=NOW)
    assert lead.engagement_score == round(30 + 15 + 4 * 0.25)


# --- the predictive model -------------------------------------------------------------------

INDUSTRIES = ("software", "retail", "education", "manufacturing")


def _true_logit(industry: str, employees: int) -> float:
    """The synthetic truth: software converts, retail does not, bigger companies convert."""
    return (-0.5 + {"software": 1.8, "retail": -1.5}.get(industry, 0.0)
            + 1.2 * (math.log10(employees) - 2.0))


def _synthetic(rng: random.Random, n: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        industry = rng.choice(INDUSTRIES)
        employees = int(10 ** rng.uniform(0.5, 4.0))
        p = 1 / (1 + math.exp(-_true_logit(industry, employees)))
        rows.append({"industry": industry, "employees": employees,
                     "country": rng.choice(("GB", "DE", "FR")),
                     "converted": rng.random() < p})
    return rows


def _insert_leads(session: Session, rows: list[dict[str, Any]], status: str | None = None
                  ) -> None:
    session.execute(insert(Lead), [
        {"industry": r["industry"], "employees": r["employees"], "country": r["country"],
         "status": status or ("converted" if r["converted"] else "disqualified"),
         "converted_at": NOW if (status is None and r["converted"]) else None}
        for r in rows
    ])


def _auc(labels: list[bool], scores: list[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def test_model_recovers_a_known_signal_and_scores_held_out_leads(session: Session) -> None:
    rng = random.Random(7)
    train = _synthetic(rng, 500)
    held_out = _synthetic(rng, 300)
    _insert_leads(session, train)
    _insert_leads(session, held_out, status="new")
    session.flush()

    model = scoring.train_lead_model(session, now=NOW)
    assert model.active and model.algorithm == "logistic_regression"
    assert model.n_samples == 500
    assert model.metrics["roc_auc_cv"] > 0.7
    assert 0 < model.metrics["pr_auc_cv"] <= 1
    coefs = {(c["feature"], c["value"]): c["coef"] for c in model.params["categorical"]}
    numeric = {n["name"]: n["coef"] for n in model.params["numeric"]}
    assert numeric["log_employees"] > 0.3  # bigger companies convert: the right sign
    assert coefs[("industry", "software")] > coefs[("industry", "education")] \
        > coefs[("industry", "retail")]

    assert scoring.rescore_leads(session, now=NOW, chunk_size=128) == 300
    scored = session.execute(
        select(Lead.id, Lead.predicted_score, Lead.score_factors)
        .where(Lead.status == "new").order_by(Lead.id)).all()
    assert len(scored) == 300
    auc = _auc([r["converted"] for r in held_out], [s.predicted_score for s in scored])
    assert auc > 0.7, auc

    # the contributions explain the probability: intercept + Σ log-odds = logit(p)
    for row in scored[:25]:
        factors = row.score_factors
        logit = factors["model"]["intercept"] + sum(c["log_odds"] for c in factors["predicted"])
        assert logit == pytest.approx(factors["model"]["logit"], abs=1e-3)
        p = factors["model"]["probability"]
        assert math.log(p / (1 - p)) == pytest.approx(factors["model"]["logit"], abs=1e-2)
        assert row.predicted_score == round(100 * p)


def test_retraining_keeps_one_active_model(session: Session) -> None:
    _insert_leads(session, _synthetic(random.Random(3), 120))
    first = scoring.train_lead_model(session, now=NOW)
    second = scoring.train_lead_model(session, now=NOW + timedelta(days=1))
    session.expire_all()
    active = session.scalars(select(LeadScoreModel).where(LeadScoreModel.active.is_(True))).all()
    assert [m.id for m in active] == [second.id]
    assert scoring.active_model(session).id == second.id  # type: ignore[union-attr]
    assert first.id != second.id


def test_training_refuses_a_single_outcome(session: Session) -> None:
    rows = [{**r, "converted": True} for r in _synthetic(random.Random(1), 80)]
    _insert_leads(session, rows)
    with pytest.raises(scoring.LeadModelError, match="all 80 closed leads are converted"):
        scoring.train_lead_model(session, now=NOW)
    assert session.scalar(select(LeadScoreModel.id)) is None


def test_training_refuses_too_little_data(session: Session) -> None:
    _insert_leads(session, _synthetic(random.Random(2), 12))
    with pytest.raises(scoring.LeadModelError, match="too little data"):
        scoring.train_lead_model(session, now=NOW)


def test_training_refuses_a_rare_outcome(session: Session) -> None:
    rows = _synthetic(random.Random(4), 60)
    for i, r in enumerate(rows):
        r["converted"] = i < 3
    _insert_leads(session, rows)
    with pytest.raises(scoring.LeadModelError, match="too few examples"):
        scoring.train_lead_model(session, now=NOW)


def test_training_needs_sales_config_update(session: Session) -> None:
    _insert_leads(session, _synthetic(random.Random(5), 100))
    seller = Principal(user_id=1, email="s@example.com", role="sales")
    with pytest.raises(Forbidden):
        scoring.train_lead_model(session, seller, now=NOW)
    assert session.scalar(select(LeadScoreModel.id)) is None


def test_engagement_after_the_outcome_does_not_leak_into_training(session: Session) -> None:
    """Signals recorded after a lead converted must not become features of its conversion."""
    rows = _synthetic(random.Random(6), 100)
    _insert_leads(session, rows)
    session.flush()
    converted = session.scalars(select(Lead.id).where(Lead.status == "converted")).all()
    session.execute(insert(LeadEngagement), [
        {"lead_id": lid, "kind": "demo_requested", "occurred_at": NOW + timedelta(days=1),
         "detail": {}} for lid in converted
    ])
    data = scoring.training_set(session)
    demo = scoring.NUMERIC_FEATURES.index("engagement_demo_requested")
    assert (data.numeric[:, demo] == 0).all()


# --- bulk rescoring -----------------------------------------------------------------------------


def test_rescore_updates_every_open_lead_in_chunks_without_touching_versions(
    session: Session,
) -> None:
    old = datetime(2025, 1, 1, tzinfo=UTC)
    session.execute(insert(Lead), [
        {"industry": "software" if i % 2 else "retail", "employees": 20 + i,
         "status": "converted" if i % 10 == 0 else "new", "updated_at": old,
         "created_at": old}
        for i in range(230)
    ])
    session.flush()
    ids = session.scalars(select(Lead.id).where(Lead.status == "new").order_by(Lead.id)).all()
    session.execute(insert(LeadEngagement), [
        {"lead_id": lid, "kind": "trial_started", "occurred_at": NOW, "detail": {}}
        for lid in ids[:50]
    ])
    assert scoring.rescore_leads(session, now=NOW, chunk_size=40) == len(ids) == 207
    rows = session.execute(select(Lead.id, Lead.status, Lead.industry, Lead.employees,
                                  Lead.fit_score,
                                  Lead.engagement_score, Lead.score, Lead.scored_at,
                                  Lead.version, Lead.updated_at).order_by(Lead.id)).all()
    engaged = set(ids[:50])
    for r in rows:
        if r.status == "converted":
            assert r.scored_at is None  # closed leads keep their final score
            continue
        assert r.scored_at == NOW
        assert r.version == 1 and r.updated_at == old
        fit = 15 if r.industry == "software" else 6
        fit += 12 if r.employees >= 200 else 8 if r.employees >= 50 else 4
        if r.id in engaged:
            assert r.engagement_score == 25
        else:
            assert r.engagement_score == 0
        assert r.fit_score == fit
        assert r.score == round(0.6 * r.fit_score + 0.4 * r.engagement_score)
