"""Interactive API documentation: Swagger UI from vendored files, started by a static script."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from accord.web.context import optional_viewer
from accord.web.rendering import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/api/docs")
def api_docs(request: Request) -> Response:
    """Public like the schema it shows; a signed-in viewer's CSRF token lets "Try it out" write."""
    optional_viewer(request)  # the navigation (and the CSRF meta tag) when signed in
    return render(request, "docs.html")
