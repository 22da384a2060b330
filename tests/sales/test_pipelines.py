"""Pipelines and stages over the REST API, the default pipelines, and the board's totals."""

from __future__ import annotations

from decimal import Decimal

from accord.core import db as dbmod
from accord.sales import deals
from accord.sales.pipelines import ensure_default_pipelines
from tests.access.helpers import assert_problem, count
from tests.sales.test_deals_fixtures import (
    create,
    default_pipelines,
    move,
    new_business,
    snapshot,
)


def test_default_pipelines_are_created_once(db):
    with dbmod.session_scope(db) as s:
        made = ensure_default_pipelines(s)
        assert [p.name for p in made] == ["New business", "Upsell and renewal"]
        nb = made[0]
        assert [(st.name, st.probability, st.outcome, st.position) for st in nb.stages] == [
            ("Qualification", 10, "open", 0), ("Needs analysis", 25, "open", 1),
            ("Proposal", 50, "open", 2), ("Negotiation", 75, "open", 3),
            ("Closed won", 100, "won", 4), ("Closed lost", 0, "lost", 5)]
        up = made[1]
        assert up.kind == "upsell"
        assert {st.outcome for st in up.stages} == {"open", "won", "lost"}
    with dbmod.session_scope(db) as s:
        again = ensure_default_pipelines(s)
        assert len(again) == 2
    assert count(db, "pipelines") == 2 and count(db, "pipeline_stages") == 11


def test_pipeline_and_stage_management(db, client, make_actor):
    manager = make_actor("manager", team="alpha")
    h = manager.headers
    r = client.post("/api/v1/pipelines", headers=h, json={
        "name": "Partners", "kind": "new_business",
        "stages": [{"name": "Intro", "probability": 10}, {"name": "Deal", "probability": 60},
                   {"name": "Won", "probability": 100, "outcome": "won"}]})
    assert r.status_code == 201, r.text
    p = r.json()
    pid, version = p["id"], p["version"]
    ids = {s["name"]: s["id"] for s in p["stages"]}
    assert [s["position"] for s in p["stages"]] == [0, 1, 2]
    assert_problem(client.post("/api/v1/pipelines", headers=h, json={
        "name": "Partners", "stages": [{"name": "A"}]}), 409, "name")
    assert_problem(client.post("/api/v1/pipelines", headers=h, json={
        "name": "Closed only", "stages": [{"name": "W", "outcome": "won"}]}), 422, "stages")
    # add a stage in second place; rename; set a probability
    r = client.post(f"/api/v1/pipelines/{pid}/stages", headers=h,
                    json={"name": "Demo", "probability": 30, "position": 1})
    assert r.status_code == 201, r.text
    ids["Demo"] = r.json()["id"]
    r = client.get(f"/api/v1/pipelines/{pid}", headers=h)
    assert [s["name"] for s in r.json()["stages"]] == ["Intro", "Demo", "Deal", "Won"]
    assert r.json()["version"] > version
    stage = next(s for s in r.json()["stages"] if s["name"] == "Deal")
    r = client.patch(f"/api/v1/pipelines/{pid}/stages/{ids['Deal']}",
                     headers={**h, "If-Match": f'"{stage["version"]}"'},
                     json={"name": "Negotiation", "probability": 70})
    assert r.status_code == 200 and (r.json()["name"], r.json()["probability"]) == (
        "Negotiation", 70)
    assert_problem(client.patch(f"/api/v1/pipelines/{pid}/stages/{ids['Deal']}",
                                headers={**h, "If-Match": f'"{stage["version"]}"'},
                                json={"probability": 80}), 412)
    # reorder: every stage exactly once
    current = client.get(f"/api/v1/pipelines/{pid}", headers=h).json()
    order = [ids["Demo"], ids["Intro"], ids["Deal"], ids["Won"]]
    hm = {**h, "If-Match": f'"{current["version"]}"'}
    assert_problem(client.put(f"/api/v1/pipelines/{pid}/stages/order", headers=hm,
                              json={"stage_ids": order[:3]}), 422, "stage_ids")
    r = client.put(f"/api/v1/pipelines/{pid}/stages/order", headers=hm, json={"stage_ids": order})
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["stages"]] == order
    assert [s["position"] for s in r.json()["stages"]] == [0, 1, 2, 3]
    # rename the pipeline
    r = client.patch(f"/api/v1/pipelines/{pid}", headers={**h, "If-Match": r.headers["ETag"]},
                     json={"name": "Channel partners", "active": False})
    assert r.status_code == 200 and r.json()["name"] == "Channel partners"
    # a stage with deals cannot be deleted or change outcome; an unused one can go
    client.patch(f"/api/v1/pipelines/{pid}", headers={**h, "If-Match": r.headers["ETag"]},
                 json={"active": True})
    deal = create(client, manager, pid, stage_id=ids["Intro"])
    intro = next(s for s in client.get(f"/api/v1/pipelines/{pid}", headers=h).json()["stages"]
                 if s["id"] == ids["Intro"])
    hi = {**h, "If-Match": f'"{intro["version"]}"'}
    admin = make_actor("admin")
    before = snapshot(db)
    assert_problem(client.delete(f"/api/v1/pipelines/{pid}/stages/{ids['Intro']}", headers=hi),
                   409)
    assert_problem(client.patch(f"/api/v1/pipelines/{pid}/stages/{ids['Intro']}", headers=hi,
                                json={"outcome": "won"}), 409, "outcome")
    pv = client.get(f"/api/v1/pipelines/{pid}", headers=h).headers["ETag"]
    assert_problem(client.delete(f"/api/v1/pipelines/{pid}", headers={**h, "If-Match": pv}), 403)
    assert_problem(client.delete(f"/api/v1/pipelines/{pid}",
                                 headers={**admin.headers, "If-Match": pv}), 409)
    assert snapshot(db) == before
    assert count(db, "pipeline_stages", f"WHERE pipeline_id = {pid}") == 4
    # a stage the deal has passed through keeps its history: refused too
    assert move(client, manager, deal, ids["Demo"]).status_code == 200
    assert_problem(client.delete(f"/api/v1/pipelines/{pid}/stages/{ids['Intro']}", headers=hi),
                   409)
    stages = client.get(f"/api/v1/pipelines/{pid}", headers=h).json()["stages"]
    won = next(s for s in stages if s["id"] == ids["Won"])
    r = client.delete(f"/api/v1/pipelines/{pid}/stages/{ids['Won']}",
                      headers={**h, "If-Match": f'"{won["version"]}"'})
    assert r.status_code == 204, r.text
    stages = client.get(f"/api/v1/pipelines/{pid}", headers=h).json()["stages"]
    assert [s["position"] for s in stages] == [0, 1, 2]


def test_sales_may_read_but_not_change_pipelines(db, client, make_actor):
    nb = new_business(db)
    for role in ("sales", "support"):
        actor = make_actor(role, team="alpha")
        r = client.get("/api/v1/pipelines", headers=actor.headers)
        assert r.status_code == 200 and len(r.json()) == 2
        before = snapshot(db)
        assert_problem(client.post(f"/api/v1/pipelines/{nb['id']}/stages", headers=actor.headers,
                                   json={"name": "New"}), 403)
        assert_problem(client.post("/api/v1/pipelines", headers=actor.headers,
                                   json={"name": "Mine", "stages": [{"name": "A"}]}), 403)
        assert snapshot(db) == before
        assert count(db, "pipeline_stages") == 11


def test_board_cards_and_totals(db, session, client, make_actor):
    actor = make_actor("sales", team="alpha")
    mate = make_actor("sales", team="alpha")
    outsider = make_actor("sales", team="beta")
    nb = new_business(db)
    st = nb["stages"]
    a = create(client, actor, nb["id"], amount="100.00", expected_close_date="2026-12-01")
    b = create(client, actor, nb["id"], amount="300.00", probability=50,
               expected_close_date="2027-01-05")
    c = create(client, mate, nb["id"], amount="1000.00", currency="USD",
               expected_close_date="2026-12-31")
    create(client, outsider, nb["id"], amount="5000.00")  # not visible to actor
    d = create(client, actor, nb["id"], amount="40.00")
    move(client, actor, d, st["Proposal"])

    board = deals.board(session, actor.principal, nb["id"])
    cols = {col.name: col for col in board.columns}
    assert [col.name for col in board.columns] == [
        "Qualification", "Needs analysis", "Proposal", "Negotiation", "Closed won", "Closed lost"]
    q = cols["Qualification"]
    assert [card.id for card in q.cards] == [c["id"], b["id"], a["id"]]  # newest first
    assert q.totals.count == 3
    assert q.totals.amount == {"EUR": Decimal("400.00"), "USD": Decimal("1000.00")}
    # weighted: 100 × 10 % + 300 × 50 % (the deal's own probability); 1000 × 10 %
    assert q.totals.weighted == {"EUR": Decimal("160.00"), "USD": Decimal("100.00")}
    assert [card.probability for card in q.cards] == [10, 50, 10]
    assert cols["Proposal"].totals.count == 1
    assert cols["Proposal"].totals.weighted == {"EUR": Decimal("20.00")}
    assert cols["Closed won"].totals.count == 0 and cols["Closed won"].cards == []
    # filters: owner, close month
    only_mine = deals.board(session, actor.principal, nb["id"],
                            deals.BoardFilters(owner_id=actor.id))
    assert [card.id for card in only_mine.columns[0].cards] == [b["id"], a["id"]]
    december = deals.board(session, actor.principal, nb["id"],
                           deals.parse_board_filters({"close_month": "2026-12"}))
    assert {card.id for card in december.columns[0].cards} == {a["id"], c["id"]}
    assert december.columns[2].totals.count == 0
    # a page per stage, and the next one by keyset
    small = deals.board(session, actor.principal, nb["id"], limit=2)
    first = small.columns[0]
    assert [card.id for card in first.cards] == [c["id"], b["id"]]
    assert first.next_before == b["id"]
    _, rest, more = deals.stage_cards(session, actor.principal, first.stage_id,
                                      before=first.next_before, limit=2)
    assert [card.id for card in rest] == [a["id"]] and more is None
    session.rollback()  # SQLite: hand back the write lock before the API audits its read
    # the same as JSON; bad filters are 422 naming the parameter
    r = client.get(f"/api/v1/pipelines/{nb['id']}/board", headers=actor.headers,
                   params={"limit": 2})
    assert r.status_code == 200, r.text
    col = r.json()["columns"][0]
    assert col["totals"]["amount"] == {"EUR": "400.00", "USD": "1000.00"}
    assert [card["id"] for card in col["cards"]] == [c["id"], b["id"]]
    assert col["next_before"] == b["id"]
    assert_problem(client.get(f"/api/v1/pipelines/{nb['id']}/board", headers=actor.headers,
                              params={"close_month": "2026-13"}), 422, "close_month")
    assert_problem(client.get(f"/api/v1/pipelines/{nb['id']}/board", headers=actor.headers,
                              params={"owner": "1"}), 422, "owner")
    assert_problem(client.get("/api/v1/pipelines/999999/board", headers=actor.headers), 404)


def test_board_runs_one_query_per_stage_plus_totals(db, session, make_actor):
    """First paint: pipeline + stages, the grouped totals, then one query per stage."""
    from sqlalchemy import event

    actor = make_actor("sales", team="alpha")
    pipes = default_pipelines(db)
    nb = pipes["New business"]
    statements: list[str] = []
    engine = session.get_bind()

    def seen(conn, cursor, statement, *args):  # noqa: ANN001 - SQLAlchemy's event signature
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        deals.board(session, actor.principal, nb["id"])
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    on_deals = [s for s in statements if "FROM deals" in s]
    assert len(on_deals) == 1 + len(nb["stages"]), statements
    assert sum("GROUP BY" in s for s in on_deals) == 1
