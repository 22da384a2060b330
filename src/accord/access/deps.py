"""Request context for the HTTP layers: who is acting (session cookie or bearer token only) and
the unit of work. The handler's boundary commits; nothing below it does."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from accord.access import audit, service
from accord.access.policy import Principal
from accord.core import idempotency
from accord.core.concurrency import etag, require_if_match
from accord.core.db import loop_read_session, session_factory, session_scope
from accord.core.errors import Forbidden, Unauthorized

log = logging.getLogger("accord.access")

SESSION_COOKIE = "accord_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Ctx:
    session: Session
    principal: Principal
    request: Request
    csrf_token: str | None = None

    def commit(self) -> None:
        self.session.commit()

    def created(
        self,
        fn: Callable[[], Any],
        body: Any = None,
        status_code: int = 201,
        headers: Callable[[Any], dict[str, str]] | None = None,
    ) -> Response:
        """Run a POST, honouring `Idempotency-Key`; the saved response commits with the change.

        `body` is the parsed request (a Pydantic model or plain data) the key is bound to."""
        key = self.request.headers.get("Idempotency-Key")
        path = self.request.url.path
        body_hash = ""
        if key is not None:
            if hasattr(body, "model_dump"):
                body = body.model_dump(mode="json")
            body_hash = idempotency.request_hash("POST", path, body)
            saved = idempotency.lookup(
                self.session, self.principal.key, key, "POST", path, body_hash
            )
            if saved is not None:
                return JSONResponse(
                    saved.body,
                    status_code=saved.status_code,
                    headers={**saved.headers, "Idempotent-Replayed": "true"},
                )
        result = fn()
        body_out = jsonable_encoder(result)
        extra = headers(result) if headers else {}
        if key is not None:
            idempotency.store(
                self.session,
                self.principal.key,
                key,
                "POST",
                path,
                body_hash,
                status_code,
                body_out,
                extra,
            )
        self.commit()
        return JSONResponse(body_out, status_code=status_code, headers=extra)

    def updated(
        self,
        record: Any,
        if_match: str | None,
        response: Response,
        apply: Callable[[], Any],
        out: Callable[[], Any],
    ) -> Any:
        """PATCH: check `If-Match` against the record, apply, serialise, commit, set the ETag."""
        require_if_match(if_match, record.version)
        apply()
        result = out()
        self.commit()
        response.headers["ETag"] = etag(record.version)
        return result

    def deleted(self, record: Any, if_match: str | None, apply: Callable[[], Any]) -> Response:
        """DELETE: check `If-Match`, apply, commit, answer 204."""
        require_if_match(if_match, record.version)
        apply()
        self.commit()
        return Response(status_code=204)


def _resolve(request: Request, session: Session) -> tuple[Principal, str | None]:
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise Unauthorized(
                "use 'Authorization: Bearer <token>'",
                field="Authorization",
                headers={"WWW-Authenticate": "Bearer"},
            )
        principal = service.principal_from_token(session, secret.strip())
        if principal is None:
            raise Unauthorized(
                "the token is invalid, expired or revoked",
                field="Authorization",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return principal, None
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = service.session_principal(session, cookie)
        if found is not None:
            principal, csrf = found
            if request.method not in SAFE_METHODS:
                sent = (
                    request.headers.get(CSRF_HEADER)
                    or getattr(request.state, "form_csrf", None)
                    or ""
                )
                if not hmac.compare_digest(sent, csrf):
                    raise Forbidden("missing or wrong CSRF token", field=CSRF_HEADER)
            return principal, csrf
    raise Unauthorized("authentication required", headers={"WWW-Authenticate": "Bearer"})


def _audit_denial(request: Request, principal: Principal, exc: Forbidden) -> None:
    """Record a refused request in the audit trail, in its own transaction (nothing else of the
    request is kept). The resource is the first path segment after the API prefix."""
    parts = [p for p in request.url.path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        parts = parts[2:]
    resource = parts[0] if parts else "api"
    record_id = next(iter(request.path_params.values()), None)
    try:
        with session_scope() as session:
            audit.record(
                session,
                principal,
                "denied",
                resource[:60],
                None if record_id is None else str(record_id)[:64],
                detail={
                    "method": request.method,
                    "path": request.url.path[:300],
                    "reason": exc.detail[:300],
                },
            )
    except Exception:  # the denial response matters more than its audit entry
        log.exception("could not audit a denied request")


def api_ctx(request: Request) -> Iterator[Ctx]:
    """FastAPI dependency: an authenticated context with its own session."""
    with api_context(request) as ctx:
        yield ctx


@contextmanager
def api_context(request: Request, *, on_loop: bool = False) -> Iterator[Ctx]:
    """`api_ctx` as a plain context manager, for an async endpoint that runs its database work
    in one thread-pool call (a sync dependency plus a sync endpoint take three thread hops).
    `on_loop`: a read running on the event loop itself, on the loop's own session
    (`loop_read_session`)."""
    with loop_read_session() if on_loop else _request_session(request) as session:
        principal, csrf = _resolve(request, session)
        try:
            yield Ctx(session, principal, request, csrf)
        except Forbidden as exc:
            session.rollback()
            _audit_denial(request, principal, exc)
            raise


@contextmanager
def _request_session(request: Request) -> Iterator[Session]:
    session = session_factory(write=request.method not in SAFE_METHODS)()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def optional_principal(request: Request) -> tuple[Principal, str] | None:
    """For web pages: the logged-in user, or None (the page then redirects to /login)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    with session_factory(write=False)() as session:
        return service.session_principal(session, cookie)
