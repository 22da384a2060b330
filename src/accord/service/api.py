"""The service domain's REST routers, mounted under /api/v1 by the app factory."""

from __future__ import annotations

from fastapi import APIRouter

from accord.service.canned_api import router as _canned
from accord.service.config_api import router as _config
from accord.service.knowledge_api import router as _knowledge  # includes the public help API
from accord.service.surveys_api import router as _surveys
from accord.service.tickets_api import router as _tickets  # includes the public widget

router = APIRouter()
for _part in (_tickets, _config, _canned, _knowledge, _surveys):
    router.include_router(_part)
