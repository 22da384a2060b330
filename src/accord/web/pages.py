"""The web UI: server-rendered Jinja2 pages enhanced with HTMX, over the domain services.

`router` is what the app mounts; each area lives in its own module.
"""

from fastapi import APIRouter

from accord.analytics import web as analytics
from accord.sales import web as sales
from accord.service import web as service
from accord.web import admin, auth, customers, docs, imports, sources, stewardship

router = APIRouter(include_in_schema=False)
for _area in (auth, customers, admin, docs, imports, sources, stewardship, analytics, sales,
              service):
    router.include_router(_area.router)
