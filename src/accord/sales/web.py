"""The sales domain's pages, mounted by `accord.web.pages`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
# Each part of the domain includes its page router below (one line each).
# leads:
# deals:
# activities:
# forecast:
