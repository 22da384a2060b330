"""The lead-scoring model over the API: its card, and retraining through the jobs queue."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from accord.core import jobs
from accord.core.clock import utcnow
from accord.core.db import session_scope
from accord.models import Job, Lead, LeadScoreModel
from accord.sales.scoring_tasks import TRAIN, train_interval


def _history(db, n: int = 120) -> None:
    """Past outcomes where big companies convert and small ones do not."""
    with session_scope(db) as s:
        for i in range(n):
            big = i % 2 == 0
            s.add(Lead(first_name=f"L{i}", email=f"l{i}@firm{i}.example", company=f"Firm {i}",
                       employees=2000 if big else 5, industry="Retail" if big else "Utilities",
                       status="converted" if (big or i % 9 == 0) else "disqualified",
                       disqualify_reason=None if big else "no_budget",
                       converted_at=utcnow() - timedelta(days=3) if big else None))


def test_train_on_request_then_read_the_model(client, make_actor, db) -> None:
    admin, seller = make_actor("admin"), make_actor("sales", team="north")
    assert client.get("/api/v1/lead-scoring/model", headers=admin.headers).status_code == 404
    assert client.post("/api/v1/lead-scoring/train", headers=seller.headers).status_code == 403
    _history(db)
    r = client.post("/api/v1/lead-scoring/train", headers=admin.headers)
    assert r.status_code == 202
    with session_scope(db) as s:
        job = s.get(Job, r.json()["job_id"])
        assert job.kind == TRAIN and job.status == "queued"
    while jobs.run_one(db):
        pass
    model = client.get("/api/v1/lead-scoring/model", headers=seller.headers)
    assert model.status_code == 200, model.text
    card = model.json()
    assert card["n_samples"] == 120 and card["metrics"]["roc_auc_cv"] > 0.8
    with session_scope(db) as s:
        assert s.scalar(select(LeadScoreModel.id).where(LeadScoreModel.active.is_(True))) == (
            card["id"])


def test_training_is_periodic_and_can_be_turned_off(monkeypatch) -> None:
    from accord.core.settings import reset_settings

    assert train_interval() == timedelta(days=7)
    monkeypatch.setenv("ACCORD_SALES_TRAIN_MINUTES", "0")
    reset_settings()
    try:
        assert train_interval() is None
    finally:
        monkeypatch.delenv("ACCORD_SALES_TRAIN_MINUTES")
        reset_settings()
