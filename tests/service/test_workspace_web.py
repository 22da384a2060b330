"""The agent workspace pages: my queue (only my open tickets, SLA due first), the team queue
(scope), the ticket page (notes distinct, 360 summary with field rules, timers), the reply and
properties forms, canned-reply insertion, the collision banner, new tickets and the sentiment
trend on the customer's 360 page."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from accord.access.service import principal_for
from accord.core import db as dbmod
from accord.core.clock import utcnow
from accord.models import CustomerScore, User
from accord.models.service import SlaPolicy, SlaTarget, Ticket, TicketMessage
from accord.service import canned, tickets
from accord.service.canned import CannedReplyCreate
from tests.web.conftest import login
from tests.web.seed import csrf_of, make_user

TARGETS = (("urgent", 30), ("high", 60), ("normal", 240), ("low", 480))


def seed_policy(url: str) -> None:
    """A default round-the-clock policy: first response by priority, resolution 2 days."""
    with dbmod.session_scope(url) as s:
        row = SlaPolicy(name="std", is_default=True)
        s.add(row)
        s.flush()
        for priority, first in TARGETS:
            s.add(SlaTarget(policy_id=row.id, priority=priority, first_response_minutes=first,
                            next_response_minutes=120, resolution_minutes=2880))


def agent(app: Any, url: str, role: str, email: str, name: str,
          team: str | None = None) -> tuple[TestClient, int, str]:
    """A signed-in browser, the user's id and a CSRF token."""
    with dbmod.session_scope(url) as s:
        make_user(s, role, email, name, team=team)
        uid = s.scalar(select(User.id).where(User.email == email))
    client = TestClient(app)
    assert login(client, email).status_code == 303
    return client, int(uid), csrf_of(client.get("/service/queue").text)


def ticket(url: str, *, subject: str, assignee: int | None = None, priority: str = "normal",
           email: str = "ann@example.com", name: str = "Ann Archer",
           body: str = "My order has not arrived.", team_id: int | None = None) -> int:
    with dbmod.session_scope(url) as s:
        return tickets.create_ticket(
            s, tickets.system_principal("email"), subject=subject, channel="email",
            body_text=body, requester_email=email, requester_name=name, priority=priority,
            assignee_id=assignee, team_id=team_id).id


def queue_refs(html: str) -> list[str]:
    return re.findall(r'<span class="ref">(T-\d+)</span>', html)


def test_my_queue_shows_only_my_open_tickets_in_due_order(db, app):
    seed_policy(db)
    me, my_id, _ = agent(app, db, "support", "theo@example.com", "Theo Agent")
    _, other_id, _ = agent(app, db, "support", "una@example.com", "Una Other")
    normal = ticket(db, subject="Normal one", assignee=my_id)
    urgent = ticket(db, subject="Urgent one", assignee=my_id, priority="urgent")
    high = ticket(db, subject="High one", assignee=my_id, priority="high")
    theirs = ticket(db, subject="Not mine", assignee=other_id, priority="urgent")
    solved = ticket(db, subject="Done already", assignee=my_id, priority="urgent")
    with dbmod.session_scope(db) as s:
        principal = principal_for(s.get(User, my_id))
        tickets.reply(s, principal, solved, body_text="Fixed.", status="solved")
    page = me.get("/service/queue")
    assert page.status_code == 200
    assert queue_refs(page.text) == [f"T-{urgent}", f"T-{high}", f"T-{normal}"]
    assert f"T-{theirs}" not in page.text and "Done already" not in page.text
    assert 'data-sla="running"' in page.text and "left" in page.text
    assert 'data-mood="' in page.text  # inbound messages are sentiment-scored
    # filters and the HTMX fragment
    part = me.get("/service/queue?priority=high", headers={"HX-Request": "true"})
    assert queue_refs(part.text) == [f"T-{high}"] and "<html" not in part.text
    # keyset paging: one per page, the cursor walks on in due order
    first = me.get("/service/queue?limit=1")
    assert queue_refs(first.text) == [f"T-{urgent}"]
    nxt = re.search(r'rel="next" href="([^"]+)"', first.text)
    assert nxt is not None
    assert queue_refs(me.get(nxt.group(1).replace("&amp;", "&")).text) == [f"T-{high}"]
    bad = me.get("/service/queue?limit=0")
    assert bad.status_code == 422 and "limit" in bad.text


def test_team_queue_follows_scope(db, app):
    seed_policy(db)
    _, a_id, _ = agent(app, db, "support", "a@example.com", "Ann Agent", team="North")
    _, b_id, _ = agent(app, db, "support", "b@example.com", "Bo Agent", team="South")
    sales, _, _ = agent(app, db, "sales", "s@example.com", "Sam Sales", team="North")
    with dbmod.session_scope(db) as s:
        north = s.scalar(select(User.team_id).where(User.id == a_id))
        south = s.scalar(select(User.team_id).where(User.id == b_id))
    mine = ticket(db, subject="North assigned", assignee=a_id, team_id=north)
    loose = ticket(db, subject="North unassigned", team_id=north)
    far = ticket(db, subject="South ticket", assignee=b_id, team_id=south)
    page = sales.get("/service/queue/team")  # sales: tickets read over the team
    assert page.status_code == 200
    assert set(queue_refs(page.text)) == {f"T-{mine}", f"T-{loose}"}
    assert "Unassigned" in page.text and "Ann Agent" in page.text
    only = sales.get("/service/queue/team?unassigned=1")
    assert queue_refs(only.text) == [f"T-{loose}"]
    assert sales.get(f"/service/tickets/{far}").status_code == 404  # outside the scope
    ignored = sales.get(f"/service/queue/team?team={south}")  # may not pick another team
    assert f"T-{far}" not in ignored.text and f"T-{mine}" in ignored.text
    # an admin picks any team
    admin, _, _ = agent(app, db, "admin", "root@example.com", "Rita Admin")
    picked = admin.get(f"/service/queue/team?team={south}")
    assert queue_refs(picked.text) == [f"T-{far}"] and "South" in picked.text


def _scored_ticket(db: str, agent_id: int) -> tuple[int, int]:
    tid = ticket(db, subject="Broken kettle", assignee=agent_id,
                 body="This is terrible, the kettle broke and nobody answers!")
    with dbmod.session_scope(db) as s:
        t = s.get(Ticket, tid)
        s.add(CustomerScore(customer_id=t.customer_id, value_tier="gold", churn_risk=0.7,
                            at_risk_valuable=True, run_id="t"))
        return tid, int(t.customer_id)


def test_ticket_page_shows_conversation_summary_and_timers(db, app):
    seed_policy(db)
    me, my_id, csrf = agent(app, db, "support", "theo@example.com", "Theo Agent")
    tid, customer_id = _scored_ticket(db, my_id)
    older = ticket(db, subject="Earlier question", assignee=my_id)
    page = me.get(f"/service/tickets/{tid}")
    assert page.status_code == 200
    assert 'data-metric="first_response" data-status="running"' in page.text
    # an internal note and a public reply, through the form
    r = me.post(f"/service/tickets/{tid}/reply", data={
        "csrf_token": csrf, "version": str(_version(db, tid)), "kind": "internal",
        "body_text": "Checking with the warehouse."}, follow_redirects=False)
    assert r.status_code == 303 and "done=noted" in r.headers["location"]
    r = me.post(f"/service/tickets/{tid}/reply", data={
        "csrf_token": csrf, "version": str(_version(db, tid)), "kind": "public",
        "body_text": "Sorry Ann, a new kettle is on its way.", "status": "pending_customer"},
        follow_redirects=False)
    assert r.status_code == 303
    html = me.get(r.headers["location"]).text
    assert "Reply sent." in html
    assert re.search(r'class="msg msg-internal" data-visibility="internal"', html)
    assert re.search(r'class="msg msg-outbound" data-visibility="public"', html)
    assert re.search(r'class="msg msg-inbound" data-visibility="public"[^>]*>\s*<div '
                     r'class="msg-head">\s*<strong>Ann Archer', html)
    assert "Internal note</span>" in html and "Public reply</span>" in html
    assert 'data-metric="first_response" data-status="met"' in html
    assert 'data-metric="resolution" data-status="paused"' in html  # pending_customer
    # the 360 summary: tier and flag shown, churn risk masked for support, previous ticket
    assert 'data-field="value_tier"><span class="badge tier tier-gold">Gold' in html
    assert 'data-field="at_risk_valuable"' in html
    churn = re.search(r'data-field="churn_risk">(.*?)</dd>', html, re.S)
    assert churn is not None and "Restricted" in churn.group(1) and "70" not in churn.group(1)
    assert f"/service/tickets/{older}" in html and f'href="/customers/{customer_id}"' in html
    with dbmod.session_scope(db) as s:
        kinds = list(s.scalars(select(TicketMessage.visibility).where(
            TicketMessage.ticket_id == tid).order_by(TicketMessage.id)))
    assert kinds == ["public", "internal", "public"]
    # an admin sees the churn risk
    admin, _, _ = agent(app, db, "admin", "root@example.com", "Rita Admin")
    churn = re.search(r'data-field="churn_risk">(.*?)</dd>', admin.get(
        f"/service/tickets/{tid}").text, re.S)
    assert churn is not None and "70 %" in churn.group(1)


def _version(db: str, tid: int) -> int:
    with dbmod.session_scope(db) as s:
        return int(s.get(Ticket, tid).version)


def test_reply_form_refuses_stale_version_and_empty_body(db, app):
    seed_policy(db)
    me, my_id, csrf = agent(app, db, "support", "theo@example.com", "Theo Agent")
    tid = ticket(db, subject="Stale", assignee=my_id)
    stale = me.post(f"/service/tickets/{tid}/reply", data={
        "csrf_token": csrf, "version": str(_version(db, tid) - 1), "kind": "public",
        "body_text": "Kept text"})
    assert stale.status_code == 409 and "Someone else changed this ticket" in stale.text
    assert "Kept text" in stale.text  # the agent's words are not lost
    empty = me.post(f"/service/tickets/{tid}/reply", data={
        "csrf_token": csrf, "version": str(_version(db, tid)), "kind": "public",
        "body_text": ""})
    assert empty.status_code == 422 and 'id="err-body_text"' in empty.text
    odd = me.post(f"/service/tickets/{tid}/reply", data={
        "csrf_token": csrf, "version": "²", "kind": "public", "body_text": "x"})
    assert odd.status_code == 422  # a digit that is not ASCII is refused, not a crash
    forged = me.post(f"/service/tickets/{tid}/reply", data={
        "csrf_token": "forged", "version": "1", "body_text": "x"})
    assert forged.status_code == 403
    with dbmod.session_scope(db) as s:
        assert s.scalar(select(TicketMessage.id).where(
            TicketMessage.ticket_id == tid, TicketMessage.direction == "outbound")) is None


def test_properties_form_updates_and_escalates(db, app):
    seed_policy(db)
    me, my_id, csrf = agent(app, db, "support", "theo@example.com", "Theo Agent")
    tid = ticket(db, subject="Props", assignee=my_id)
    r = me.post(f"/service/tickets/{tid}/properties", data={
        "csrf_token": csrf, "version": str(_version(db, tid)), "status": "open",
        "priority": "high", "category": "billing", "tags": "refund, VIP"},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    with dbmod.session_scope(db) as s:
        t = s.get(Ticket, tid)
        assert (t.status, t.priority, t.category, t.tags) == ("open", "high", "billing",
                                                              ["refund", "vip"])
    bad = me.post(f"/service/tickets/{tid}/properties", data={
        "csrf_token": csrf, "version": str(_version(db, tid)), "status": "open",
        "priority": "high", "category": "Not Valid!", "tags": ""})
    assert bad.status_code == 422 and "Not saved" in bad.text
    stale = me.post(f"/service/tickets/{tid}/properties", data={
        "csrf_token": csrf, "version": "1", "status": "solved", "priority": "low"})
    assert stale.status_code == 409
    r = me.post(f"/service/tickets/{tid}/escalate", data={
        "csrf_token": csrf, "reason": "Customer threatens to leave"}, follow_redirects=False)
    assert r.status_code == 303
    with dbmod.session_scope(db) as s:
        t = s.get(Ticket, tid)
        assert t.escalation_level == 1 and t.status == "open"
    assert "Escalated (level 1)" in me.get(f"/service/tickets/{tid}").text


def test_canned_reply_picker_inserts_personalised_text(db, app):
    seed_policy(db)
    me, my_id, csrf = agent(app, db, "support", "theo@example.com", "Theo Agent")
    tid = ticket(db, subject="Kettle", assignee=my_id)
    with dbmod.session_scope(db) as s:
        from accord.access.policy import SYSTEM

        rid = canned.create_reply(s, SYSTEM, CannedReplyCreate(
            title="Apology", body="Hi {{ customer.first_name }}, sorry about "
            "{{ ticket.reference }}. {{ agent.first_name }}")).id
    page = me.get(f"/service/tickets/{tid}")
    assert f'<option value="{rid}">Apology</option>' in page.text
    r = me.post(f"/service/tickets/{tid}/canned", data={"canned_id": str(rid),
                                                       "body_text": "Hello."},
                headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert r.status_code == 200
    assert f"Hello.\n\nHi Ann, sorry about T-{tid}. Theo</textarea>" in r.text
    missing = me.post(f"/service/tickets/{tid}/canned", data={"canned_id": "999"},
                      headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert missing.status_code == 422 and "does not exist" in missing.text


def test_collision_banner_shows_the_other_agent(db, app):
    seed_policy(db)
    theo, theo_id, theo_csrf = agent(app, db, "support", "theo@example.com", "Theo Agent")
    una, _, una_csrf = agent(app, db, "support", "una@example.com", "Una Other")
    tid = ticket(db, subject="Shared", assignee=theo_id)
    url = f"/service/tickets/{tid}/presence"
    first = theo.post(url, headers={"X-CSRF-Token": theo_csrf, "HX-Request": "true"})
    assert first.status_code == 200 and "also" not in first.text
    seen = una.post(url, headers={"X-CSRF-Token": una_csrf, "HX-Request": "true"})
    assert "<strong>Theo Agent</strong> is also viewing" in seen.text
    theo.post(url, data={"body_text": "Dear Ann"}, headers={"X-CSRF-Token": theo_csrf})
    replying = una.post(url, headers={"X-CSRF-Token": una_csrf})
    assert "<strong>Theo Agent</strong> is also replying" in replying.text
    back = theo.post(url, headers={"X-CSRF-Token": theo_csrf})
    assert "<strong>Una Other</strong> is also viewing" in back.text
    assert una.post("/service/tickets/999999/presence",
                    headers={"X-CSRF-Token": una_csrf}).status_code == 404


def test_collision_banner_is_a_quiet_live_region(db, app):
    """Review fix: the banner lives in a persistent live region and an unchanged banner is not
    re-sent (204, which HTMX does not swap), so screen readers do not repeat it every poll."""
    seed_policy(db)
    theo, theo_id, theo_csrf = agent(app, db, "support", "theo@example.com", "Theo Agent")
    una, _, una_csrf = agent(app, db, "support", "una@example.com", "Una Other")
    tid = ticket(db, subject="Shared", assignee=theo_id)
    page = theo.get(f"/service/tickets/{tid}")
    assert '<div id="presence" role="status" aria-live="polite"' in page.text
    url = f"/service/tickets/{tid}/presence"
    theo_hx = {"X-CSRF-Token": theo_csrf, "HX-Request": "true"}
    una.post(url, headers={"X-CSRF-Token": una_csrf})
    first = theo.post(url, headers=theo_hx)
    assert first.status_code == 200 and "Una Other" in first.text
    assert 'role="status"' not in first.text  # the region is the page's container
    seen = first.text.split('name="seen" value="', 1)[1].split('"', 1)[0]
    same = theo.post(url, data={"seen": seen}, headers=theo_hx)
    assert same.status_code == 204 and same.text == ""
    una.post(url, data={"body_text": "Dear Ann"}, headers={"X-CSRF-Token": una_csrf})
    changed = theo.post(url, data={"seen": seen}, headers=theo_hx)
    assert changed.status_code == 200 and "is also replying" in changed.text
    assert "Check before you send" in changed.text


def test_new_ticket_form_logs_a_phone_call(db, app):
    seed_policy(db)
    me, _, csrf = agent(app, db, "support", "theo@example.com", "Theo Agent")
    assert "Log a phone call" in me.get("/service/tickets/new").text
    missing = me.post("/service/tickets", data={"csrf_token": csrf, "subject": "Call",
                                                "body_text": "Rang about invoice"})
    assert missing.status_code == 422 and 'id="err-requester_email"' in missing.text
    r = me.post("/service/tickets", data={
        "csrf_token": csrf, "channel": "phone", "subject": "Invoice question",
        "body_text": "Customer rang about the invoice.", "requester_email": "zoe@example.com",
        "requester_name": "Zoe Zed", "priority": "normal", "call_direction": "inbound",
        "call_duration": "4"}, follow_redirects=False)
    assert r.status_code == 303
    tid = int(re.search(r"/service/tickets/(\d+)", r.headers["location"]).group(1))
    with dbmod.session_scope(db) as s:
        t = s.get(Ticket, tid)
        first = s.scalar(select(TicketMessage).where(TicketMessage.ticket_id == tid))
        assert t.channel == "phone" and first.direction == "outbound" and first.sentiment is None


def test_360_page_shows_sentiment_trend_and_tickets(db, app):
    me, my_id, _ = agent(app, db, "support", "theo@example.com", "Theo Agent")
    tid = ticket(db, subject="Angry", assignee=my_id,
                 body="This is awful and I am very angry.")
    with dbmod.session_scope(db) as s:
        t = s.get(Ticket, tid)
        customer_id = t.customer_id
        score = s.scalar(select(TicketMessage.sentiment).where(TicketMessage.ticket_id == tid))
    page = me.get(f"/customers/{customer_id}")
    assert page.status_code == 200
    assert 'id="service-panel"' in page.text and "Sentiment trend" in page.text
    month = utcnow().date().replace(day=1).isoformat()
    row = re.search(rf'data-month="{month}">(.*?)</tr>', page.text, re.S)
    assert row is not None and f"{score:+.2f}" in row.group(1) and ">1</td>" in row.group(1)
    assert f"/service/tickets/{tid}" in page.text and 'class="spark-line"' not in page.text
    # a role without tickets read sees no panel
    mkt, _, _ = agent(app, db, "marketing", "m@example.com", "Mia Marketing")
    assert 'id="service-panel"' not in mkt.get(f"/customers/{customer_id}").text


def test_queue_statements_do_not_grow_with_the_page(db, app):
    """No per-row look-ups: the same statements for two tickets as for six (the benchmark
    measures this page at a million tickets)."""
    from sqlalchemy import event

    seed_policy(db)
    me, my_id, _ = agent(app, db, "support", "theo@example.com", "Theo Agent")
    engine = dbmod.get_engine(db)

    def statements_for_page() -> list[str]:
        seen: list[str] = []

        def record(conn, cursor, statement, *args):  # noqa: ANN001 - SQLAlchemy's signature
            if statement.lstrip().upper().startswith("SELECT") and "audit" not in statement:
                seen.append(statement)

        event.listen(engine, "before_cursor_execute", record)
        try:
            assert me.get("/service/queue").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", record)
        return seen

    for n in range(2):
        ticket(db, subject=f"First {n}", assignee=my_id, email=f"c{n}@example.com")
    few = statements_for_page()
    for n in range(2, 6):
        ticket(db, subject=f"More {n}", assignee=my_id, email=f"c{n}@example.com")
    many = statements_for_page()
    assert len(many) == len(few) <= 6, many
    assert sum("FROM tickets" in s for s in many) == 1
    assert sum("FROM customers" in s for s in many) == 1


def test_ticket_page_names_the_requester_and_keeps_the_app_version(db, app):
    """The page's own record version never replaces the app's version in the layout."""
    from accord import __version__

    seed_policy(db)
    client, uid, _ = agent(app, db, "support", "sam@example.com", "Sam Support")
    tid = ticket(db, subject="Parcel lost", assignee=uid, email="Ann@Example.com")
    with dbmod.session_scope(db) as s:
        tickets.add_customer_message(s, s.get(Ticket, tid), body_text="From my other address",
                                     channel="email", from_address="ann.work@example.com")
    html = client.get(f"/service/tickets/{tid}").text
    assert f"Accord {__version__}</span>" in html
    assert f"workspace.css?v={__version__}" in html
    assert "<strong>Ann Archer</strong>" in html  # the requester, by name
    assert "<strong>ann.work@example.com</strong>" in html  # someone else, by address
