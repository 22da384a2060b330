"""Lead routing: rules by position and condition (territory, industry, source, form, company
size), round robin order, least loaded, a named owner, the first-touch deadline, and the rules
API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from accord.access.policy import SYSTEM
from accord.core import db as dbmod
from accord.core.clock import as_utc, utcnow
from accord.models.sales import AssignmentRule, Lead
from accord.sales import assignment, leads
from accord.sales.leads_schemas import AssignmentRuleCreate
from tests.access.helpers import assert_problem, snapshot


def rule(db, **fields) -> int:
    with dbmod.session_scope(db) as s:
        return assignment.create_rule(s, SYSTEM, AssignmentRuleCreate(**fields)).id


def capture(db, n: int, form_slug: str | None = None, **values) -> Lead:
    values.setdefault("email", f"p{n}@example.com")
    with dbmod.session_scope(db) as s:
        got = leads.capture(s, SYSTEM, values, source="form", source_detail=form_slug,
                            kind="form_submitted", detail={}, dedupe_key=f"t:{n}",
                            form_slug=form_slug)
        s.expunge(got.lead)
        return got.lead


@pytest.fixture
def team(make_actor):
    """Three sales reps of team alpha (ids ascending), a manager and an inactive rep."""
    reps = [make_actor("sales", team="alpha") for _ in range(3)]
    make_actor("manager", team="alpha")  # not a candidate: role manager
    return reps


def test_round_robin_walks_the_team_in_order(db, team):
    rid = rule(db, name="All", method="round_robin", team_id=team[0].team_id)
    owners = [capture(db, i).owner_id for i in range(7)]
    ids = [r.id for r in team]
    assert owners == [ids[0], ids[1], ids[2], ids[0], ids[1], ids[2], ids[0]]
    with dbmod.session_scope(db, write=False) as s:
        assert s.get(AssignmentRule, rid).cursor_user_id == ids[0]


def test_round_robin_skips_inactive_users(db, team):
    from accord.models import User

    rule(db, name="All", method="round_robin", team_id=team[0].team_id)
    with dbmod.session_scope(db) as s:
        s.get(User, team[1].id).is_active = False
    assert [capture(db, i).owner_id for i in range(3)] == [team[0].id, team[2].id, team[0].id]


def test_least_loaded_picks_fewest_open_leads(db, team):
    rule(db, name="Load", method="least_loaded", team_id=team[0].team_id)
    with dbmod.session_scope(db) as s:
        for owner, n, st in ((team[0].id, 2, "new"), (team[1].id, 1, "working"),
                             (team[2].id, 3, "disqualified")):  # closed leads do not count
            for i in range(n):
                s.add(Lead(last_name=f"{owner}-{i}", owner_id=owner, status=st,
                           disqualify_reason="spam" if st == "disqualified" else None))
    first = capture(db, 1).owner_id
    assert first == team[2].id
    second = capture(db, 2).owner_id  # team[2] has 1 open now, team[1] 1: lowest id wins
    assert second == team[1].id


def test_territory_and_conditions_in_position_order(db, team, make_actor):
    de_owner = make_actor("sales", team="dach")
    big_owner = make_actor("sales", team="enterprise")
    rule(db, name="Enterprise", position=1, method="owner", owner_id=big_owner.id,
         conditions={"min_employees": 1000}, first_touch_hours=4)
    rule(db, name="DACH", position=2, method="owner", owner_id=de_owner.id,
         conditions={"countries": ["DE", "AT", "CH"]}, first_touch_hours=8)
    rule(db, name="Fintech webinar", position=3, method="round_robin",
         team_id=team[0].team_id,
         conditions={"industries": ["Fintech"], "forms": ["webinar"], "sources": ["form"]})
    rule(db, name="Inactive", position=0, method="owner", owner_id=team[2].id, active=False)

    before = utcnow()
    big = capture(db, 1, country="DE", employees=5000)
    assert big.owner_id == big_owner.id and big.team_id == big_owner.team_id
    due = as_utc(big.first_touch_due_at) - as_utc(big.assigned_at)
    assert due == timedelta(hours=4) and as_utc(big.assigned_at) >= before
    de = capture(db, 2, country="Austria", employees=50)
    assert de.owner_id == de_owner.id and de.country == "AT"
    assert as_utc(de.first_touch_due_at) - as_utc(de.assigned_at) == timedelta(hours=8)
    fin = capture(db, 3, "webinar", country="FR", industry="fintech")
    assert fin.owner_id == team[0].id and fin.team_id == team[0].team_id
    other_form = capture(db, 4, "demo", country="FR", industry="Fintech")
    assert other_form.owner_id is None and other_form.assignment_rule_id is None
    # no rule: no owner, the default 24 hours
    assert as_utc(other_form.first_touch_due_at) - utcnow() > timedelta(hours=23)


def test_no_candidates_leaves_the_lead_in_the_team_queue(db, make_actor):
    lonely = make_actor("manager", team="empty")
    rule(db, name="Nobody", method="round_robin", team_id=lonely.team_id, first_touch_hours=2)
    lead = capture(db, 1)
    assert lead.owner_id is None and lead.team_id == lonely.team_id
    assert as_utc(lead.first_touch_due_at) - as_utc(lead.assigned_at) == timedelta(hours=2)


def test_rules_api(db, client, make_actor, team):
    manager = make_actor("manager", team="alpha")
    body = {"name": "DE", "method": "round_robin", "team_id": team[0].team_id,
            "conditions": {"countries": ["de"], "min_employees": 10}, "first_touch_hours": 6}
    r = client.post("/api/v1/assignment-rules", json=body, headers=manager.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["conditions"]["countries"] == ["DE"]
    for bad, field in (({**body, "method": "random"}, "method"),
                       ({**body, "team_id": None}, "team_id"),
                       ({**body, "method": "owner"}, "owner_id"),
                       ({**body, "conditions": {"countries": ["XX"]}}, "conditions.countries"),
                       ({**body, "conditions": {"min_employees": 5, "max_employees": 1}},
                        "conditions"),
                       ({**body, "conditions": {"planet": "Mars"}}, "conditions.planet"),
                       ({**body, "cursor_user_id": 1}, "cursor_user_id"),
                       ({**body, "first_touch_hours": 0}, "first_touch_hours")):
        assert_problem(client.post("/api/v1/assignment-rules", json=bad,
                                   headers=manager.headers), 422, field)
    url = f"/api/v1/assignment-rules/{created['id']}"
    r = client.patch(url, json={"position": 5}, headers={**manager.headers, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["position"] == 5
    # managers may not delete rules (sales_config: read, create, update)
    assert_problem(client.delete(url, headers={**manager.headers, "If-Match": '"2"'}), 403)
    sales = team[0]
    before = snapshot(db)
    assert_problem(client.post("/api/v1/assignment-rules", json=body, headers=sales.headers), 403)
    assert_problem(client.patch(url, json={"position": 1},
                                headers={**sales.headers, "If-Match": '"2"'}), 403)
    assert snapshot(db) == before
    admin = make_actor("admin")
    assert client.delete(url, headers={**admin.headers, "If-Match": '"2"'}).status_code == 204
    with dbmod.session_scope(db, write=False) as s:
        assert s.scalars(select(AssignmentRule)).all() == []
