"""The literal-prefix check in front of included routers changes no routing decision."""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import Match

from accord.app import create_app
from accord.core.routing import literal_prefixes, prefilter_routes


def _sample(path: str) -> str:
    """A concrete path a route's pattern accepts ('{x:path}' takes several segments)."""
    return re.sub(r"\{[^}]*\}", lambda m: "a/b" if m.group(0).endswith(":path}") else "7", path)


def _scope(path: str, method: str = "GET", root_path: str = "") -> dict:
    return {"type": "http", "path": path, "root_path": root_path, "method": method,
            "headers": []}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app()


def _paths(app: FastAPI) -> list[str]:
    samples = {_sample(c.path) for c in iter_route_contexts(app.router.routes) if c.path}
    variants = {v for p in samples for v in (p, p + "/", p.rstrip("/") or "/", p + "/x")}
    return sorted(variants | {"/", "/nope", "/api", "/api/v1", "/api/v1/", "/api/v2/customers",
                              "/v1", "/hooks", "/static", "//api/v1/customers", ""})


def test_every_router_of_several_routes_is_guarded(app: FastAPI) -> None:
    several = [r for r in app.router.routes if len(list(iter_route_contexts([r]))) > 1]
    assert len(several) >= 12  # the collection API, the API's domains, the web pages
    assert all(hasattr(r.matches, "__wrapped__") for r in several)


def test_guard_agrees_with_the_router_on_every_route_and_near_miss(app: FastAPI) -> None:
    paths = _paths(app)
    assert len(paths) > 300
    checked = rejected = 0
    for route in app.router.routes:
        original = getattr(route.matches, "__wrapped__", None)
        if original is None:
            continue
        for path in paths:
            for method in ("GET", "POST"):
                scope = _scope(path, method)
                got, want = route.matches(dict(scope)), original(dict(scope))
                assert got[0] == want[0], (path, method, got, want)
                checked += 1
                rejected += want[0] == Match.NONE
    assert checked and rejected  # both outcomes were exercised


def test_every_route_is_still_reached_first_where_it_was(app: FastAPI) -> None:
    """The first top-level route to match each sample path is the same with and without the
    guards (which route wins is what decides the endpoint)."""
    def first(path: str, guarded: bool) -> int | None:
        for i, route in enumerate(app.router.routes):
            matches = route.matches if guarded else getattr(route.matches, "__wrapped__",
                                                            route.matches)
            if matches(_scope(path))[0] == Match.FULL:
                return i
        return None

    for path in _paths(app):
        assert first(path, True) == first(path, False), path


def test_under_a_root_path_the_router_decides() -> None:
    router = APIRouter()

    @router.get("/things/{thing_id}")
    def thing(thing_id: int) -> dict:  # pragma: no cover - never called
        return {}

    @router.get("/other")
    def other() -> dict:  # pragma: no cover - never called
        return {}

    app = FastAPI()
    app.include_router(router, prefix="/api")
    prefilter_routes(app)
    route = app.router.routes[-1]
    assert literal_prefixes(route) == ("/api/other", "/api/things/")
    assert route.matches(_scope("/api/things/3"))[0] == Match.FULL
    assert route.matches(_scope("/web/things/3"))[0] == Match.NONE
    # mounted under /mount, the path Starlette matches is the one without the root path
    scoped = _scope("/mount/api/things/3", root_path="/mount")
    assert route.matches(scoped)[0] == route.matches.__wrapped__(scoped)[0] == Match.FULL


def test_requests_still_reach_late_routes(client, admin) -> None:
    """End to end through the guarded app: an API route near the end and a web page."""
    assert client.get("/api/v1/tickets", headers=admin.headers).status_code == 200
    assert client.get("/api/v1/nothing-here", headers=admin.headers).status_code == 404
    assert client.get("/login").status_code == 200
