"""The service domain's pages (agent workspace, knowledge base, public self-service, surveys),
mounted by `accord.web.pages`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
# Each part of the domain includes its page router below (one line each).
