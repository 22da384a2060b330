"""The service domain's pages (agent workspace, knowledge base, public self-service, surveys),
mounted by `accord.web.pages`."""

from __future__ import annotations

from fastapi import APIRouter

from accord.service.knowledge_web import router as _knowledge
from accord.service.surveys_web import router as _surveys
from accord.service.workspace_web import router as _workspace

router = APIRouter(include_in_schema=False)
for _part in (_workspace, _knowledge, _surveys):
    router.include_router(_part)
