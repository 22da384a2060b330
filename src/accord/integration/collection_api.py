"""Segment's HTTP Tracking API, served by Accord: existing tracking libraries send here unchanged.

`POST /v1/identify|track|page|screen|group|alias` take one call; `/v1/batch` (and `/v1/import`)
take `{"batch": [...], "context", "integrations", "sentAt"}`. analytics.js's one-letter paths
(`/v1/i`, `/v1/t`, `/v1/p`, `/v1/s`, `/v1/g`, `/v1/a`, `/v1/b`) are the same endpoints, and
answers carry `Access-Control-Allow-Origin: *` so browsers can send from any site.
Authentication is a source's write key as the HTTP Basic user name (or `writeKey` in the body).
Answers follow Segment: 200 `{"success": true}`, 400 for malformed JSON or an oversized call
(32 KB) or batch (500 KB); a single call that is not valid is a 400 naming the field. A batch is
never failed by one bad message: the others land and, as an Accord extension, `rejected` lists
each refused message with its index, field and reason.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from accord.core.clock import utcnow
from accord.core.errors import Problem
from accord.integration import collection
from accord.integration.collection import MessageError

router = APIRouter(prefix="/v1", tags=["collection"])

_SPEC = ("Segment-compatible: see Segment's HTTP Tracking API. Authenticate with the source's "
         "write key as the HTTP Basic user name (empty password).")
_OK = {"success": True}
# Browsers send from the tracked site's origin; the write key is public there by design (as in
# Segment), so any origin may post and read the answer.
_CORS = {"Access-Control-Allow-Origin": "*"}
# analytics.js (analytics-next) posts to one-letter paths: /v1/t, /v1/p, ... and /v1/b.
SHORT = {"identify": "i", "track": "t", "page": "p", "screen": "s", "group": "g", "alias": "a"}


async def _body(request: Request) -> bytes:
    return await request.body()


def _land(request: Request, raw: bytes, *, batch: bool, call: str | None = None) -> JSONResponse:
    """Decode and validate here (outside the write lock); the group writer authenticates,
    ingests and commits, together with the requests arriving meanwhile."""
    received_at = utcnow()
    limit = collection.MAX_BATCH_BYTES if batch else collection.MAX_CALL_BYTES
    doc = collection.decode_body(raw, request.headers.get("content-encoding"), limit)
    if not isinstance(doc, dict):
        raise Problem("the body must be a JSON object", field="body")
    options: dict[str, Any] = {}
    if batch:
        messages = doc.get("batch")
        if not isinstance(messages, list):
            raise Problem("`batch` must be an array of calls", field="batch")
        for key in ("context", "integrations"):
            if doc.get(key) is not None and not isinstance(doc[key], dict):
                raise Problem(f"`{key}` must be an object", field=key)
        options = {"context": doc.get("context"), "integrations": doc.get("integrations"),
                   "sent_at": doc.get("sentAt")}
    else:
        messages = [doc]
    try:
        prepared = collection.prepare_all(
            messages, received_at=received_at, call=call,
            check_size=batch and len(raw) > collection.MAX_CALL_BYTES, **options)
    except MessageError as exc:  # the batch's own sentAt
        raise Problem(f"{exc.field}: {exc.reason}", field=exc.field) from None
    key = collection.write_key_of(request.headers.get("authorization"), doc)
    result = collection.WRITER.submit(collection.Job(key, prepared, single=not batch))
    if batch:
        return JSONResponse({**_OK, "rejected": result.rejected}, headers=_CORS)
    return JSONResponse(_OK, headers=_CORS)


def _single(call: str) -> Any:
    def handler(request: Request, raw: bytes = Depends(_body)) -> JSONResponse:
        return _land(request, raw, batch=False, call=call)

    handler.__name__ = f"collect_{call}"
    return handler


for _call, _summary in (
    ("identify", "Identify a user and record their traits"),
    ("track", "Record an action the user performed"),
    ("page", "Record a web page view"),
    ("screen", "Record a mobile app screen view"),
    ("group", "Associate the user with a group (an account)"),
    ("alias", "Merge a previous id into a user id"),
):
    router.add_api_route(f"/{_call}", _single(_call), methods=["POST"], summary=_summary,
                         description=_SPEC, response_model=dict[str, bool])
    router.add_api_route(f"/{SHORT[_call]}", _single(_call), methods=["POST"],
                         include_in_schema=False)


@router.post("/batch", summary="Send many calls in one request", description=_SPEC)
def collect_batch(request: Request, raw: bytes = Depends(_body)) -> JSONResponse:
    return _land(request, raw, batch=True)


@router.post("/import", summary="Alias of /v1/batch (historical imports)", description=_SPEC)
@router.post("/b", include_in_schema=False)
def collect_import(request: Request, raw: bytes = Depends(_body)) -> JSONResponse:
    return _land(request, raw, batch=True)


@router.options("/{path:path}", include_in_schema=False)
def preflight(path: str) -> Response:
    """CORS preflight of browser libraries that send the key in an Authorization header."""
    return Response(status_code=204, headers={
        **_CORS, "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
        "Access-Control-Max-Age": "86400"})
