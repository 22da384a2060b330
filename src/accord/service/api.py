"""The service domain's REST routers, mounted under /api/v1 by the app factory."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
# Each part of the domain includes its router below (one line each).
