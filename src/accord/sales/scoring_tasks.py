"""Lead-scoring jobs: the periodic bulk rescoring of open leads and (re)training the model."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from accord.core import jobs
from accord.core.settings import get_settings
from accord.sales import scoring

log = logging.getLogger("accord.sales.scoring")
RESCORE = "sales.rescore_leads"
TRAIN = "sales.train_lead_model"


def rescore_interval() -> timedelta | None:
    """`ACCORD_SALES_RESCORE_MINUTES` (nightly by default); 0 turns it off.

    Engagement decays with time, so scores must be recomputed even when nothing changes."""
    minutes = get_settings().sales_rescore_minutes
    return timedelta(minutes=minutes) if minutes and minutes > 0 else None


@jobs.handler(RESCORE)
def rescore(session: Session, payload: dict[str, Any]) -> None:
    count = scoring.rescore_leads(session, chunk_size=int(payload.get("chunk_size", 5000)))
    log.info("rescored %s open leads", count)


@jobs.handler(TRAIN)
def train(session: Session, payload: dict[str, Any]) -> None:
    """Train, then rescore the open leads with the new model. Too little data is not a failure
    to retry: the rules keep scoring and the job logs why."""
    try:
        model = scoring.train_lead_model(session)
    except scoring.LeadModelError as exc:
        log.warning("lead-scoring model not trained: %s", exc.detail)
        return
    log.info("lead-scoring model %s trained: %s", model.id, model.metrics)
    scoring.rescore_leads(session)


def train_interval() -> timedelta | None:
    """`ACCORD_SALES_TRAIN_MINUTES` (weekly by default); 0 turns it off: new outcomes (won,
    lost leads) reach the model without anyone remembering to retrain."""
    minutes = get_settings().sales_train_minutes
    return timedelta(minutes=minutes) if minutes > 0 else None


jobs.periodic(RESCORE, rescore_interval)
jobs.periodic(TRAIN, train_interval)
