"""Deals over the REST API: create, validate, update, move (412 on stale), history, list."""

from __future__ import annotations

from sqlalchemy import select

from accord.core import db as dbmod
from accord.models import AuditEntry, DealStageChange, OutboxEvent
from tests.access.helpers import assert_problem, seed_customer
from tests.sales.test_deals_fixtures import create, default_pipelines, move, new_business


def _events(url: str, deal_id: int) -> list[str]:
    with dbmod.session_scope(url, write=False) as s:
        return list(s.execute(select(OutboxEvent.type).where(
            OutboxEvent.aggregate == "deal", OutboxEvent.aggregate_id == str(deal_id))
            .order_by(OutboxEvent.id)).scalars())


def test_create_defaults_to_first_open_stage_and_records_history(db, client, make_actor):
    actor = make_actor("sales", team="alpha")
    nb = new_business(db)
    deal = create(client, actor, nb["id"], name="Acme rollout", expected_close_date="2026-12-15",
                  competitors=["Globex", "globex", "Initech"])
    assert deal["stage_id"] == nb["stages"]["Qualification"]
    assert deal["status"] == "open" and deal["forecast_category"] == "pipeline"
    assert deal["owner_id"] == actor.id and deal["team_id"] == actor.team_id
    assert deal["created_by"] == actor.id and deal["closed_at"] is None
    assert deal["amount"] == "100.00" and deal["currency"] == "EUR"
    assert deal["competitors"] == ["Globex", "Initech"]
    history = deal["stage_history"]
    assert len(history) == 1
    assert history[0]["from_stage_id"] is None
    assert history[0]["to_stage_id"] == nb["stages"]["Qualification"]
    assert history[0]["amount"] == "100.00" and history[0]["changed_by"] == actor.id
    assert _events(db, deal["id"]) == ["deal.created"]
    with dbmod.session_scope(db, write=False) as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.resource == "deals")
                          .order_by(AuditEntry.id.desc())).scalars().first()
        assert (entry.action, entry.record_id) == ("create", str(deal["id"]))


def test_lines_make_the_amount(db, client, make_actor, admin):
    nb = new_business(db)
    r = client.post("/api/v1/products", headers=admin.headers, json={
        "sku": "SEAT", "name": "Training seat", "price": "250.00", "currency": "EUR"})
    assert r.status_code == 201, r.text
    product_id = r.json()["id"]
    deal = create(client, admin, nb["id"], amount=None, lines=[
        {"product_id": product_id, "quantity": 4, "discount_percent": "10"},
        {"description": "Setup", "quantity": 1, "unit_price": "199.99"},
    ])
    lines = deal["lines"]
    assert [(ln["description"], ln["unit_price"], ln["line_total"]) for ln in lines] == [
        ("Training seat", "250.00", "900.00"), ("Setup", "199.99", "199.99")]
    assert deal["amount"] == "1099.99"
    # an amount that is not the lines' sum is refused, naming the field
    body = {"name": "X", "pipeline_id": nb["id"], "currency": "EUR", "amount": "5.00",
            "lines": [{"description": "Setup", "quantity": 1, "unit_price": "1.00"}]}
    assert_problem(client.post("/api/v1/deals", json=body, headers=admin.headers), 422, "amount")
    # a product priced in another currency needs an explicit unit price
    body = {"name": "X", "pipeline_id": nb["id"], "currency": "USD",
            "lines": [{"product_id": product_id, "quantity": 1}]}
    assert_problem(client.post("/api/v1/deals", json=body, headers=admin.headers), 422,
                   "lines.0.unit_price")
    # replacing the lines recomputes the amount; the amount alone cannot be changed then
    h = {**admin.headers, "If-Match": f'"{deal["version"]}"'}
    r = client.patch(f"/api/v1/deals/{deal['id']}", headers=h, json={
        "lines": [{"description": "Setup", "quantity": 3, "unit_price": "10.00"}]})
    assert r.status_code == 200, r.text
    assert r.json()["amount"] == "30.00" and len(r.json()["lines"]) == 1
    h = {**admin.headers, "If-Match": f'"{r.json()["version"]}"'}
    assert_problem(client.patch(f"/api/v1/deals/{deal['id']}", headers=h,
                                json={"amount": "99.00"}), 422, "amount")
    r = client.patch(f"/api/v1/deals/{deal['id']}", headers=h, json={"lines": []})
    assert r.status_code == 200 and r.json()["lines"] == [] and r.json()["amount"] == "30.00"


def test_validation_errors_name_the_field(db, client, make_actor):
    actor = make_actor("manager", team="alpha")
    pipes = default_pipelines(db)
    nb, up = pipes["New business"], pipes["Upsell and renewal"]
    base = {"name": "Deal", "pipeline_id": nb["id"], "currency": "EUR", "amount": "10.00"}
    cases = [
        ({"stage_id": 999999}, "stage_id"),
        ({"stage_id": up["stages"]["Offer sent"]}, "stage_id"),  # another pipeline's stage
        ({"stage_id": nb["stages"]["Closed lost"]}, "lost_reason"),  # lost needs a reason
        ({"currency": "EURO"}, "currency"),
        ({"currency": "ABC"}, "currency"),
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"pipeline_id": 999999}, "pipeline_id"),
        ({"probability": 101}, "probability"),
        ({"forecast_category": "closed"}, "forecast_category"),
        ({"forecast_category": "maybe"}, "forecast_category"),
        ({"lost_reason": "price"}, "lost_reason"),  # only for a lost stage
        ({"customer_id": 999999}, "customer_id"),
        ({"owner_id": actor.id}, "owner_id"),  # read-only fields are refused
        ({"status": "won"}, "status"),
        ({"version": 3}, "version"),
        ({"name": ""}, "name"),
    ]
    for extra, field in cases:
        r = client.post("/api/v1/deals", json={**base, **extra}, headers=actor.headers)
        assert_problem(r, 422, field)
    # nothing was created by any of them
    r = client.get("/api/v1/deals", headers=actor.headers)
    assert r.json()["items"] == []


def test_linked_records_must_be_readable(db, client, make_actor):
    actor = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    nb = new_business(db)
    mine = seed_customer(db, actor.id, actor.team_id)
    theirs = seed_customer(db, outsider.id, outsider.team_id)
    deal = create(client, actor, nb["id"], customer_id=mine)
    assert deal["customer_id"] == mine
    r = client.post("/api/v1/deals", headers=actor.headers, json={
        "name": "X", "pipeline_id": nb["id"], "currency": "EUR", "customer_id": theirs})
    body = assert_problem(r, 422, "customer_id")
    assert body["detail"] == f"customer {theirs} does not exist"  # no existence oracle


def test_move_records_history_status_and_events(db, client, make_actor):
    actor = make_actor("sales", team="alpha")
    nb = new_business(db)
    st = nb["stages"]
    deal = create(client, actor, nb["id"], probability=40)
    r = move(client, actor, deal, st["Proposal"])
    assert r.status_code == 200, r.text
    moved = r.json()
    assert r.headers["ETag"] == f'"{moved["version"]}"' and moved["version"] == deal["version"] + 1
    assert moved["stage_id"] == st["Proposal"] and moved["status"] == "open"
    assert moved["probability"] is None  # the stage's default applies after a move
    assert moved["stage_entered_at"] > deal["stage_entered_at"]
    assert [(h["from_stage_id"], h["to_stage_id"]) for h in moved["stage_history"]] == [
        (None, st["Qualification"]), (st["Qualification"], st["Proposal"])]

    # stale version → 412, nothing changes
    r = move(client, actor, deal, st["Negotiation"])
    assert_problem(r, 412, "If-Match")
    r = client.post(f"/api/v1/deals/{deal['id']}/move", json={"stage_id": st["Negotiation"]},
                    headers=actor.headers)
    assert_problem(r, 428, "If-Match")
    # lost needs a reason; with it the deal is closed
    assert_problem(move(client, actor, moved, st["Closed lost"]), 422, "lost_reason")
    r = move(client, actor, moved, st["Closed lost"], lost_reason="price", lost_note="too dear")
    assert r.status_code == 200, r.text
    lost = r.json()
    assert lost["status"] == "lost" and lost["lost_reason"] == "price"
    assert lost["closed_at"] is not None and lost["forecast_category"] == "closed"
    # reopened: closed_at and the lost reason are cleared
    r = move(client, actor, lost, st["Negotiation"])
    reopened = r.json()
    assert reopened["status"] == "open" and reopened["closed_at"] is None
    assert reopened["lost_reason"] is None and reopened["forecast_category"] == "pipeline"
    r = move(client, actor, reopened, st["Closed won"])
    won = r.json()
    assert won["status"] == "won" and won["closed_at"] is not None
    assert len(won["stage_history"]) == 5
    assert _events(db, deal["id"]) == [
        "deal.created", "deal.stage_changed", "deal.stage_changed", "deal.lost",
        "deal.stage_changed", "deal.stage_changed", "deal.won"]
    # another pipeline's stage is not a move target
    up = default_pipelines(db)["Upsell and renewal"]
    assert_problem(move(client, actor, won, up["stages"]["Offer sent"]), 422, "stage_id")
    with dbmod.session_scope(db, write=False) as s:
        rows = s.execute(select(DealStageChange).where(DealStageChange.deal_id == deal["id"])
                         ).scalars().all()
        assert len(rows) == 5 and all(r.changed_by == actor.id for r in rows)


def test_patch_rules(db, client, make_actor):
    actor = make_actor("sales", team="alpha")
    nb = new_business(db)
    deal = create(client, actor, nb["id"])
    url = f"/api/v1/deals/{deal['id']}"
    h = {**actor.headers, "If-Match": f'"{deal["version"]}"'}
    assert_problem(client.patch(url, json={"stage_id": nb["stages"]["Proposal"]}, headers=h),
                   422, "stage_id")  # moves go through /move
    assert_problem(client.patch(url, json={"forecast_category": "closed"}, headers=h), 422,
                   "forecast_category")
    assert_problem(client.patch(url, json={"lost_reason": "price"}, headers=h), 422,
                   "lost_reason")
    assert_problem(client.patch(url, json={"name": None}, headers=h), 422, "name")
    r = client.patch(url, json={"name": "Renamed", "forecast_category": "commit",
                                "expected_close_date": "2027-01-31", "amount": "2500.50"},
                     headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["forecast_category"], r.json()["amount"]) == (
        "Renamed", "commit", "2500.50")
    assert_problem(client.patch(url, json={"name": "Again"}, headers=h), 412, "If-Match")
    r = client.get(url, headers=actor.headers)
    assert r.json()["name"] == "Renamed" and r.headers["ETag"] == f'"{deal["version"] + 1}"'


def test_list_filters_sorts_and_pages(db, client, make_actor):
    actor = make_actor("admin", team="alpha")
    nb = new_business(db)
    made = []
    for i, (amount, close) in enumerate(
            [("100.00", "2026-01-10"), ("900.00", "2026-02-10"), ("500.00", "2026-03-10"),
             ("50.00", None), ("700.00", "2026-02-20")]):
        made.append(create(client, actor, nb["id"], name=f"D{i}", amount=amount,
                           expected_close_date=close))
    move(client, actor, made[1], nb["stages"]["Closed won"])

    def ids(**params):
        r = client.get("/api/v1/deals", params=params, headers=actor.headers)
        assert r.status_code == 200, r.text
        return [d["id"] for d in r.json()["items"]]

    assert ids() == [d["id"] for d in reversed(made)]
    assert ids(status="won") == [made[1]["id"]]
    assert ids(stage_id=nb["stages"]["Closed won"]) == [made[1]["id"]]
    assert ids(amount__gte="500", sort="amount") == [made[2]["id"], made[4]["id"], made[1]["id"]]
    assert ids(expected_close_date__gte="2026-02-01", expected_close_date__lt="2026-03-01",
               sort="expected_close_date") == [made[1]["id"], made[4]["id"]]
    assert ids(forecast_category="closed") == [made[1]["id"]]
    assert ids(owner_id=actor.id, pipeline_id=nb["id"], status="open", q="D3") == [made[3]["id"]]
    # keyset pages walk every deal once, NULL close dates included
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "sort": "-expected_close_date"}
        if cursor:
            params["cursor"] = cursor
        r = client.get("/api/v1/deals", params=params, headers=actor.headers).json()
        seen += [d["id"] for d in r["items"]]
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(d["id"] for d in made) and len(seen) == 5
    for bad in ({"secret": "1"}, {"status": "maybe"}, {"sort": "password"},
                {"amount__gte": "lots"}):
        assert_problem(client.get("/api/v1/deals", params=bad, headers=actor.headers), 422)


def test_delete_and_assign(db, client, make_actor):
    manager = make_actor("manager", team="alpha")
    mate = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    nb = new_business(db)
    deal = create(client, mate, nb["id"])
    url = f"/api/v1/deals/{deal['id']}"
    h = {**manager.headers, "If-Match": f'"{deal["version"]}"'}
    assert_problem(client.post(url + "/assign", json={"team_id": outsider.team_id}, headers=h),
                   403, "team_id")
    assert_problem(client.post(url + "/assign", json={"owner_id": 999999}, headers=h), 422,
                   "owner_id")
    r = client.post(url + "/assign", json={"owner_id": manager.id}, headers=h)
    assert r.status_code == 200 and r.json()["owner_id"] == manager.id
    h = {**manager.headers, "If-Match": f'"{r.json()["version"]}"'}
    assert client.delete(url, headers=h).status_code == 204
    assert_problem(client.get(url, headers=manager.headers), 404)
    assert _events(db, deal["id"])[-2:] == ["deal.assigned", "deal.deleted"]


def test_account_and_contact_references(db, client, make_actor):
    actor = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    nb = new_business(db)

    def account(who, name):
        r = client.post("/api/v1/accounts", json={"name": name}, headers=who.headers)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def contact(who, account_id, name):
        r = client.post(f"/api/v1/accounts/{account_id}/contacts", json={"first_name": name},
                        headers=who.headers)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    mine, other = account(actor, "Acme"), account(actor, "Globex")
    theirs = account(outsider, "Initech")
    c_mine, c_other = contact(actor, mine, "Wile"), contact(actor, other, "Hank")
    c_theirs = contact(outsider, theirs, "Bill")
    # a contact alone brings its account
    deal = create(client, actor, nb["id"], contact_id=c_mine)
    assert (deal["contact_id"], deal["account_id"]) == (c_mine, mine)
    base = {"name": "X", "pipeline_id": nb["id"], "currency": "EUR"}
    for extra, field in (({"account_id": theirs}, "account_id"),
                         ({"contact_id": c_theirs}, "contact_id"),
                         ({"account_id": mine, "contact_id": c_other}, "contact_id"),
                         ({"lead_id": 999999}, "lead_id")):
        assert_problem(client.post("/api/v1/deals", json={**base, **extra},
                                   headers=actor.headers), 422, field)
    # on a PATCH a new contact must belong to the deal's account
    h = {**actor.headers, "If-Match": f'"{deal["version"]}"'}
    url = f"/api/v1/deals/{deal['id']}"
    assert_problem(client.patch(url, json={"contact_id": c_other}, headers=h), 422, "contact_id")
    r = client.patch(url, json={"account_id": other, "contact_id": c_other}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["account_id"], r.json()["contact_id"]) == (other, c_other)


def test_move_is_audited_and_create_is_idempotent(db, client, make_actor):
    actor = make_actor("sales", team="alpha")
    nb = new_business(db)
    body = {"name": "Once", "pipeline_id": nb["id"], "currency": "EUR", "amount": "10.00"}
    h = {**actor.headers, "Idempotency-Key": "deal-once-1"}
    first = client.post("/api/v1/deals", json=body, headers=h)
    again = client.post("/api/v1/deals", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(client.get("/api/v1/deals", headers=actor.headers).json()["items"]) == 1
    deal = first.json()
    assert move(client, actor, deal, nb["stages"]["Proposal"]).status_code == 200
    with dbmod.session_scope(db, write=False) as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.resource == "deals",
                                                   AuditEntry.action == "update")
                          .order_by(AuditEntry.id.desc())).scalars().first()
        assert entry.record_id == str(deal["id"]) and entry.actor_id == actor.id
        assert "stage_id" in entry.fields
        assert (entry.detail["from_stage_id"], entry.detail["to_stage_id"]) == (
            nb["stages"]["Qualification"], nb["stages"]["Proposal"])
