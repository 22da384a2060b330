"""Lead-scoring model: read the active model's card, ask for retraining."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from accord.access import audit
from accord.access.deps import Ctx, api_ctx
from accord.access.service import require
from accord.core import jobs
from accord.core.errors import NotFound
from accord.sales import scoring
from accord.sales.scoring_tasks import TRAIN

router = APIRouter(prefix="/lead-scoring", tags=["leads"])


class ScoreModelOut(BaseModel):
    id: int
    trained_at: datetime
    algorithm: str
    features: list[Any]
    metrics: dict[str, Any]
    n_samples: int


@router.get("/model", response_model=ScoreModelOut, summary="The active lead-scoring model",
            description="Its algorithm, features and cross-validated metrics (ROC-AUC, PR-AUC) "
            "from training on past conversions; 404 before the first training.")
def active_model(ctx: Ctx = Depends(api_ctx)) -> ScoreModelOut:
    require(ctx.principal, "sales_config", "read")
    row = scoring.active_model_row(ctx.session)
    if row is None:
        raise NotFound("no lead-scoring model has been trained yet")
    return ScoreModelOut(id=row.id, trained_at=row.trained_at, algorithm=row.algorithm,
                         features=list(row.features), metrics=dict(row.metrics),
                         n_samples=row.n_samples)


@router.post("/train", status_code=202, summary="Retrain the lead-scoring model",
             description="Queues `sales.train_lead_model` (then every open lead is rescored); "
             "with too little history the job keeps the rules-only scores and logs why.")
def train(ctx: Ctx = Depends(api_ctx)) -> JSONResponse:
    require(ctx.principal, "sales_config", "update")
    job = jobs.enqueue(ctx.session, TRAIN, {"requested_by": ctx.principal.user_id},
                       max_attempts=1)
    assert job is not None  # no dedupe key: always a new job
    ctx.session.flush()
    audit.record(ctx.session, ctx.principal, "train", "sales_config", "lead_score_model",
                 detail={"job_id": job.id})
    job_id = job.id
    ctx.commit()
    return JSONResponse({"job_id": job_id}, status_code=202)
