"""Creating and editing customers and logging interactions from the UI: the write path, field
errors, optimistic concurrency, record and field rules, CSRF and escaping."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import func, select

from accord.core import db as dbmod
from accord.models import AuditEntry, Customer, Interaction, LifecycleChange
from tests.web.conftest import inline_code
from tests.web.seed import DOB, csrf_of, make_customer, make_user

NEW = {"title": "Dr", "first_name": "Mary", "last_name": "Jackson", "email": "mary@example.com",
       "phone": "+44 20 7946 0958", "country": "GB", "lifecycle_stage": "discovery",
       "value_tier": "silver", "preferred_channel": "phone", "preferred_language": "en"}


class FormReader(HTMLParser):
    """What a browser would submit for the form posting to `action` (the defaults on the page)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.values = action, False, {}
        self.select: str | None = None
        self.textarea: str | None = None
        self.first_option: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        if not self.inside:
            return
        if tag == "input" and "name" in a and a.get("type") != "checkbox":
            self.values[a["name"]] = a.get("value", "")
        elif tag == "select":
            self.select = a["name"]
        elif tag == "option" and self.select:
            self.first_option.setdefault(self.select, a.get("value", ""))
            if "selected" in a:
                self.values[self.select] = a.get("value", "")
        elif tag == "textarea":
            self.textarea = a["name"]
            self.values[self.textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self.select:
            self.values.setdefault(self.select, self.first_option.get(self.select, ""))
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.values[self.textarea] += data


def form_of(html: str, action: str) -> dict[str, str]:
    reader = FormReader(action)
    reader.feed(html)
    assert reader.values, f"no form posting to {action}"
    return reader.values


def error_for(html: str, name: str) -> str:
    found = re.search(rf'<p class="field-error" id="err-{re.escape(name)}">(.*?)</p>', html, re.S)
    return unescape(found.group(1)) if found else ""


def input_tag(html: str, name: str) -> str:
    found = re.search(rf'<(?:input|select|textarea)[^>]*name="{re.escape(name)}"[^>]*>', html)
    assert found, f"no field {name}"
    return found.group(0)


def customer_count(db: str) -> int:
    with dbmod.session_scope(db, write=False) as s:
        return s.execute(select(func.count()).select_from(Customer)).scalar_one()


def load(db: str, customer_id: int) -> dict[str, Any]:
    with dbmod.session_scope(db, write=False) as s:
        c = s.get(Customer, customer_id)
        assert c is not None
        return {"version": c.version, "first_name": c.first_name, "last_name": c.last_name,
                "lifecycle_stage": c.lifecycle_stage, "date_of_birth": c.date_of_birth,
                "notes": c.notes, "title": c.title, "country": c.country,
                "emails": [(e.email, e.is_primary, e.verified) for e in c.emails],
                "phones": [(p.phone, p.is_primary) for p in c.phones]}


def audit_rows(db: str, action: str, resource: str) -> list[AuditEntry]:
    with dbmod.session_scope(db, write=False) as s:
        return list(s.execute(select(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.resource == resource)
            .order_by(AuditEntry.id)).scalars())


# --- create --------------------------------------------------------------------------------------

def test_admin_creates_a_customer_through_the_form(signed_in, seeded, db) -> None:
    browser = signed_in(seeded.emails["admin"])
    listing = browser.get("/customers").text
    assert 'href="/customers/new"' in listing and "New customer" in listing
    page = browser.get("/customers/new")
    assert page.status_code == 200 and inline_code(page.text) == []
    for name in ("date_of_birth", "national_id", "notes", "cf.segment", "cf.nps"):
        input_tag(page.text, name)
    assert 'type="number"' in input_tag(page.text, "cf.nps")
    assert '<option value="DE" >Germany</option>' in page.text  # ISO codes with names
    before = customer_count(db)
    response = browser.post("/customers", data={
        **form_of(page.text, "/customers"), **NEW, "date_of_birth": "1921-04-09",
        "notes": "Met at the aerospace fair.", "cf.segment": "SMB", "cf.nps": "7"},
        follow_redirects=False)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    customer_id = int(re.fullmatch(r"/customers/(\d+)\?done=created", location).group(1))
    assert customer_count(db) == before + 1
    saved = load(db, customer_id)
    assert saved["first_name"] == "Mary" and saved["title"] == "Dr"
    assert saved["lifecycle_stage"] == "discovery" and saved["country"] == "GB"
    assert saved["emails"] == [("mary@example.com", True, False)]
    assert saved["phones"] == [("+44 20 7946 0958", True)]
    assert str(saved["date_of_birth"]) == "1921-04-09"
    created = [r for r in audit_rows(db, "create", "customers") if r.record_id == str(customer_id)]
    assert len(created) == 1 and created[0].actor == seeded.emails["admin"]
    assert "custom.segment" in created[0].fields
    landing = browser.get(location)
    assert "Customer created." in landing.text and "Mary Jackson" in landing.text
    assert "SMB" in landing.text


def test_country_names_follow_the_users_language(signed_in, seeded) -> None:
    page = signed_in(seeded.emails["manager"]).get("/customers/new")  # de_DE
    assert '<option value="DE" >Deutschland</option>' in page.text
    assert '<option value="de" >Deutsch</option>' in page.text


@pytest.mark.parametrize("changes,name,message", [
    ({"email": "not-an-email"}, "email", "e-mail address"),
    ({"first_name": "", "last_name": ""}, "first_name", "first or last name"),
    ({"phone": "12"}, "phone", "at least 3"),
    ({"phone": "call me maybe"}, "phone", "phone number"),
    ({"country": "XX"}, "country", "country code"),
    ({"lifecycle_stage": "hyper"}, "lifecycle_stage", "must be"),
    ({"date_of_birth": "2999-01-01"}, "date_of_birth", "between 1900-01-01 and today"),
    ({"cf.nps": "lots"}, "cf.nps", "must be a number"),
    ({"cf.segment": "Galactic"}, "cf.segment", "must be one of"),
])
def test_invalid_input_is_shown_next_to_the_field_and_nothing_is_written(
        signed_in, seeded, db, changes, name, message) -> None:
    browser = signed_in(seeded.emails["admin"])
    token = csrf_of(browser.get("/customers/new").text)
    before = customer_count(db)
    created_before = len(audit_rows(db, "create", "customers"))
    page = browser.post("/customers", data={**NEW, **changes, "csrf_token": token})
    assert page.status_code == 422, page.text
    assert message.lower() in error_for(page.text, name).lower(), page.text
    tag = input_tag(page.text, name)
    assert 'aria-invalid="true"' in tag and f"err-{name}" in tag
    assert 'role="alert"' in page.text
    kept = {k: v for k, v in NEW.items() if k not in changes and k in ("title", "email")}
    for key, value in kept.items():
        assert f'value="{value}"' in input_tag(page.text, key)  # the input is kept
    assert customer_count(db) == before
    assert len(audit_rows(db, "create", "customers")) == created_before


def test_hostile_names_are_escaped_on_the_re_rendered_form(signed_in, seeded, db) -> None:
    browser = signed_in(seeded.emails["admin"])
    token = csrf_of(browser.get("/customers/new").text)
    hostile = {"first_name": '"><script>alert(1)</script>',
               "last_name": "<img src=x onerror=alert(2)>", "title": "' onfocus='alert(3)",
               "notes": "</textarea><script>alert(4)</script>"}
    page = browser.post("/customers", data={**NEW, **hostile, "email": "bad", "csrf_token": token})
    assert page.status_code == 422
    for raw in ("<script>alert", "<img src=x", "</textarea><script>"):
        assert raw not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert inline_code(page.text) == []
    # The edit form of a stored hostile name escapes it too.
    edit = browser.get(f"/customers/{seeded.xss_id}/edit").text
    assert "<script>alert(1)</script>" not in edit and "<img src=x" not in edit
    assert inline_code(edit) == []


# --- edit ----------------------------------------------------------------------------------------

def test_edit_happy_path_bumps_the_version_and_keeps_other_contact_points(signed_in, seeded,
                                                                          db) -> None:
    browser = signed_in(seeded.emails["admin"])
    detail = browser.get(f"/customers/{seeded.grace_id}").text
    assert f'href="/customers/{seeded.grace_id}/edit"' in detail
    before = load(db, seeded.grace_id)
    page = browser.get(f"/customers/{seeded.grace_id}/edit")
    assert page.status_code == 200 and inline_code(page.text) == []
    form = form_of(page.text, f"/customers/{seeded.grace_id}/edit")
    assert form["first_name"] == "Grace" and form["email"] == "grace.hopper@example.com"
    assert form["version"] == str(before["version"]) and form["date_of_birth"] == DOB.isoformat()
    assert form["cf.segment"] == "Enterprise" and form["cf.nps"] == "9"
    assert "other address is kept" in page.text
    response = browser.post(f"/customers/{seeded.grace_id}/edit", data={
        **form, "email": "g.hopper@example.com", "lifecycle_stage": "churned",
        "stage_reason": "moved to a competitor", "cf.nps": "3"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/customers/{seeded.grace_id}?done=updated"
    after = load(db, seeded.grace_id)
    assert after["version"] == before["version"] + 1  # one save, one version
    assert after["lifecycle_stage"] == "churned"
    assert after["emails"] == [("g.hopper@example.com", True, False),
                               ("grace@home.example.org", False, False)]
    assert after["phones"] == before["phones"]
    assert after["date_of_birth"] == DOB and after["notes"] == before["notes"]
    with dbmod.session_scope(db, write=False) as s:
        last = s.execute(select(LifecycleChange).where(
            LifecycleChange.customer_id == seeded.grace_id)
            .order_by(LifecycleChange.id.desc())).scalars().first()
        assert (last.from_stage, last.to_stage, last.reason) == (
            "loyalty", "churned", "moved to a competitor")
    updates = [r for r in audit_rows(db, "update", "customers")
               if r.record_id == str(seeded.grace_id)]
    assert {"lifecycle_stage", "emails", "custom.nps"} <= set(updates[-1].fields)
    landing = browser.get(response.headers["location"]).text
    assert "Changes saved." in landing and "moved to a competitor" in landing
    assert "Churned" in landing


def test_saving_an_unchanged_form_changes_nothing(signed_in, seeded, db) -> None:
    browser = signed_in(seeded.emails["admin"])
    before = load(db, seeded.grace_id)
    form = form_of(browser.get(f"/customers/{seeded.grace_id}/edit").text,
                   f"/customers/{seeded.grace_id}/edit")
    response = browser.post(f"/customers/{seeded.grace_id}/edit", data=form,
                            follow_redirects=False)
    assert response.status_code == 303
    assert load(db, seeded.grace_id) == before


def test_a_stale_version_is_refused_and_nothing_changes(signed_in, seeded, db) -> None:
    admin = signed_in(seeded.emails["admin"])
    url = f"/customers/{seeded.grace_id}/edit"
    mine = form_of(admin.get(url).text, url)
    # Someone else saves first.
    other = signed_in(seeded.emails["manager"])
    theirs = form_of(other.get(url).text, url)
    assert other.post(url, data={**theirs, "title": "Adm."},
                      follow_redirects=False).status_code == 303
    before = load(db, seeded.grace_id)
    page = admin.post(url, data={**mine, "first_name": "Amazing Grace"})
    assert page.status_code == 412
    assert "Someone else changed this customer" in page.text
    assert f'href="{url}"' in page.text  # the way to reload
    assert 'value="Amazing Grace"' in page.text  # what was typed is not thrown away
    assert load(db, seeded.grace_id) == before
    # A form without a version is refused too.
    assert admin.post(url, data={k: v for k, v in mine.items() if k != "version"}).status_code \
        == 428
    assert load(db, seeded.grace_id) == before


def test_sales_may_edit_only_their_own_customers(signed_in, seeded, db) -> None:
    with dbmod.session_scope(db) as s:
        seller = make_user(s, "sales", "seller@example.com", "Sia Seller", team="APAC")
        mate = make_user(s, "sales", "mate@example.com", "Max Mate", team="APAC")
        own = make_customer(s, seller, first_name="Own", last_name="Lead").id
        teammates = make_customer(s, mate, first_name="Team", last_name="Lead").id
    browser = signed_in("seller@example.com")
    assert "New customer" in browser.get("/customers").text  # sales may create
    own_page = browser.get(f"/customers/{own}").text
    assert f'href="/customers/{own}/edit"' in own_page
    team_page = browser.get(f"/customers/{teammates}")
    assert team_page.status_code == 200 and "/edit" not in team_page.text  # no Edit button
    assert "Log interaction" in team_page.text  # but sales may log for the team
    token = csrf_of(own_page)
    form = form_of(browser.get(f"/customers/{own}/edit").text, f"/customers/{own}/edit")
    assert "date_of_birth" not in form and "national_id" not in form and "notes" in form
    cases = [(teammates, 403), (seeded.grace_id, 404)]
    for customer_id, status in cases:
        before = load(db, customer_id)
        assert browser.get(f"/customers/{customer_id}/edit").status_code == status
        response = browser.post(f"/customers/{customer_id}/edit", data={
            **form, "version": str(before["version"]), "first_name": "Hijacked",
            "csrf_token": token})
        assert response.status_code == status
        assert "<h1" in response.text and "Hijacked" not in response.text
        assert load(db, customer_id) == before
    denials = audit_rows(db, "denied", "customers")
    assert any(r.detail.get("via") == "web" and r.actor == "seller@example.com" for r in denials)
    ok = browser.post(f"/customers/{own}/edit", data={**form, "last_name": "Prospect"},
                      follow_redirects=False)
    assert ok.status_code == 303 and load(db, own)["last_name"] == "Prospect"


def test_roles_that_may_not_create_see_no_button_and_are_refused(signed_in, seeded, db) -> None:
    with dbmod.session_scope(db) as s:
        make_user(s, "analyst", "analyst@example.com", "Ana Lyst")
    browser = signed_in("analyst@example.com")
    listing = browser.get("/customers").text
    assert "New customer" not in listing and "/customers/new" not in listing
    detail = browser.get(f"/customers/{seeded.grace_id}").text
    assert "/edit" not in detail and "Log interaction" not in detail
    assert browser.get("/customers/new").status_code == 403
    before = customer_count(db)
    response = browser.post("/customers", data={**NEW, "csrf_token": csrf_of(listing)})
    assert response.status_code == 403 and customer_count(db) == before
    grace = load(db, seeded.grace_id)
    assert browser.post(f"/customers/{seeded.grace_id}/edit", data={
        **NEW, "version": str(grace["version"]), "csrf_token": csrf_of(listing)}).status_code == 403
    assert browser.post(f"/customers/{seeded.grace_id}/interactions", data={
        "channel": "phone", "direction": "inbound", "subject": "Sneaky",
        "csrf_token": csrf_of(listing)}).status_code == 403
    assert load(db, seeded.grace_id) == grace


def test_support_never_sees_nor_writes_the_birth_date(signed_in, seeded, db) -> None:
    browser = signed_in(seeded.emails["support"])
    new = browser.get("/customers/new").text
    assert 'name="date_of_birth"' not in new and 'name="national_id"' not in new
    assert 'name="notes"' not in new and "Protected information" not in new
    response = browser.post("/customers", data={
        **NEW, "date_of_birth": "1950-01-01", "national_id": "X-1", "notes": "sneaky",
        "csrf_token": csrf_of(new)}, follow_redirects=False)
    assert response.status_code == 303
    created = int(response.headers["location"].split("/")[2].split("?")[0])
    saved = load(db, created)
    assert saved["date_of_birth"] is None and saved["notes"] is None
    url = f"/customers/{seeded.grace_id}/edit"
    page = browser.get(url).text
    assert "1906" not in page and "US-123-45-6789" not in page and "COBOL" not in page
    form = form_of(page, url)
    assert "date_of_birth" not in form
    response = browser.post(url, data={**form, "date_of_birth": "1950-01-01", "notes": "",
                                       "national_id": "", "last_name": "Hopper-Murray"},
                            follow_redirects=False)
    assert response.status_code == 303
    after = load(db, seeded.grace_id)
    assert after["last_name"] == "Hopper-Murray"
    assert after["date_of_birth"] == DOB and after["notes"] and "COBOL" in after["notes"]


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_posts_without_the_csrf_token_are_refused(signed_in, seeded, db, token) -> None:
    browser = signed_in(seeded.emails["admin"])
    url = f"/customers/{seeded.grace_id}/edit"
    form = form_of(browser.get(url).text, url)
    form.pop("csrf_token")
    extra = {} if token is None else {"csrf_token": token}
    before, count = load(db, seeded.grace_id), customer_count(db)
    with dbmod.session_scope(db, write=False) as s:
        interactions_before = s.execute(select(func.count()).select_from(Interaction)).scalar_one()
    responses = [
        browser.post("/customers", data={**NEW, **extra}),
        browser.post(url, data={**form, **extra, "first_name": "Forged"}),
        browser.post(f"/customers/{seeded.grace_id}/interactions",
                     data={"channel": "phone", "direction": "inbound", "subject": "Forged",
                           **extra}),
    ]
    for response in responses:
        assert response.status_code == 403
        assert "did not come from Accord" in response.text
    assert load(db, seeded.grace_id) == before and customer_count(db) == count
    with dbmod.session_scope(db, write=False) as s:
        assert s.execute(select(func.count()).select_from(Interaction)).scalar_one() \
            == interactions_before


# --- interactions --------------------------------------------------------------------------------

def test_logging_an_interaction_shows_it_on_the_timeline(signed_in, seeded, db) -> None:
    browser = signed_in(seeded.emails["support"])
    url = f"/customers/{seeded.grace_id}"
    page = browser.get(url).text
    action = f"{url}/interactions"
    form = form_of(page, action)
    assert form["department"] == "support" and f'hx-post="{action}"' in page
    response = browser.post(action, data={**form, "channel": "chat", "direction": "inbound",
                                          "subject": "Asked about <b>invoices</b>",
                                          "body": "Wants a copy of March."},
                            follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"{url}?done=logged#activity"
    landing = browser.get(f"{url}?done=logged").text
    timeline = landing[landing.index('class="timeline"'):]
    assert timeline.index("Asked about &lt;b&gt;invoices&lt;/b&gt;") < timeline.index(
        "Invoice question")  # newest first
    assert "Interaction logged." in landing
    created = audit_rows(db, "create", "interactions")
    assert created[-1].actor == seeded.emails["support"]
    assert created[-1].detail["customer_id"] == seeded.grace_id


def test_htmx_logging_returns_the_refreshed_activity_section(signed_in, seeded, db) -> None:
    browser = signed_in(seeded.emails["admin"])
    url = f"/customers/{seeded.grace_id}"
    page = browser.get(url).text
    headers = {"HX-Request": "true", "X-CSRF-Token": csrf_of(page)}  # as accord.js sends it
    action = f"{url}/interactions"
    ok = browser.post(action, headers=headers, data={
        "channel": "email", "direction": "outbound", "department": "sales",
        "subject": "Sent the proposal"})
    assert ok.status_code == 200
    assert "<html" not in ok.text
    assert ok.text.lstrip().startswith('<section class="card activity" id="activity"')
    assert "Sent the proposal" in ok.text and "Interaction logged." in ok.text
    assert "Renewal call" in ok.text  # the rest of the timeline is still there
    assert form_of(ok.text, action)["subject"] == ""  # a fresh form for the next one
    reads = audit_rows(db, "read", "interactions")
    assert reads and reads[-1].detail["via"] == "web.timeline"
    bad = browser.post(action, headers=headers, data={
        "channel": "pigeon", "direction": "outbound", "subject": "Coo"})
    assert bad.status_code == 422 and "<html" not in bad.text
    assert "must be" in error_for(bad.text, "channel").lower()
    assert 'value="Coo"' in bad.text and "<details class=\"log-interaction\" open" in bad.text
    with dbmod.session_scope(db, write=False) as s:
        subjects = set(s.execute(select(Interaction.subject)).scalars())
    assert "Sent the proposal" in subjects and "Coo" not in subjects


def test_an_invalid_plain_post_re_renders_the_360_page_with_the_error(signed_in, seeded) -> None:
    browser = signed_in(seeded.emails["admin"])
    url = f"/customers/{seeded.grace_id}"
    token = csrf_of(browser.get(url).text)
    page = browser.post(f"{url}/interactions", data={
        "channel": "phone", "direction": "sideways", "subject": "x" * 10, "csrf_token": token})
    assert page.status_code == 422
    assert "<html" in page.text and "Grace Hopper" in page.text
    assert "must be" in error_for(page.text, "direction").lower()
    assert 'aria-invalid="true" aria-describedby="err-direction"' in page.text
