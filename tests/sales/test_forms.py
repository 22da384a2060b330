"""Public web forms: hostile input, honeypot, rate limit, idempotent duplicates, consent proof,
form-encoded bodies, and the forms' management API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from accord.core import db as dbmod
from accord.models.sales import ConsentRecord, Lead, LeadEngagement
from accord.sales import forms
from tests.access.helpers import assert_problem, snapshot

WORDING = "Yes, send me the Accord newsletter. I can unsubscribe at any time."
DEMO = {"slug": "demo", "name": "Book a demo",
        "fields": ["first_name", "last_name", "email", "company", "notes"],
        "required": ["email"], "consent_purpose": "newsletter", "consent_wording": WORDING}


@pytest.fixture(autouse=True)
def _fresh_rate_limit() -> Iterator[None]:
    forms.SUBMISSIONS_PER_CLIENT.clear()
    yield
    forms.SUBMISSIONS_PER_CLIENT.clear()


@pytest.fixture
def demo_form(db, client, make_actor):
    marketing = make_actor("marketing")
    r = client.post("/api/v1/lead-forms", json=DEMO, headers=marketing.headers)
    assert r.status_code == 201, r.text
    return r.json()


def count(db, model) -> int:
    with dbmod.session_scope(db, write=False) as s:
        return s.scalar(select(func.count()).select_from(model))


def submit(client, body, slug="demo", **kw):
    return client.post(f"/api/v1/forms/{slug}", json=body, **kw)


def test_submission_creates_a_lead_with_consent_proof(db, client, demo_form):
    r = submit(client, {"email": "Ada@Example.com", "first_name": "Ada", "company": "AE",
                        "consent": True})
    assert r.status_code == 200 and r.json() == {"status": "received"}
    assert r.headers["access-control-allow-origin"] == "*"
    with dbmod.session_scope(db, write=False) as s:
        lead = s.scalars(select(Lead)).one()
        assert (lead.source, lead.source_detail, lead.email_normalized) == \
            ("form", "demo", "ada@example.com")
        assert lead.first_touch_due_at is not None
        engagement = s.scalars(select(LeadEngagement)).one()
        assert engagement.kind == "form_submitted" and engagement.lead_id == lead.id
        consent = s.scalars(select(ConsentRecord)).one()
        assert consent.lead_id == lead.id and consent.granted is True
        assert consent.wording == WORDING and consent.purpose == "newsletter"
        assert consent.source == "form:demo" and consent.recorded_at is not None


def test_no_consent_box_no_consent_record(db, client, demo_form):
    assert submit(client, {"email": "b@example.com"}).status_code == 200
    assert count(db, ConsentRecord) == 0 and count(db, Lead) == 1


def test_consent_required_forms_refuse_without_it(db, client, make_actor):
    admin = make_actor("admin")
    body = {**DEMO, "slug": "news", "consent_required": True}
    assert client.post("/api/v1/lead-forms", json=body, headers=admin.headers).status_code == 201
    before = snapshot(db)
    assert_problem(submit(client, {"email": "c@example.com"}, "news"), 422, "consent")
    assert_problem(submit(client, {"email": "c@example.com", "consent": "no"}, "news"), 422,
                   "consent")
    assert snapshot(db) == before and count(db, Lead) == 0
    assert submit(client, {"email": "c@example.com", "consent": "on"}, "news").status_code == 200
    assert count(db, ConsentRecord) == 1


def test_bad_input_is_refused_and_stores_nothing(db, client, demo_form):
    cases = [
        ({"first_name": "Ada"}, "email"),  # required field missing
        ({"email": "  "}, "email"),  # blank is missing
        ({"email": "a@example.com", "phone": "+44 20 7946 0958"}, "phone"),  # not on this form
        ({"email": "a@example.com", "owner_id": 1}, "owner_id"),
        ({"email": "a@example.com", "first_name": "x" * 101}, "first_name"),  # oversized
        ({"email": "a@example.com", "notes": "y" * 5001}, "notes"),
        ({"email": "not an address"}, "email"),
        ({"email": ["a@example.com"]}, "email"),
        ({"email": "a@example.com", "company": "A\x00B"}, "company"),
    ]
    before = snapshot(db)
    for body, field in cases:
        r = submit(client, body)
        assert_problem(r, 422, field)
        assert r.headers["access-control-allow-origin"] == "*"  # fetch() may read why
    assert count(db, Lead) == 0 and snapshot(db) == before
    r = client.post("/api/v1/forms/demo", content=b"x" * (forms.MAX_FORM_BYTES + 1),
                    headers={"Content-Type": "application/json"})
    assert_problem(r, 413)
    r = client.post("/api/v1/forms/demo", content=b"{not json",
                    headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    r = client.post("/api/v1/forms/demo", content=b"email=a",
                    headers={"Content-Type": "text/plain"})
    assert_problem(r, 415)


def test_unknown_or_inactive_form_is_404(db, client, demo_form, make_actor):
    assert_problem(submit(client, {"email": "a@example.com"}, "nope"), 404)
    assert_problem(submit(client, {"email": "a@example.com"}, "x" * 300), 404)
    admin = make_actor("admin")
    r = client.patch(f"/api/v1/lead-forms/{demo_form['id']}", json={"active": False},
                     headers={**admin.headers, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    body = assert_problem(submit(client, {"email": "a@example.com"}), 404)
    # the same answer as for a form that never existed: no oracle
    assert body["detail"] == submit(client, {"email": "a@example.com"}, "nope").json()["detail"]
    assert count(db, Lead) == 0


def test_honeypot_answers_success_and_stores_nothing(db, client, demo_form):
    before = snapshot(db)
    r = submit(client, {"email": "bot@example.com", forms.HONEYPOT: "http://spam.example"})
    assert r.status_code == 200 and r.json() == {"status": "received"}
    assert count(db, Lead) == 0 and count(db, LeadEngagement) == 0
    assert snapshot(db) == before


def test_duplicate_submission_is_idempotent(db, client, demo_form):
    body = {"email": "dup@example.com", "first_name": "Dup", "consent": True}
    assert submit(client, body).status_code == 200
    same = {"email": "DUP@example.com ", "first_name": " dup", "consent": "on"}
    assert submit(client, same).status_code == 200
    assert count(db, Lead) == 1 and count(db, LeadEngagement) == 1
    assert count(db, ConsentRecord) == 1
    # a different submission by the same person the same day: same lead, a new engagement
    assert submit(client, {"email": "dup@example.com", "notes": "Call me"}).status_code == 200
    assert count(db, Lead) == 1 and count(db, LeadEngagement) == 2
    with dbmod.session_scope(db, write=False) as s:
        assert s.scalars(select(Lead)).one().notes == "Call me"


def test_form_encoded_bodies(db, client, demo_form):
    r = client.post("/api/v1/forms/demo",
                    data={"email": "form@example.com", "last_name": "Encoded", "consent": "on"})
    assert r.status_code == 200 and r.json() == {"status": "received"}
    r = client.post("/api/v1/forms/demo", data={"email": "html@example.com"},
                    headers={"Accept": "text/html"})
    assert r.status_code == 200 and "Thank you" in r.text
    assert r.headers["content-type"].startswith("text/html")
    assert count(db, Lead) == 2 and count(db, ConsentRecord) == 1
    r = client.post("/api/v1/forms/demo", content=b"email=a%40b.com&email=c%40d.com",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(r, 422, "email")
    r = client.post("/api/v1/forms/demo", data={"email": "x@example.com", "role": "admin"})
    assert_problem(r, 422, "role")


def test_rate_limit_per_client(db, client, demo_form, monkeypatch):
    from accord.core.ratelimit import SlidingWindow

    monkeypatch.setattr(forms, "SUBMISSIONS_PER_CLIENT", SlidingWindow(3, 600))
    for i in range(3):
        assert submit(client, {"email": f"r{i}@example.com"}).status_code == 200
    r = submit(client, {"email": "r9@example.com"})
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    assert count(db, Lead) == 3


def test_script_tags_are_stored_verbatim_and_escaped_on_the_page(db, client, demo_form,
                                                                 signed_in_as):
    evil = "<script>alert('x')</script>"
    assert submit(client, {"email": "xss@example.com", "first_name": evil,
                           "company": evil}).status_code == 200
    with dbmod.session_scope(db, write=False) as s:
        lead = s.scalars(select(Lead)).one()
        assert lead.first_name == evil and lead.company == evil
        lead_id = lead.id
    browser = signed_in_as("admin")
    for url in (f"/sales/leads/{lead_id}", "/sales/leads"):
        page = browser.get(url)
        assert page.status_code == 200, page.text
        assert evil not in page.text
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text


def test_form_management_needs_sales_config(db, client, make_actor):
    sales = make_actor("sales")
    before = snapshot(db)
    assert_problem(client.post("/api/v1/lead-forms", json=DEMO, headers=sales.headers), 403)
    assert snapshot(db) == before
    assert client.get("/api/v1/lead-forms", headers=sales.headers).status_code == 200
    support = make_actor("support")
    assert_problem(client.get("/api/v1/lead-forms", headers=support.headers), 403)
    admin = make_actor("admin")
    for body, field in (({**DEMO, "fields": ["email", "password"]}, "fields.1"),
                        ({**DEMO, "required": ["phone"]}, "required"),
                        ({**DEMO, "slug": "Bad Slug"}, "slug"),
                        ({**DEMO, "consent_purpose": None, "consent_required": True},
                         "consent_purpose"),
                        ({**DEMO, "id": 4}, "id")):
        assert_problem(client.post("/api/v1/lead-forms", json=body, headers=admin.headers), 422,
                       field)
    assert client.post("/api/v1/lead-forms", json=DEMO, headers=admin.headers).status_code == 201
    assert_problem(client.post("/api/v1/lead-forms", json=DEMO, headers=admin.headers), 409,
                   "slug")
