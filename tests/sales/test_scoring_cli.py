"""`accord sales train-lead-model | rescore-leads | forecast` and the scoring jobs."""

from __future__ import annotations

import json
import random

from sqlalchemy import select
from typer.testing import CliRunner

from accord.cli import app
from accord.core import db as dbmod
from accord.core import jobs
from accord.models.sales import Lead, LeadScoreModel
from tests.sales.test_scoring import _insert_leads, _synthetic


def test_train_refuses_without_data_then_trains_and_rescores(db: str) -> None:
    result = CliRunner().invoke(app, ["sales", "train-lead-model"])
    assert result.exit_code == 2
    assert "too little data" in result.output
    with dbmod.session_scope(db) as s:
        rng = random.Random(11)
        _insert_leads(s, _synthetic(rng, 150))
        _insert_leads(s, _synthetic(rng, 20), status="working")
    result = CliRunner().invoke(app, ["sales", "train-lead-model", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["n_samples"] == 150 and card["rescored"] == 20
    assert 0.5 < card["metrics"]["roc_auc_cv"] <= 1
    with dbmod.session_scope(db) as s:
        scores = s.scalars(select(Lead.predicted_score).where(Lead.status == "working")).all()
        assert len(scores) == 20 and all(p is not None for p in scores)
    text = CliRunner().invoke(app, ["sales", "train-lead-model", "--no-rescore"])
    assert text.exit_code == 0 and "ROC-AUC" in text.output and "0 open leads" in text.output
    rescored = CliRunner().invoke(app, ["sales", "rescore-leads"])
    assert rescored.output.strip() == "20 open leads rescored"


def test_jobs_are_registered_and_training_job_tolerates_little_data(db: str) -> None:
    import accord.sales.tasks  # noqa: F401  registers the handlers

    assert "sales.rescore_leads" in jobs.PERIODIC
    with dbmod.session_scope(db) as s:
        jobs.HANDLERS["sales.train_lead_model"](s, {})  # too little data: logged, not raised
        assert s.scalar(select(LeadScoreModel.id)) is None
        _insert_leads(s, _synthetic(random.Random(12), 100))
        _insert_leads(s, _synthetic(random.Random(13), 5), status="new")
        jobs.HANDLERS["sales.train_lead_model"](s, {})
        assert s.scalar(select(LeadScoreModel.id)) is not None
        jobs.HANDLERS["sales.rescore_leads"](s, {"chunk_size": 2})
        assert None not in s.scalars(select(Lead.scored_at).where(Lead.status == "new")).all()


def test_forecast_command_prints_json(db: str) -> None:
    result = CliRunner().invoke(app, ["sales", "forecast", "--start", "2026-10-01",
                                      "--backtest", "2"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["forecast"]["start"] == "2026-10-01" and out["forecast"]["total"] == []
    assert out["backtest"]["quarters"] == []
    bad = CliRunner().invoke(app, ["sales", "forecast", "--start", "2026-10-05"])
    assert bad.exit_code == 2 and "first day of a month" in bad.output
