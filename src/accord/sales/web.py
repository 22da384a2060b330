"""The sales domain's pages, mounted by `accord.web.pages`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
# Each part of the domain includes its page router below (one line each).
# leads:
from accord.sales.leads_web import router as _leads  # noqa: E402

router.include_router(_leads)
# deals:
from accord.sales.deals_web import router as _deals  # noqa: E402

router.include_router(_deals)
# activities:
from accord.sales.activities_web import router as _activities  # noqa: E402

router.include_router(_activities)
# upsell:
from accord.sales.upsell_web import router as _upsell  # noqa: E402

router.include_router(_upsell)
# forecast:
from accord.sales.forecast_web import router as _forecast  # noqa: E402

router.include_router(_forecast)
