"""Customer list (search, filters, keyset pages, errors) and the 360° page (content, masking,
scope, locale, escaping)."""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import select

from accord.core import db as dbmod
from accord.models import AuditEntry
from tests.web.conftest import inline_code
from tests.web.seed import make_customer, make_user

ALL = ["Grace Hopper", "Ada Lovelace", "Alan Turing", "Katherine Johnson", "Hedy Lamarr"]


def names(html: str) -> list[str]:
    """Customer names in the results table, in order."""
    return [unescape(n) for n in re.findall(r'<span class="person-name">([^<]*)</span>', html)]


def field(html: str, name: str) -> str:
    found = re.search(rf'data-field="{re.escape(name)}">(.*?)</dd>', html, re.S)
    assert found, f"no field {name}"
    return re.sub(r"<[^>]+>", " ", found.group(1))


def test_root_redirects_to_the_list_and_the_list_shows_customers(signed_in, seeded) -> None:
    browser = signed_in(seeded.emails["support"])
    assert browser.get("/", follow_redirects=False).headers["location"] == "/customers"
    page = browser.get("/customers")
    assert page.status_code == 200
    assert set(ALL) <= set(names(page.text))
    assert "grace.hopper@example.com" in page.text  # the primary e-mail
    assert "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert inline_code(page.text) == []
    assert '"includeIndicatorStyles":false' in page.text


SEARCHES = [
    ({"q": "GRACE.HOPPER@example.com"}, ["Grace Hopper"]),
    ({"q": "+1 202 555 0147"}, ["Grace Hopper"]),
    ({"q": "lovel"}, ["Ada Lovelace"]),
    ({"lifecycle_stage": "churned"}, ["Hedy Lamarr"]),
    ({"value_tier": "platinum"}, ["Ada Lovelace"]),
    ({"country": "gb", "sort": "name"}, ["Ada Lovelace", "Alan Turing"]),
    ({"cf.segment": "Enterprise"}, ["Grace Hopper"]),
    ({"q": "", "lifecycle_stage": "", "value_tier": "", "country": "US", "sort": "name"},
     ["Grace Hopper", "Katherine Johnson"]),
]


def test_search_and_filters(signed_in, seeded) -> None:
    """One seeded database, every case (cheaper than seeding per case)."""
    browser = signed_in(seeded.emails["support"])
    for query, expected in SEARCHES:
        page = browser.get("/customers", params=query)
        assert page.status_code == 200, (query, page.text)
        assert names(page.text) == expected, query


def test_search_by_id(signed_in, seeded) -> None:
    browser = signed_in(seeded.emails["support"])
    page = browser.get("/customers", params={"q": str(seeded.grace_id)})
    assert names(page.text) == ["Grace Hopper"]


def test_htmx_search_returns_only_the_results_fragment(signed_in, seeded) -> None:
    browser = signed_in(seeded.emails["support"])
    page = browser.get("/customers", params={"q": "ada"}, headers={"HX-Request": "true"})
    assert page.status_code == 200
    assert "<html" not in page.text and "<table" in page.text
    assert names(page.text) == ["Ada Lovelace"]
    assert "HX-Request" in page.headers["vary"]
    # A history restore asks for the whole page again.
    full = browser.get("/customers", params={"q": "ada"},
                       headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in full.text
    # The search box is wired for live search.
    page = browser.get("/customers")
    assert 'hx-trigger="keyup changed delay:300ms, search"' in page.text


BAD_INPUT = [
    ({"lifecycle_stage": "bogus"}, "is not one of"),
    ({"country__like": "G"}, "unknown filter operator"),
    ({"shoe_size": "42"}, "unknown filter field"),
    ({"date_of_birth": "1906-12-09"}, "unknown filter field"),  # hidden from support
    ({"cursor": "not-a-cursor"}, "cursor is invalid"),
    ({"limit": "0"}, "limit must be between"),
    ({"cf.segment": "Galactic"}, "must be one of"),
    ({"id": "99999999999999999999999"}, ""),
]


def test_bad_filter_input_is_a_readable_error(signed_in, seeded) -> None:
    browser = signed_in(seeded.emails["support"])
    for query, message in BAD_INPUT:
        page = browser.get("/customers", params=query)
        assert page.status_code == 422, (query, page.text)
        assert 'role="alert"' in page.text and message in unescape(page.text), query
        assert "<form" in page.text  # the full page with its filters, not a bare error
        partial = browser.get("/customers", params=query, headers={"HX-Request": "true"})
        assert partial.status_code == 422 and "<html" not in partial.text, query


def test_keyset_pages_with_a_next_link(signed_in, seeded) -> None:
    browser = signed_in(seeded.emails["support"])
    url = "/customers?limit=2&sort=name"
    seen: list[str] = []
    pages = 0
    while url:
        page = browser.get(url)
        assert page.status_code == 200
        seen += names(page.text)
        pages += 1
        nxt = re.search(r'rel="next" href="([^"]+)"', page.text)
        url = unescape(nxt.group(1)) if nxt else ""
        if url:
            assert "cursor=" in url and "limit=2" in url and "sort=name" in url
            assert "First page" in browser.get(url).text
    assert pages == 3
    assert len(seen) == len(set(seen)) == 6
    assert [n for n in seen if n in ALL] == sorted(ALL, key=lambda n: n.split()[-1])  # by last name


def test_list_and_360_reads_are_audited(signed_in, seeded, db) -> None:
    browser = signed_in(seeded.emails["support"])
    browser.get("/customers", params={"q": "ada"})
    browser.get(f"/customers/{seeded.grace_id}")
    with dbmod.session_scope(db, write=False) as s:
        reads = s.execute(select(AuditEntry).where(
            AuditEntry.action == "read", AuditEntry.actor == seeded.emails["support"])
        ).scalars().all()
        vias = {r.detail.get("via"): r for r in reads}
    assert set(vias) == {"web.list", "web.360"}
    assert vias["web.360"].record_id == str(seeded.grace_id)
    assert "date_of_birth" not in vias["web.360"].fields  # support did not see it


def test_360_page_shows_the_whole_customer(signed_in, seeded) -> None:
    browser = signed_in(seeded.emails["admin"])
    page = browser.get(f"/customers/{seeded.grace_id}")
    assert page.status_code == 200
    html = page.text
    assert "Grace Hopper" in html and "Rear Adm." in html
    assert "Loyalty" in field(html, "lifecycle_stage") and "Gold" in field(html, "value_tier")
    assert "€12,840.50" in field(html, "lifetime_value")
    assert "E-mail" in field(html, "preferred_channel")
    assert "English" in field(html, "preferred_language")
    assert "United States" in field(html, "country")
    assert "Alex Admin" in field(html, "owner")
    # Contact points, primary marked.
    assert re.search(r'grace\.hopper@example\.com</span>\s*<span class="point-tags">.*?Primary',
                     html, re.S)
    assert "grace@home.example.org" in html and "+1 202 555 0147" in html
    assert "1 Navy Yard<br>Arlington, VA 22202<br>United States" in html
    # Lifecycle history, custom fields, purchases, timeline across channels.
    for reason in ("created", "asked for a quote", "first order", "third order within a year"):
        assert reason in html
    assert "Enterprise" in field(html, "custom.segment") and "9" in field(html, "custom.nps")
    assert "€1,848.90" in html  # revenue: 1499.00 + 349.90
    timeline = html[html.index('class="timeline"'):]
    for subject in ("Invoice question", "Renewal call", "Delivery status", "Spring offer"):
        assert subject in timeline
    assert timeline.index("Invoice question") < timeline.index("Renewal call")  # newest first
    assert "ch-order" in timeline and "€1,499.00" in timeline and "Paid" in timeline
    assert "SMS" in timeline and "Outbound" in timeline and "Marketing" in timeline
    assert inline_code(html) == []


def test_360_formats_money_and_dates_in_the_users_locale(signed_in, seeded) -> None:
    browser = signed_in(seeded.emails["manager"])  # de_DE
    html = browser.get(f"/customers/{seeded.grace_id}").text
    assert '<html lang="de">' in html
    assert "12.840,50\xa0€" in field(html, "lifetime_value")
    assert "1.848,90\xa0€" in html
    assert "09.12.1906" in field(html, "date_of_birth")  # managers may see it


def test_support_sees_sensitive_fields_masked(signed_in, seeded) -> None:
    html = signed_in(seeded.emails["support"]).get(f"/customers/{seeded.grace_id}").text
    for name in ("date_of_birth", "national_id", "notes"):
        shown = field(html, name)
        assert "Restricted" in shown and "your role may not see" in shown
    assert "1906" not in html and "US-123-45-6789" not in html and "COBOL" not in html


def test_privacy_officer_sees_sensitive_fields(signed_in, seeded) -> None:
    html = signed_in(seeded.emails["privacy_officer"]).get(f"/customers/{seeded.grace_id}").text
    assert "9 Dec 1906" in field(html, "date_of_birth")
    assert "US-123-45-6789" in field(html, "national_id")
    assert "COBOL migration" in field(html, "notes")
    assert "Restricted" not in html


def test_missing_and_out_of_scope_customers_are_the_same_404(signed_in, seeded, db) -> None:
    with dbmod.session_scope(db) as s:
        seller = make_user(s, "sales", "seller@example.com", "Sia Seller", team="APAC")
        mine = make_customer(s, seller, first_name="Own", last_name="Lead").id
    browser = signed_in("seller@example.com")
    assert names(browser.get("/customers").text) == ["Own Lead"]
    assert browser.get(f"/customers/{mine}").status_code == 200
    other = browser.get(f"/customers/{seeded.grace_id}")
    missing = browser.get("/customers/999999")
    assert other.status_code == missing.status_code == 404
    assert "Grace" not in other.text
    assert "<h1" in other.text and "Not found" in other.text
    assert browser.get("/customers/not-a-number").status_code == 404
    assert browser.get("/customers/99999999999999999999999").status_code == 404


def test_hostile_names_are_escaped(signed_in, seeded) -> None:
    browser = signed_in(seeded.emails["admin"])
    for url in ("/customers", f"/customers/{seeded.xss_id}", "/customers?q=%3Cscript"):
        html = browser.get(url).text
        assert "<script>alert(1)</script>" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert inline_code(html) == []
