"""Who is looking at a page: the session cookie → principal, CSRF check and the viewer's locale.

Web pages authenticate with the session cookie only (never a bearer token or a parameter), and
every unsafe request must carry the session's CSRF token, from the form field `csrf_token` or
the `X-CSRF-Token` header that the static script adds to HTMX requests.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from babel import Locale, UnknownLocaleError
from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from accord.access import service as access
from accord.access.deps import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE
from accord.access.policy import Principal, can
from accord.core.db import session_factory
from accord.core.errors import Forbidden
from accord.core.settings import get_settings
from accord.models import User

CSRF_FIELD = "csrf_token"
DEFAULT_PAGE = "/customers"


class LoginRequired(Exception):
    """Raised by the page context when there is no valid session; the page route redirects."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class AdminPage:
    key: str
    label: str
    url: str
    allowed: Callable[[Principal], bool]


def _manages(resource: str) -> Callable[[Principal], bool]:
    return lambda p: any(can(p, resource, a) for a in ("create", "update", "delete"))


# Which admin page each role reaches follows the policy: reading users (and so the role matrix
# that governs them) or managing custom field definitions.
ADMIN_PAGES = (
    AdminPage("users", "Users", "/admin/users", lambda p: can(p, "users", "read")),
    AdminPage("roles", "Roles & permissions", "/admin/roles", lambda p: can(p, "users", "read")),
    AdminPage("custom_fields", "Custom fields", "/admin/custom-fields", _manages("custom_fields")),
    AdminPage("sources", "Sources", "/admin/sources", lambda p: can(p, "sources", "read")),
)


def parse_locale(value: str | None) -> Locale:
    for candidate in (value, get_settings().default_locale, "en_GB"):
        if not candidate:
            continue
        try:
            return Locale.parse(candidate.replace("-", "_"))
        except (ValueError, TypeError, UnknownLocaleError):
            continue
    raise AssertionError("en_GB is always a valid locale")


@dataclass(frozen=True)
class Viewer:
    """Plain values for the layout (safe to use after the database session is gone)."""

    user_id: int
    full_name: str
    email: str
    role: str
    csrf: str
    locale: Locale
    admin_pages: tuple[AdminPage, ...] = field(default=())

    def can(self, resource: str, action: str = "read") -> bool:
        """For navigation: does the viewer's role reach this resource at all?"""
        return can(Principal(user_id=self.user_id, email=self.email, role=self.role),
                   resource, action)

    @property
    def role_label(self) -> str:
        return self.role.replace("_", " ").capitalize()


@dataclass
class WebCtx:
    request: Request
    session: Session
    principal: Principal
    user: User
    viewer: Viewer
    form: FormData | None = None

    def commit(self) -> None:
        self.session.commit()

    def field(self, name: str) -> str:
        """A submitted form value as stripped text ('' when absent)."""
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else ""


def safe_next(raw: str | None) -> str:
    """A same-site relative path to go to after login, or the default page (no open redirect)."""
    if not raw or len(raw) > 2000:
        return DEFAULT_PAGE
    if any(ord(ch) < 0x20 or ch == "\\" for ch in raw):
        return DEFAULT_PAGE
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not raw.startswith("/") or raw.startswith("//"):
        return DEFAULT_PAGE
    if parts.path in ("/login", "/logout"):
        return DEFAULT_PAGE
    return raw


def login_url(request: Request) -> str:
    if request.method not in SAFE_METHODS:  # a form post cannot be replayed by a redirect
        return "/login"
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(safe_next(here), safe="/")


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def wants_partial(request: Request) -> bool:
    """HTMX swaps a fragment, except when it restores history (then it needs the full page)."""
    return is_htmx(request) and request.headers.get("HX-History-Restore-Request") != "true"


async def _submitted_form(request: Request) -> FormData | None:
    if request.method in SAFE_METHODS:
        return None
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return await request.form()
    return None


def check_csrf(expected: str, request: Request, form_value: object) -> None:
    """Compare the header or form token with the session's, in constant time."""
    sent = request.headers.get(CSRF_HEADER) or (form_value if isinstance(form_value, str) else None)
    if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("The form has expired or did not come from Accord. Reload the page and "
                        "try again.", field=CSRF_FIELD, title="Request refused")


def _lookup(session: Session, request: Request) -> tuple[Principal, User, Viewer] | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    found = access.session_principal(session, cookie) if cookie else None
    user = session.get(User, found[0].user_id) if found else None
    if found is None or user is None:
        return None
    principal, csrf = found
    viewer = Viewer(
        user_id=user.id, full_name=user.full_name, email=user.email, role=user.role, csrf=csrf,
        locale=parse_locale(user.locale),
        admin_pages=tuple(p for p in ADMIN_PAGES if p.allowed(principal)))
    request.state.viewer = viewer
    request.state.principal = principal
    return principal, user, viewer


def optional_viewer(request: Request) -> Viewer | None:
    """For public pages that show the navigation when someone is signed in."""
    with session_factory(write=False)() as session:
        found = _lookup(session, request)
    return found[2] if found else None


def web_ctx(request: Request, form: FormData | None = Depends(_submitted_form)) -> Iterator[WebCtx]:
    """FastAPI dependency for pages: the logged-in viewer or a redirect to /login."""
    write = request.method not in SAFE_METHODS
    session = session_factory(write=write)()
    request.state.db_session = session  # so a refusal can release the write lock first
    try:
        found = _lookup(session, request)
        if found is None:
            raise LoginRequired(login_url(request))
        principal, user, viewer = found
        if write:
            check_csrf(viewer.csrf, request, form.get(CSRF_FIELD) if form is not None else None)
        yield WebCtx(request, session, principal, user, viewer, form)
    finally:
        session.rollback()
        session.close()
