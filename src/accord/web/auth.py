"""Login and logout with a session cookie.

The login form cannot use the session's CSRF token (there is no session yet), so it carries a
signed double-submit token: a random nonce in a short-lived HttpOnly cookie and, in the form,
an HMAC of that nonce under the server secret. A cross-site page can neither read the cookie nor
forge the HMAC, so it cannot log a victim into the attacker's account (login CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from accord.access import service as access
from accord.access.deps import SESSION_COOKIE
from accord.access.passwords import new_secret
from accord.core.db import session_factory
from accord.core.ratelimit import SlidingWindow
from accord.core.settings import get_settings
from accord.web.context import check_csrf, safe_next
from accord.web.rendering import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

LOGIN_NONCE_COOKIE = "accord_login_nonce"
GENERIC_FAILURE = "The e-mail address or password is incorrect."
# Online password guessing: failures per account and per client address in 15 minutes.
FAILURES_PER_ACCOUNT = SlidingWindow(limit=10, window_seconds=900)
FAILURES_PER_CLIENT = SlidingWindow(limit=50, window_seconds=900)


def _sign(nonce: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, b"login-csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def _login_form(
    request: Request, *, next_path: str, email: str = "", error: str = "", status_code: int = 200
) -> Response:
    nonce = new_secret(24)
    response = render(
        request,
        "login.html",
        {"next": next_path, "email": email, "error": error, "login_token": _sign(nonce)},
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_NONCE_COOKIE,
        nonce,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=get_settings().cookie_secure,
    )
    return response


def _has_session(request: Request) -> bool:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return False
    with session_factory(write=False)() as session:
        return access.session_principal(session, cookie) is not None


@router.get("/login")
def login_page(
    request: Request, next: Annotated[str | None, Query(max_length=2000)] = None
) -> Response:
    if _has_session(request):
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_form(request, next_path=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    login_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    target = safe_next(next)
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE, "")
    if not nonce or not hmac.compare_digest(_sign(nonce).encode(), login_token.encode()):
        return _login_form(
            request,
            next_path=target,
            email=email,
            status_code=403,
            error="The login form expired. Please sign in again.",
        )
    account_key = email.strip().lower()
    client_key = request.client.host if request.client else "unknown"
    wait = FAILURES_PER_ACCOUNT.retry_after(account_key) or FAILURES_PER_CLIENT.retry_after(
        client_key
    )
    if wait:
        response = _login_form(
            request,
            next_path=target,
            email=email,
            status_code=429,
            error=f"Too many failed sign-ins. Try again in {wait // 60 + 1} minutes.",
        )
        response.headers["Retry-After"] = str(wait)
        return response
    settings = get_settings()
    with session_factory(write=True)() as session:
        user = access.authenticate(session, email, password)
        if user is None:
            session.rollback()
            FAILURES_PER_ACCOUNT.hit(account_key)
            FAILURES_PER_CLIENT.hit(client_key)
            return _login_form(
                request, next_path=target, email=email, error=GENERIC_FAILURE, status_code=401
            )
        FAILURES_PER_ACCOUNT.reset(account_key)
        old = request.cookies.get(SESSION_COOKIE)
        if old:  # never keep a session id that existed before the login (fixation)
            access.end_session(session, old)
        cookie, _csrf = access.start_session(session, user, settings.session_hours)
        session.commit()
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=settings.session_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
    )
    response.delete_cookie(LOGIN_NONCE_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    """End the session; a forged logout (no or wrong CSRF token) is refused with 403."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        with session_factory(write=True)() as session:
            found = access.session_principal(session, cookie)
            if found is not None:
                check_csrf(found[1], request, csrf_token)
                access.end_session(session, cookie)
                session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=get_settings().cookie_secure
    )
    return response
