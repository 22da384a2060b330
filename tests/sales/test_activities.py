"""Activities over the REST API: create/read/update/complete/delete, validation, the links'
read checks, the customer-timeline mirror and the leads' first touch. The seeding helpers at the
top are shared with the other activity tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from accord.core import db as dbmod
from accord.models import Interaction
from accord.models.sales import Activity, Deal, Lead, Pipeline, PipelineStage
from tests.access.helpers import as_admin, assert_problem, count, seed_customer, snapshot

API = "/api/v1/activities"
DUE = "2030-05-06T09:30:00Z"


# --- seeding (shared) --------------------------------------------------------------------------

def seed_lead(url: str, owner_id: int | None, team_id: int | None, **fields: Any) -> int:
    fields.setdefault("first_name", "Lee")
    fields.setdefault("last_name", "Lead")
    with dbmod.session_scope(url) as s:
        lead = Lead(owner_id=owner_id, team_id=team_id, **fields)
        s.add(lead)
        s.flush()
        return lead.id


def seed_deal(url: str, owner_id: int | None, team_id: int | None, **fields: Any) -> int:
    with dbmod.session_scope(url) as s:
        pipeline = s.execute(select(Pipeline).where(Pipeline.name == "Test")).scalar()
        if pipeline is None:
            pipeline = Pipeline(name="Test")
            pipeline.stages = [PipelineStage(name="Open", position=0, probability=20)]
            s.add(pipeline)
            s.flush()
        fields.setdefault("name", "Deal")
        fields.setdefault("amount", Decimal("1000.00"))
        fields.setdefault("currency", "EUR")
        deal = Deal(pipeline_id=pipeline.id, stage_id=pipeline.stages[0].id, owner_id=owner_id,
                    team_id=team_id, **fields)
        s.add(deal)
        s.flush()
        return deal.id


def seed_account(url: str, owner_id: int, team_id: int | None, name: str = "Acme") -> int:
    from accord.customers import accounts
    from accord.customers.accounts_schemas import AccountCreate

    with dbmod.session_scope(url) as s:
        return accounts.create_account(s, as_admin(owner_id, team_id), AccountCreate(name=name)).id


def create(client: Any, actor: Any, **body: Any) -> Any:
    body.setdefault("kind", "task")
    body.setdefault("subject", "Follow up")
    return client.post(API, json=body, headers=actor.headers)


def get_row(url: str, model: Any, row_id: int) -> Any:
    with dbmod.session_scope(url, write=False) as s:
        row = s.get(model, row_id)
        if row is not None:
            s.expunge(row)
        return row


# --- CRUD --------------------------------------------------------------------------------------

def test_create_read_update_complete_delete(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    cid = seed_customer(db, me.id, me.team_id)
    r = create(client, me, customer_id=cid, due_at=DUE, remind_at="2030-05-06T09:00:00Z",
               body="Ask about the renewal")
    assert r.status_code == 201, r.text
    a = r.json()
    assert (a["owner_id"], a["team_id"], a["created_by"]) == (me.id, me.team_id, me.id)
    assert a["status"] == "open" and a["done_at"] is None and a["version"] == 1
    assert a["due_at"].startswith("2030-05-06T09:30:00") and a["remind_at"] is not None
    assert r.headers["ETag"] == '"1"' and r.headers["Location"] == f"{API}/{a['id']}"

    got = client.get(f"{API}/{a['id']}", headers=me.headers)
    assert got.status_code == 200 and got.json() == a

    h = {**me.headers, "If-Match": '"1"'}
    r = client.patch(f"{API}/{a['id']}", json={"subject": "Call back"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["subject"] == "Call back" and r.headers["ETag"] == '"2"'
    # the stale version is refused: no lost update
    stale = client.patch(f"{API}/{a['id']}", json={"subject": "Lost"}, headers=h)
    assert_problem(stale, 412, "If-Match")
    assert_problem(client.patch(f"{API}/{a['id']}", json={"subject": "x"}, headers=me.headers),
                   428)

    r = client.post(f"{API}/{a['id']}/complete", json={}, headers=me.headers)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "done" and done["done_at"] is not None
    again = client.post(f"{API}/{a['id']}/complete", headers=me.headers)
    assert again.status_code == 200 and again.json()["version"] == done["version"]

    r = client.delete(f"{API}/{a['id']}", headers={**me.headers,
                                                   "If-Match": f'"{done["version"]}"'})
    assert r.status_code == 204
    assert_problem(client.get(f"{API}/{a['id']}", headers=me.headers), 404)


def test_call_fields_and_logged_call(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    cid = seed_customer(db, me.id, me.team_id)
    r = create(client, me, kind="call", subject="Intro call", customer_id=cid, status="done",
               direction="inbound", duration_minutes=12, outcome="interested",
               done_at="2030-01-02T10:00:00+01:00")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["direction"], body["duration_minutes"], body["outcome"]) == (
        "inbound", 12, "interested")
    assert body["done_at"].startswith("2030-01-02T09:00:00")  # stored as UTC
    # direction only on calls, duration/outcome only on calls and meetings
    assert_problem(create(client, me, customer_id=cid, direction="inbound"), 422, "direction")
    assert_problem(create(client, me, kind="note", customer_id=cid, duration_minutes=5), 422,
                   "duration_minutes")
    assert_problem(create(client, me, customer_id=cid, done_at=DUE), 422, "done_at")


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "email"}, "kind"),
    ({"subject": ""}, "subject"),
    ({"due_at": "2030-05-06T09:30:00"}, "due_at"),  # naive: refused
    ({"remind_at": "2030-05-06 09:00"}, "remind_at"),
    ({"owner_id": 1}, "owner_id"),  # read-only: mass assignment refused
    ({"interaction_id": 1}, "interaction_id"),
    ({"status": "cancelled"}, "status"),
    ({"duration_minutes": -1, "kind": "call"}, "duration_minutes"),
    ({"customer_id": 0}, "customer_id"),
])
def test_validation(db, client, make_actor, body, field):
    me = make_actor("sales", team="alpha")
    cid = seed_customer(db, me.id, me.team_id)
    before = count(db, "activities")
    r = create(client, me, **{"customer_id": cid, **body})
    assert_problem(r, 422, field)
    assert count(db, "activities") == before


def test_needs_a_link_and_readable_links(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    assert_problem(create(client, me), 422, "customer_id")
    theirs = {
        "customer_id": seed_customer(db, outsider.id, outsider.team_id),
        "lead_id": seed_lead(db, outsider.id, outsider.team_id),
        "deal_id": seed_deal(db, outsider.id, outsider.team_id),
        "account_id": seed_account(db, outsider.id, outsider.team_id),
    }
    before = snapshot(db)
    for name, rid in theirs.items():
        assert_problem(create(client, me, **{name: rid}), 404, name)
        assert_problem(create(client, me, **{name: 10**9}), 404, name)
    assert snapshot(db) == before and count(db, "activities") == 0
    mine = {
        "customer_id": seed_customer(db, me.id, me.team_id),
        "lead_id": seed_lead(db, me.id, me.team_id),
        "deal_id": seed_deal(db, me.id, me.team_id),
        "account_id": seed_account(db, me.id, me.team_id),
    }
    r = create(client, me, **mine)
    assert r.status_code == 201, r.text
    assert {k: r.json()[k] for k in mine} == mine
    # the last link cannot be removed, and a new link must be readable too
    aid, h = r.json()["id"], {**me.headers, "If-Match": '"1"'}
    only_lead = {"customer_id": None, "deal_id": None, "account_id": None}
    r = client.patch(f"{API}/{aid}", json=only_lead, headers=h)
    assert r.status_code == 200, r.text
    h = {**me.headers, "If-Match": '"2"'}
    assert_problem(client.patch(f"{API}/{aid}", json={"lead_id": None}, headers=h), 422,
                   "lead_id")
    assert_problem(client.patch(f"{API}/{aid}", json={"deal_id": theirs["deal_id"]}, headers=h),
                   404, "deal_id")
    assert get_row(db, Activity, aid).version == 2


def test_list_filters_and_keyset_pages(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    mate = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    cid = seed_customer(db, me.id, me.team_id)
    other_cid = seed_customer(db, outsider.id, outsider.team_id)
    base = datetime(2030, 3, 1, 8, tzinfo=UTC)
    ids = []
    for i in range(5):
        r = create(client, me, customer_id=cid, kind="call" if i % 2 else "task",
                   due_at=(base + timedelta(hours=i)).isoformat())
        ids.append(r.json()["id"])
    undated = create(client, me, customer_id=cid).json()["id"]
    mates = create(client, mate, customer_id=cid).json()["id"]
    hidden = create(client, outsider, customer_id=other_cid).json()["id"]

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = client.get(API, params=params, headers=me.headers)
        assert r.status_code == 200, r.text
        seen += [a["id"] for a in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if not cursor:
            break
    assert seen[:5] == ids  # by due time, undated last
    assert set(seen) == {*ids, undated, mates} and hidden not in seen

    def ids_for(**params: Any) -> list[int]:
        r = client.get(API, params=params, headers=me.headers)
        assert r.status_code == 200, r.text
        return [a["id"] for a in r.json()["items"]]

    assert ids_for(kind="call") == [ids[1], ids[3]]
    assert ids_for(due_at__gte=(base + timedelta(hours=3)).isoformat()) == ids[3:]
    assert ids_for(due_at__lt=(base + timedelta(hours=1)).isoformat()) == ids[:1]
    assert ids_for(owner_id=mate.id) == [mates]
    assert ids_for(owner_id=outsider.id) == []  # a filter never widens the scope
    assert ids_for(customer_id=other_cid) == []
    assert ids_for(status="open", sort="-due_at")[-1] == ids[0]
    for bad in ({"kind": "email"}, {"subject": "x"}, {"sort": "subject"},
                {"due_at__gte": "yesterday"}, {"body__prefix": "x"}):
        assert_problem(client.get(API, params=bad, headers=me.headers), 422)


# --- the customer timeline ---------------------------------------------------------------------

def _interaction(url: str, activity_id: int) -> Interaction | None:
    a = get_row(url, Activity, activity_id)
    return get_row(url, Interaction, a.interaction_id) if a.interaction_id else None


def test_timeline_mirror_follows_the_activity(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    cid = seed_customer(db, me.id, me.team_id)
    r = create(client, me, kind="call", subject="Pricing", body="Wants a quote",
               customer_id=cid, due_at=DUE, direction="inbound")
    aid = r.json()["id"]
    assert r.json()["interaction_id"] is not None
    i = _interaction(db, aid)
    assert (i.customer_id, i.channel, i.direction, i.department) == (
        cid, "phone", "inbound", "sales")
    assert (i.subject, i.body, i.source) == ("Call: Pricing", "Wants a quote", "sales.activity")
    assert i.occurred_at == datetime(2030, 5, 6, 9, 30, tzinfo=UTC)
    assert i.meta == {"activity_id": aid, "kind": "call"}
    # it is on the customer's timeline as the interactions API and the 360 view show it
    timeline = client.get(f"/api/v1/customers/{cid}/interactions", headers=me.headers).json()
    assert [t["id"] for t in timeline["items"]] == [i.id]

    r = client.patch(f"{API}/{aid}", json={"subject": "Pricing v2"},
                     headers={**me.headers, "If-Match": '"1"'})
    assert r.status_code == 200
    assert _interaction(db, aid).subject == "Call: Pricing v2"

    r = client.post(f"{API}/{aid}/complete", json={"done_at": "2030-05-06T10:15:00Z"},
                    headers=me.headers)
    assert r.status_code == 200, r.text
    assert _interaction(db, aid).occurred_at == datetime(2030, 5, 6, 10, 15, tzinfo=UTC)

    version = get_row(db, Activity, aid).version
    r = client.delete(f"{API}/{aid}", headers={**me.headers, "If-Match": f'"{version}"'})
    assert r.status_code == 204
    assert count(db, "interactions") == 0


def test_activity_on_a_deal_or_known_lead_lands_on_the_customers_timeline(db, client,
                                                                          make_actor):
    me = make_actor("sales", team="alpha")
    cid = seed_customer(db, me.id, me.team_id)
    deal_id = seed_deal(db, me.id, me.team_id, customer_id=cid)
    lead_id = seed_lead(db, me.id, me.team_id, customer_id=cid)
    bare_lead = seed_lead(db, me.id, me.team_id)
    on_deal = create(client, me, kind="call", subject="Negotiation", deal_id=deal_id).json()
    on_lead = create(client, me, kind="meeting", subject="Demo", lead_id=lead_id).json()
    unknown = create(client, me, kind="note", subject="Cold", lead_id=bare_lead).json()
    assert _interaction(db, on_deal["id"]).customer_id == cid
    assert _interaction(db, on_lead["id"]).customer_id == cid
    assert unknown["interaction_id"] is None  # a lead not known as a customer has no timeline
    assert count(db, "interactions") == 2


def test_mirror_moves_and_disappears(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    first, second = seed_customer(db, me.id, me.team_id), seed_customer(db, me.id, me.team_id)
    lead = seed_lead(db, me.id, me.team_id)
    aid = create(client, me, customer_id=first, lead_id=lead).json()["id"]
    assert _interaction(db, aid).customer_id == first
    h = {**me.headers, "If-Match": '"1"'}
    assert client.patch(f"{API}/{aid}", json={"customer_id": second}, headers=h).status_code == 200
    assert _interaction(db, aid).customer_id == second and count(db, "interactions") == 1
    # cancelled: the activity did not happen, so it leaves the timeline; reopened: back again
    h = {**me.headers, "If-Match": '"2"'}
    assert client.patch(f"{API}/{aid}", json={"status": "cancelled"}, headers=h).status_code == 200
    assert _interaction(db, aid) is None and count(db, "interactions") == 0
    h = {**me.headers, "If-Match": '"3"'}
    assert client.patch(f"{API}/{aid}", json={"status": "open"}, headers=h).status_code == 200
    assert count(db, "interactions") == 1
    # an activity only about a lead has no timeline entry
    h = {**me.headers, "If-Match": '"4"'}
    assert client.patch(f"{API}/{aid}", json={"customer_id": None}, headers=h).status_code == 200
    assert count(db, "interactions") == 0


def test_sales_user_completes_own_call_on_a_teammates_customer(db, client, make_actor):
    """The mirror is part of the allowed activity write, not a separate timeline edit (a
    salesperson may not edit a teammate's customer's interactions by hand)."""
    me = make_actor("sales", team="alpha")
    mate = make_actor("sales", team="alpha")
    cid = seed_customer(db, mate.id, mate.team_id)
    aid = create(client, me, kind="call", customer_id=cid, due_at=DUE).json()["id"]
    interaction_id = get_row(db, Activity, aid).interaction_id
    r = client.patch(f"/api/v1/interactions/{interaction_id}", json={"subject": "by hand"},
                     headers={**me.headers, "If-Match": '"1"'})
    assert_problem(r, 403)
    r = client.post(f"{API}/{aid}/complete", headers=me.headers)
    assert r.status_code == 200, r.text
    i = _interaction(db, aid)
    assert i.occurred_at == get_row(db, Activity, aid).done_at
    from tests.access.helpers import audit_actions

    assert ("update", "interactions", str(i.id)) in audit_actions(db)


# --- leads: the first touch --------------------------------------------------------------------

def test_first_touch_of_a_lead(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    due = datetime.now(UTC) + timedelta(hours=4)
    by_call = seed_lead(db, me.id, me.team_id, first_touch_due_at=due)
    r = create(client, me, kind="call", lead_id=by_call, status="done",
               done_at="2030-02-03T04:05:06Z")
    assert r.status_code == 201, r.text
    lead = get_row(db, Lead, by_call)
    assert lead.status == "working"
    assert lead.first_touched_at == datetime(2030, 2, 3, 4, 5, 6, tzinfo=UTC)
    # once only: a later call does not move the first touch
    create(client, me, kind="meeting", lead_id=by_call)
    assert get_row(db, Lead, by_call).first_touched_at == lead.first_touched_at

    by_task = seed_lead(db, me.id, me.team_id)
    aid = create(client, me, kind="task", lead_id=by_task).json()["id"]
    create(client, me, kind="note", lead_id=by_task)
    lead = get_row(db, Lead, by_task)
    assert (lead.status, lead.first_touched_at) == ("new", None)  # planning is not touching
    client.post(f"{API}/{aid}/complete", headers=me.headers)
    lead = get_row(db, Lead, by_task)
    assert lead.status == "working" and lead.first_touched_at is not None

    nurtured = seed_lead(db, me.id, me.team_id, status="nurturing")
    create(client, me, kind="call", lead_id=nurtured)
    lead = get_row(db, Lead, nurtured)
    assert lead.status == "nurturing" and lead.first_touched_at is not None


def test_denied_create_changes_nothing(db, client, make_actor):
    analyst = make_actor("analyst", team="alpha")
    cid = seed_customer(db, analyst.id, analyst.team_id)
    lead = seed_lead(db, analyst.id, analyst.team_id)
    before = snapshot(db)
    assert_problem(create(client, analyst, kind="call", customer_id=cid, lead_id=lead), 403)
    assert snapshot(db) == before
    assert get_row(db, Lead, lead).first_touched_at is None
    assert count(db, "activities") == 0 and count(db, "interactions") == 0


def test_date_only_fields_are_not_datetimes(db, client, make_actor):
    me = make_actor("sales", team="alpha")
    cid = seed_customer(db, me.id, me.team_id)
    assert_problem(create(client, me, customer_id=cid, due_at=date(2030, 1, 1).isoformat()), 422,
                   "due_at")
