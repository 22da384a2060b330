"""The Scores panel of the 360° page and `GET /api/v1/customers/{id}/scores`: shown in plain
language, with CLV and churn risk masked for roles that may not see them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from accord.access.policy import ROLES, SENSITIVE_FIELDS
from accord.core import db as dbmod
from accord.models import AuditEntry, CustomerScore

REASON = "No order for 212 days"


def _score(db: str, customer_id: int) -> None:
    with dbmod.session_scope(db) as s:
        s.add(CustomerScore(
            customer_id=customer_id, recency_days=212, frequency=7, monetary=Decimal("1848.90"),
            currency="EUR", rfm_r=2, rfm_f=5, rfm_m=5, rfm_segment="can't lose them",
            clv_12m=Decimal("9876.54"), expected_purchases_12m=2.5, p_alive=0.41,
            churn_risk=0.83, value_tier="platinum", at_risk_valuable=True,
            churn_reasons=[{"feature": "days_since_last_order", "text": REASON,
                            "contribution": 0.9},
                           {"feature": "support_90d", "text": "3 support contact(s) in the last "
                            "90 days", "contribution": 0.2}],
            missing={}, run_id="run1", computed_at=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        ))


def _panel(html: str) -> str:
    found = re.search(r'<section class="card" aria-labelledby="h-scores".*?</section>', html,
                      re.S)
    assert found, "no scores panel"
    return found.group(0)


def test_panel_shows_scores_and_reasons(signed_in, seeded, db) -> None:
    _score(db, seeded.grace_id)
    html = signed_in(seeded.emails["admin"]).get(f"/customers/{seeded.grace_id}").text
    panel = _panel(html)
    assert "Can&#39;t lose them" in panel or "Can't lose them" in panel
    assert "At risk and valuable" in panel
    assert "9,876.54" in panel  # CLV in the viewer's locale
    assert "41 %" in panel and "83 %" in panel and "High" in panel
    assert REASON in panel and "3 support contact(s)" in panel
    assert "Restricted" not in panel
    assert 'datetime="2026-01-15' in panel


def test_support_sees_segment_and_tier_but_not_clv_or_churn(signed_in, seeded, db) -> None:
    _score(db, seeded.grace_id)
    html = signed_in(seeded.emails["support"]).get(f"/customers/{seeded.grace_id}").text
    panel = _panel(html)
    assert "lose them" in panel and "tier-platinum" in panel
    assert "At risk and valuable" in panel  # the flag steers the conversation: every role
    for name in ("clv_12m", "p_alive", "churn_risk"):
        shown = re.search(rf'data-field="{name}">(.*?)</d[di]', panel, re.S)
        assert shown and "Restricted" in shown.group(1), name
    assert "9,876" not in html and "9876" not in html and REASON not in html
    assert "83 %" not in html
    with dbmod.session_scope(db) as s:  # the read is audited with the fields actually shown
        entry = s.execute(select(AuditEntry).where(AuditEntry.resource == "customer_scores")
                          ).scalars().all()[-1]
        assert "churn_risk" not in entry.fields and "rfm_segment" in entry.fields


def test_unscored_customer_shows_a_hint(signed_in, seeded) -> None:
    html = signed_in(seeded.emails["admin"]).get(f"/customers/{seeded.grace_id}").text
    assert "Not scored yet" in _panel(html)


def test_api_scores_follow_the_field_rules(client, make_actor, seeded, db) -> None:
    _score(db, seeded.grace_id)
    rules = SENSITIVE_FIELDS["customer_scores"]
    for role in ROLES:
        actor = make_actor(role, team="EMEA")
        r = client.get(f"/api/v1/customers/{seeded.grace_id}/scores", headers=actor.headers)
        assert r.status_code == 200, (role, r.text)
        body = r.json()
        hidden = sorted(f for f, roles in rules.items() if role not in roles)
        assert body["masked_fields"] == hidden, role
        for name in rules:
            assert (name in body) == (name not in hidden), (role, name)
        assert body["rfm_segment"] == "can't lose them" and body["value_tier"] == "platinum"
        if "churn_reasons" not in hidden:
            assert body["churn_reasons"][0]["text"] == REASON
            assert body["churn_level"] == "high"
        else:
            assert REASON not in r.text and "churn_level" not in body
    outsider = make_actor("sales", team="APAC")  # record scope applies as to the customer
    assert client.get(f"/api/v1/customers/{seeded.grace_id}/scores",
                      headers=outsider.headers).status_code == 404
    admin = make_actor("admin")
    assert client.get(f"/api/v1/customers/{seeded.xss_id}/scores",
                      headers=admin.headers).status_code == 404  # not scored yet
    assert client.get("/api/v1/customers/999999/scores", headers=admin.headers).status_code == 404
