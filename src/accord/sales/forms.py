"""Public web forms: lead capture without a login, and the forms' management (`sales_config`).

A submission is checked in this order, so a hostile client learns nothing beyond "this form
exists and is active": the client's rate (429 with Retry-After), the form (404 when unknown or
inactive), the honeypot (filled → the ordinary success answer, nothing stored), unknown fields
(422 naming the first one), sizes (422), required fields and the consent box (422). Values are
stored as given (a `<script>` in a name is kept verbatim) and escaped wherever they are shown.

Idempotency: the engagement's dedupe key is a hash of the form, the normalised values and the
UTC day, so a double click, a browser retry or a bot replaying the same body the same day
returns the same answer and adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from accord.access import audit
from accord.access.policy import Principal
from accord.access.service import require
from accord.core.clock import utcnow
from accord.core.errors import Conflict, NotFound, ValidationProblem
from accord.core.events import emit
from accord.core.ratelimit import SlidingWindow
from accord.models import Team
from accord.models.sales import ConsentRecord, LeadForm
from accord.sales import leads
from accord.sales.leads_schemas import FIELD_LIMITS, LeadFields, LeadFormCreate, LeadFormUpdate

CONFIG = "sales_config"
# A field no person sees (hidden by the page's CSS) that bots fill in: a filled honeypot gets
# the ordinary success answer and nothing is stored.
HONEYPOT = "website_url"
CONSENT_FIELD = "consent"
MAX_FORM_BYTES = 16 * 1024
MAX_KEYS = 40
TRUE_VALUES = frozenset({"on", "true", "1", "yes", "y"})
# Per client address: enough for people behind one office NAT, few enough to stop a flood.
SUBMISSIONS_PER_CLIENT = SlidingWindow(limit=20, window_seconds=600)


def form_principal(slug: str) -> Principal:
    """Who writes a public submission: audited as `form:<slug>`, never a user."""
    return Principal(user_id=None, email=f"form:{slug}", role="admin", via="system")


# --- management --------------------------------------------------------------------------------

def list_forms(session: Session, principal: Principal) -> list[LeadForm]:
    require(principal, CONFIG, "read")
    return list(session.scalars(select(LeadForm).order_by(LeadForm.slug)))


def get_form(session: Session, principal: Principal, form_id: int,
             action: str = "read") -> LeadForm:
    require(principal, CONFIG, action)
    form = session.get(LeadForm, form_id)
    if form is None:
        raise NotFound(f"lead form {form_id} does not exist")
    return form


def _check_form(session: Session, form: LeadForm) -> None:
    unknown = [f for f in form.required if f not in form.fields]
    if unknown:
        raise ValidationProblem(f"required field {unknown[0]!r} is not among the form's fields",
                                field="required")
    if form.consent_required and not (form.consent_wording and form.consent_purpose):
        raise ValidationProblem("a form that requires consent needs its wording and purpose",
                                field="consent_wording" if not form.consent_wording
                                else "consent_purpose")
    if form.consent_wording and not form.consent_purpose:
        raise ValidationProblem("consent wording needs a purpose", field="consent_purpose")
    if form.team_id is not None and session.get(Team, form.team_id) is None:
        raise ValidationProblem(f"team {form.team_id} does not exist", field="team_id")


def create_form(session: Session, principal: Principal, data: LeadFormCreate) -> LeadForm:
    require(principal, CONFIG, "create")
    if session.scalar(select(LeadForm.id).where(LeadForm.slug == data.slug)) is not None:
        raise Conflict(f"a form with slug {data.slug!r} already exists", field="slug")
    values = data.model_dump()
    values["fields"] = list(dict.fromkeys(values["fields"]))
    values["required"] = list(dict.fromkeys(values["required"]))
    form = LeadForm(**values)
    _check_form(session, form)
    session.add(form)
    session.flush()
    audit.record(session, principal, "create", "lead_forms", form.id,
                 data.model_dump(exclude_unset=True).keys())
    emit(session, "lead_form.created", "lead_form", form.id, {"slug": form.slug},
         principal.user_id)
    return form


def update_form(session: Session, principal: Principal, form: LeadForm,
                data: LeadFormUpdate) -> LeadForm:
    require(principal, CONFIG, "update")
    changes = data.model_dump(exclude_unset=True)
    for key in ("name", "fields", "required", "consent_required", "engagement_kind", "active"):
        if key in changes and changes[key] is None:
            raise ValidationProblem(f"{key} cannot be null", field=key)
    changed = [k for k, v in changes.items() if getattr(form, k) != v]
    if not changed:
        return form
    with session.no_autoflush:
        for key in changed:
            setattr(form, key, changes[key])
        _check_form(session, form)
    session.flush()
    audit.record(session, principal, "update", "lead_forms", form.id, changed)
    emit(session, "lead_form.updated", "lead_form", form.id, {"fields": sorted(changed)},
         principal.user_id)
    return form


def delete_form(session: Session, principal: Principal, form: LeadForm) -> None:
    require(principal, CONFIG, "delete")
    audit.record(session, principal, "delete", "lead_forms", form.id, (), {"slug": form.slug})
    session.delete(form)
    session.flush()


# --- public submission ---------------------------------------------------------------------------

@dataclass
class Submission:
    """What a submission became (never shown to the client, which always gets one answer)."""

    outcome: str  # created | updated | duplicate | honeypot
    lead_id: int | None = None


def active_form(session: Session, slug: str) -> LeadForm:
    form = None
    if len(slug) <= 64:
        form = session.scalar(select(LeadForm).where(LeadForm.slug == slug))
    if form is None or not form.active:
        raise NotFound("there is no such form")
    return form


def _text(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValidationProblem(f"{name} must be text", field=name)
    text = str(value).strip()
    if "\x00" in text:
        raise ValidationProblem(f"{name} may not contain NUL characters", field=name)
    return text


def _checked(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in TRUE_VALUES


def dedupe_key(slug: str, values: dict[str, Any], consent: bool, day: str) -> str:
    """Same form, same normalised values (case and spacing of text ignored), same UTC day."""
    norm = {k: " ".join(str(v).split()).casefold() for k, v in sorted(values.items())}
    doc = json.dumps([slug, norm, consent, day], sort_keys=True, separators=(",", ":"))
    return "form:" + hashlib.sha256(doc.encode()).hexdigest()


def validate_submission(form: LeadForm, raw: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The accepted values and whether consent was given; `ValidationProblem` names the field."""
    if len(raw) > MAX_KEYS:
        raise ValidationProblem("too many fields", field="body")
    allowed = set(form.fields)
    for name in raw:
        if name not in allowed and name not in (CONSENT_FIELD, HONEYPOT):
            raise ValidationProblem(f"unknown field {name[:60]!r}", field=name[:60])
    values: dict[str, Any] = {}
    for name in form.fields:
        if name not in raw:
            continue
        text = _text(name, raw[name])
        if len(text) > FIELD_LIMITS[name]:
            raise ValidationProblem(f"{name} is longer than {FIELD_LIMITS[name]} characters",
                                    field=name)
        if text:
            values[name] = text
    for name in form.required:
        if name not in values:
            raise ValidationProblem(f"{name} is required", field=name)
    consent = _checked(raw.get(CONSENT_FIELD))
    if form.consent_required and not consent:
        raise ValidationProblem("this form needs your consent", field=CONSENT_FIELD)
    try:
        parsed = LeadFields.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err.get("loc") else "body"
        raise ValidationProblem(f"{name}: {err.get('msg', 'invalid')}", field=name) from None
    return parsed.model_dump(exclude_none=True, include=set(values)), consent


def submit(session: Session, form: LeadForm, raw: dict[str, Any]) -> Submission:
    """Capture one submission in the caller's transaction (the endpoint commits)."""
    if raw.get(HONEYPOT) not in (None, ""):
        return Submission("honeypot")
    values, consent = validate_submission(form, raw)
    now = utcnow()
    principal = form_principal(form.slug)
    key = dedupe_key(form.slug, values, consent, now.date().isoformat())
    captured = leads.capture(
        session, principal, values, source="form", source_detail=form.slug,
        kind=form.engagement_kind, detail={"form": form.slug, "fields": sorted(values)},
        dedupe_key=key, team_id=form.team_id, form_slug=form.slug, occurred_at=now)
    lead = captured.lead
    assert lead is not None
    if captured.duplicate:
        return Submission("duplicate", lead.id)
    if consent and form.consent_wording:
        record = ConsentRecord(
            lead_id=lead.id, customer_id=lead.customer_id,
            purpose=form.consent_purpose or "marketing", channel="email", granted=True,
            wording=form.consent_wording, source=f"form:{form.slug}", recorded_at=now)
        session.add(record)
        session.flush()
        audit.record(session, principal, "create", "consent_records", record.id,
                     ["purpose", "wording", "granted"], {"lead_id": lead.id, "form": form.slug})
    return Submission("created" if captured.created else "updated", lead.id)
