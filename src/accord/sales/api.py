"""The sales domain's REST routers, mounted under /api/v1 by the app factory."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
# Each part of the domain includes its router below (one line each).
# leads:
from accord.sales.leads_api import router as _leads  # noqa: E402

router.include_router(_leads)
# deals:
from accord.sales.deals_api import router as _deals  # noqa: E402

router.include_router(_deals)
# activities:
from accord.sales.activities_api import router as _activities  # noqa: E402

router.include_router(_activities)
# conversion:
from accord.sales.conversion_api import router as _conversion  # noqa: E402

router.include_router(_conversion)
from accord.sales.upsell_api import router as _upsell  # noqa: E402

router.include_router(_upsell)
# lead scoring:
from accord.sales.scoring_api import router as _scoring  # noqa: E402

router.include_router(_scoring)
# forecast:
from accord.sales.forecast_api import router as _forecast  # noqa: E402

router.include_router(_forecast)
