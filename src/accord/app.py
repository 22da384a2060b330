"""FastAPI application factory: mounts every domain's API and web routers."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from accord import __version__
from accord.core import errors
from accord.core.db import get_engine
from accord.core.jobs import EmbeddedWorker
from accord.core.middleware import BodyLimit, SecurityHeaders
from accord.core.routing import prefilter_routes
from accord.core.settings import get_settings

log = logging.getLogger("accord")
STATIC = Path(__file__).parent / "web" / "static"


def api_routers() -> list[APIRouter]:
    """Every domain's API router, mounted under /api/v1 in this order."""
    from accord.access.api import router as access
    from accord.analytics.api import router as analytics
    from accord.analytics.recommend_api import router as customer_recommendations
    from accord.analytics.scores_api import router as customer_scores
    from accord.commerce.api import router as commerce
    from accord.customers.accounts_api import router as accounts
    from accord.customers.api import router as customers
    from accord.integration.imports_api import router as imports
    from accord.integration.sources_api import router as sources
    from accord.integration.stewardship_api import router as stewardship
    from accord.interactions.api import router as interactions
    from accord.sales.api import router as sales
    from accord.service.api import router as service

    return [access, customers, accounts, interactions, commerce, sources, imports, stewardship,
            analytics, customer_scores, customer_recommendations, sales, service]


def create_app(*, start_worker: bool = False, freeze_heap: bool = False) -> FastAPI:
    settings = get_settings()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = EmbeddedWorker() if start_worker else None
        if worker:
            worker.start()
        if freeze_heap:
            # What start-up loaded (modules, models, compiled statements, the routes) lives as
            # long as the process: kept out of the cycle collector, which would otherwise walk
            # it again on every full collection while requests allocate.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if worker:
                worker.close()

    app = FastAPI(
        title="Accord",
        version=__version__,
        lifespan=lifespan,
        description="Enterprise customer management: one golden record for every touchpoint.",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)

    # The health probes come first: FastAPI matches a path against the routes in order (each
    # included router twice, once to match and once to dispatch), and a probe should not pay
    # for a scan of every API route. Nothing else answers under /health.
    @app.get("/health/live", tags=["health"], response_model=dict[str, str])
    async def live() -> Response:  # nothing to wait for: no thread-pool hop, no validation
        return Response(b'{"status":"ok"}', media_type="application/json")

    @app.get("/health/ready", tags=["health"])
    def ready() -> JSONResponse:
        try:
            with get_engine().connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure to reach the store means not ready
            log.warning("readiness check failed: %s", exc)
            return errors.problem_response(
                503,
                "Service unavailable",
                "the database is unreachable",
                headers={"Retry-After": "5"},
            )
        return JSONResponse({"status": "ok"})

    # What sources send, the Segment-compatible collection API (/v1) and signed webhooks
    # (/hooks), comes next: the busiest machine-to-machine paths, sharing no prefix with the
    # rest, need not be matched against every API and web route first.
    from accord.integration.collection_api import router as collection_router
    from accord.integration.webhooks_api import router as webhooks_router

    app.include_router(collection_router)
    app.include_router(webhooks_router)

    # Each domain router straight under the app (not through one /api/v1 router of routers):
    # one nesting level less means one matching pass less over the routes before a request's.
    for router in api_routers():
        app.include_router(router, prefix="/api/v1")

    from accord.web.pages import router as web_router

    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    _document_security(app)
    app.add_middleware(SecurityHeaders)
    from accord.integration.imports import MAX_UPLOAD_BYTES
    from accord.service.attachments import MAX_FILES

    # ticket messages may carry attachments, each checked against its own limit; import files
    # are streamed to disk and checked against the import limit while they are stored
    uploads = settings.attachment_max_bytes * MAX_FILES + settings.max_body_bytes
    files = MAX_UPLOAD_BYTES + settings.max_body_bytes
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes,
                       larger=(("/api/v1/tickets/", uploads), ("/service/tickets/", uploads),
                               ("/api/v1/imports", files), ("/imports/preview", files)))
    prefilter_routes(app)
    return app


# Endpoints under /api/v1 that take no login (web forms posted by anonymous visitors).
# Anonymous by design: web forms, the chat widget, the help centre and its assistant, survey
# answers. Each is rate-limited per IP and returns nothing internal.
PUBLIC_API_PATHS = ("/api/v1/forms/", "/api/v1/widget/", "/api/v1/help/",
                    "/api/v1/surveys/answer/")


def _document_security(app: FastAPI) -> None:
    """Declare bearer tokens (and the UI's session cookie) in the OpenAPI document, so clients
    and the interactive docs know how to authenticate."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token from POST /api/v1/tokens",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "accord_session",
                    "description": "the web UI's session (unsafe methods need X-CSRF-Token)",
                },
            }
            for path, item in schema.get("paths", {}).items():
                if path.startswith(PUBLIC_API_PATHS):
                    for operation in item.values():
                        operation["security"] = []  # no login: public by design
                elif path.startswith("/api/v1/"):
                    for operation in item.values():
                        operation["security"] = [{"bearer": []}, {"session": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def serve_app() -> FastAPI:
    """Factory for `accord serve` (uvicorn may run several worker processes of it)."""
    from accord.tasks import register_all

    register_all()
    return create_app(start_worker=get_settings().embedded_worker, freeze_heap=True)
