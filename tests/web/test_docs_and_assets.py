"""API docs page and vendored static assets: everything served locally, nothing inline."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import inline_code


def test_api_docs_use_vendored_swagger_ui_and_a_static_init_script(client) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in scripts
    assert "/static/js/swagger-init.js" in scripts
    assert '/static/vendor/swagger-ui/swagger-ui.css' in page.text
    assert 'data-spec-url="/api/openapi.json"' in page.text
    assert inline_code(page.text) == []
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/api/openapi.json").status_code == 200
    assert "/api/docs" not in client.get("/api/openapi.json").text  # the page is not an API


def test_api_docs_show_the_navigation_when_signed_in(signed_in, seeded) -> None:
    page = signed_in(seeded.emails["support"]).get("/api/docs")
    assert "Sam Support" in page.text and 'name="csrf-token"' in page.text


@pytest.mark.parametrize("path,kind", [
    ("/static/vendor/htmx/htmx.min.js", "javascript"),
    ("/static/vendor/swagger-ui/swagger-ui-bundle.js", "javascript"),
    ("/static/vendor/swagger-ui/swagger-ui.css", "css"),
    ("/static/js/accord.js", "javascript"),
    ("/static/js/swagger-init.js", "javascript"),
    ("/static/css/accord.css", "css"),
    ("/static/favicon.svg", "svg"),
])
def test_static_assets_are_served_locally(client, path: str, kind: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert kind in response.headers["content-type"]
    assert len(response.content) > 100


def test_the_ui_script_sends_the_csrf_header_on_htmx_writes(client) -> None:
    js = client.get("/static/js/accord.js").text
    assert "htmx:configRequest" in js and "X-CSRF-Token" in js
    swagger = client.get("/static/js/swagger-init.js").text
    assert "validatorUrl: null" in swagger  # no call to the public validator service
