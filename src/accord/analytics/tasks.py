"""Background jobs of the analytics domain: the periodic refresh of KPIs, customer scores and
product suggestions."""

from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from accord.core import jobs
from accord.core.settings import get_settings

log = logging.getLogger("accord.analytics")
REFRESH = "analytics.refresh"


def refresh_interval() -> timedelta | None:
    """`ACCORD_ANALYTICS_REFRESH_MINUTES` (default nightly: 1440); 0 turns the schedule off."""
    minutes = get_settings().analytics_refresh_minutes
    return timedelta(minutes=minutes) if minutes > 0 else None


@jobs.handler(REFRESH)
def refresh(session: Session, payload: dict[str, Any]) -> None:
    from accord.analytics.recommend_service import refresh_recommendations
    from accord.analytics.scoring_service import refresh_scores
    from accord.analytics.service import record_failure, refresh_kpis

    try:
        run = refresh_kpis(session, payload.get("engine"))
    except Exception:
        record_failure(payload.get("engine"), traceback.format_exc(limit=5))
        raise
    log.info("analytics refresh %s done: %s", run.id, run.figures.get("total_seconds"))
    summary = refresh_scores(session)  # RFM, CLV, churn risk and value tier of every customer
    log.info("customer scores %s: %s customers", summary["run_id"], summary["customers"])
    recs = refresh_recommendations(session)  # suggestions per customer, bought together
    if recs["status"] == "done":
        log.info("recommendations: %s for %s customers", recs["recommendations"],
                 recs["customers"])
    else:
        log.warning("recommendations not refreshed: %s", recs["reason"])


jobs.periodic(REFRESH, refresh_interval)
