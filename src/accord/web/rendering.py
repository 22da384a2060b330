"""Templates, locale-aware formatting and HTML error pages for the web UI.

Autoescaping is on for every template; nothing marks user data safe. Formatting (dates, money,
relative times) follows the viewer's locale through Babel, so templates only place values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, format_timedelta
from babel.numbers import format_currency, format_decimal
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from accord import __version__
from accord.access import audit
from accord.access.policy import Principal
from accord.core.clock import as_utc, utcnow
from accord.core.db import session_scope
from accord.core.errors import Forbidden, Problem
from accord.core.settings import get_settings
from accord.web.context import LoginRequired, Viewer, is_htmx, parse_locale

log = logging.getLogger("accord.web")
TEMPLATES = Path(__file__).parent / "templates"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def label(value: str | None) -> str:
    """`privacy_officer` → `Privacy officer` (enum values shown to people)."""
    return value.replace("_", " ").capitalize() if value else ""


def initials(name: str | None) -> str:
    parts = [p for p in (name or "").split() if p[:1].isalnum()]
    return "".join(p[0] for p in (parts[:1] + parts[1:][-1:])).upper() or "?"


CHANNEL_LABELS = {"sms": "SMS", "email": "E-mail"}
# Countries that write "City, Region Postcode"; elsewhere the postcode leads ("10115 Berlin").
CITY_FIRST = frozenset({"US", "CA", "AU", "GB", "IE", "NZ"})


def channel_label(value: str | None) -> str:
    return CHANNEL_LABELS.get(value or "", label(value))


env.filters["label"] = label
env.filters["channel"] = channel_label
env.filters["initials"] = initials


class Formatter:
    """Dates, times and money in the viewer's locale. Times are shown in UTC (no per-user zone)."""

    def __init__(self, locale: Locale) -> None:
        self.locale = locale

    def date(self, value: date | datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = as_utc(value)
        return format_date(value, "medium", locale=self.locale)

    def datetime(self, value: datetime | None) -> str:
        if value is None:
            return ""
        value = as_utc(value)
        pattern = str(self.locale.datetime_formats.get("medium", "{1} {0}"))
        return (pattern.replace("{1}", format_date(value, "medium", locale=self.locale))
                .replace("{0}", format_time(value, "short", tzinfo=UTC, locale=self.locale)))

    def iso(self, value: date | datetime | None) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return as_utc(value).isoformat(timespec="seconds")
        return value.isoformat()

    def ago(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return format_timedelta(as_utc(value) - utcnow(), add_direction=True, threshold=1.0,
                                locale=self.locale)

    def money(self, amount: Decimal | float | int | None, currency: str | None = None) -> str:
        if amount is None:
            return ""
        return format_currency(Decimal(str(amount)), currency or get_settings().default_currency,
                               locale=self.locale)

    def country(self, code: str | None) -> str:
        """`DE` → `Germany` in the viewer's language (the code when unknown)."""
        if not code:
            return ""
        return str(self.locale.territories.get(code.upper(), code))

    def language(self, code: str | None) -> str:
        if not code:
            return ""
        try:
            name = Locale.parse(code.replace("-", "_")).get_display_name(self.locale)
        except (ValueError, TypeError, UnknownLocaleError):
            return code
        return name[:1].upper() + name[1:] if name else code

    def address_lines(self, a: Any) -> list[str]:
        """Street, town and country lines in the order the address's country writes them."""
        street = ", ".join(p for p in (a.line1, a.line2) if p)
        if a.country in CITY_FIRST:
            town = ", ".join(p for p in (a.city, a.region) if p)
            town = f"{town} {a.postcode}" if a.postcode else town
        else:
            town = " ".join(p for p in (a.postcode, a.city) if p)
            town = f"{town}, {a.region}" if a.region else town
        return [street, town, self.country(a.country)]

    def number(self, value: Decimal | float | int | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.locale)


def render(request: Request, template: str, context: dict[str, Any] | None = None,
           status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    locale = viewer.locale if viewer else parse_locale(None)
    page = env.get_template(template).render({
        "request": request, "viewer": viewer, "fmt": Formatter(locale),
        "lang": locale.language, "accord_version": __version__, "path": request.url.path,
        **(context or {}),
    })
    response = HTMLResponse(page, status_code=status_code, headers=headers)
    response.headers["Cache-Control"] = "no-store"  # pages hold personal data
    response.headers["Vary"] = "HX-Request, Cookie"
    return response


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    return render(request, "error.html", {"status": status, "title": title, "detail": detail},
                  status_code=status)


def login_redirect(request: Request, target: str) -> Response:
    if is_htmx(request):  # an HTMX swap would paste the login page into the table
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _audit_denial(request: Request, exc: Forbidden) -> None:
    """A refused page request is itself audited (in its own transaction), like the API's."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        return
    pending = getattr(request.state, "db_session", None)
    if pending is not None:
        pending.rollback()  # nothing of the refused request is kept; frees SQLite's write lock
    parts = [p for p in request.url.path.split("/") if p]
    resource = (parts[1] if parts[:1] == ["admin"] and len(parts) > 1 else
                parts[0] if parts else "web")
    try:
        with session_scope() as session:
            audit.record(session, principal, "denied", resource[:60], None,
                         detail={"method": request.method, "path": request.url.path[:300],
                                 "reason": exc.detail[:300], "via": "web"})
    except Exception:  # the refusal matters more than its audit entry
        log.exception("could not audit a refused page request")


class PageRoute(APIRoute):
    """Routes that answer failures with HTML pages instead of problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return login_redirect(request, exc.next_path)
            except Problem as exc:
                if isinstance(exc, Forbidden):
                    _audit_denial(request, exc)
                return error_page(request, exc.status, exc.title, exc.detail)
            except RequestValidationError as exc:
                if any(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
                    return error_page(request, 404, "Not found", "There is no such page.")
                return error_page(request, 422, "Invalid request",
                                  "Some of the values sent are not valid.")
            except StaleDataError:
                return error_page(request, 409, "Changed by someone else",
                                  "The record was changed while you were working on it. "
                                  "Reload the page and try again.")
            except DataError as exc:  # e.g. a number beyond the column's range
                log.info("data error on a page: %s", exc.orig)
                return error_page(request, 422, "Invalid value",
                                  "A value in the request is out of range.")
            except IntegrityError as exc:
                log.info("integrity error on a page: %s", exc.orig)
                return error_page(request, 409, "Conflict",
                                  "The change conflicts with existing data.")

        return run
