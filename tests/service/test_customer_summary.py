"""The ticket page's customer summary (field rules for scores, deals the viewer may read,
recent orders, previous tickets) and the monthly sentiment trend (hand-computed averages)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from accord.models import CustomerScore
from accord.models.commerce import Order
from accord.models.service import TicketMessage
from accord.sales import deals
from accord.sales.deals_schemas import DealCreate
from accord.sales.pipelines import ensure_default_pipelines
from accord.service import customer_summary, tickets
from tests.web.seed import make_user


def _ticket(session, subject: str = "Kettle", email: str = "ann@example.com"):
    return tickets.create_ticket(session, tickets.system_principal("email"), subject=subject,
                                 channel="email", body_text="It broke.",
                                 requester_email=email, requester_name="Ann Archer")


def _message(session, ticket, at: datetime, sentiment: float | None,
             direction: str = "inbound") -> None:
    session.add(TicketMessage(ticket_id=ticket.id, customer_id=ticket.customer_id,
                              direction=direction, channel="email", body_text="x",
                              sentiment=sentiment, created_at=at))


def test_sentiment_trend_monthly_averages(session):
    t = _ticket(session)
    other = _ticket(session, email="bob@example.com")
    session.query(TicketMessage).delete()  # only the hand-placed messages below
    z = lambda *a: datetime(*a, tzinfo=UTC)  # noqa: E731
    _message(session, t, z(2026, 3, 31, 12), 0.9)  # before the window
    _message(session, t, z(2026, 4, 2, 9), 0.5)
    _message(session, t, z(2026, 4, 20, 9), -0.1)
    _message(session, t, z(2026, 4, 21, 9), None)  # not scored: ignored
    _message(session, t, z(2026, 5, 31, 23, 30), 0.3)  # late on the last day: still May
    _message(session, t, z(2026, 6, 1, 0, 10), -0.6)
    _message(session, t, z(2026, 6, 1, 0, 20), -0.2)
    _message(session, t, z(2026, 6, 2, 0, 0), 0.9, direction="outbound")  # agent: ignored
    _message(session, other, z(2026, 6, 3, 0, 0), 0.8)  # another customer
    session.flush()
    trend = customer_summary.sentiment_trend(session, t.customer_id, months=4,
                                             now=z(2026, 6, 15))
    assert [(m.month, m.average, m.count) for m in trend] == [
        (date(2026, 3, 1), 0.9, 1), (date(2026, 4, 1), 0.2, 2), (date(2026, 5, 1), 0.3, 1),
        (date(2026, 6, 1), -0.4, 2)]
    three = customer_summary.sentiment_trend(session, t.customer_id, months=3,
                                             now=z(2026, 6, 15))
    assert [(m.month, m.average, m.count) for m in three] == [
        (date(2026, 4, 1), 0.2, 2), (date(2026, 5, 1), 0.3, 1), (date(2026, 6, 1), -0.4, 2)]
    assert [m.mood for m in three] == ["positive", "positive", "negative"]
    assert [m.label for m in three] == ["Apr 2026", "May 2026", "Jun 2026"]
    spark = customer_summary.sparkline(three, width=200, height=40)
    assert spark["points"] == "0.0,16.0 100.0,14.0 200.0,28.0"  # (1 - (avg+1)/2) * 40
    # across a year boundary, with empty months
    jan = customer_summary.sentiment_trend(session, t.customer_id, months=2,
                                           now=z(2027, 1, 5))
    assert [(m.month, m.count) for m in jan] == [(date(2026, 12, 1), 0), (date(2027, 1, 1), 0)]


def test_summary_follows_the_viewers_rights(session):
    t = _ticket(session)
    earlier = _ticket(session, subject="Earlier")
    cid = t.customer_id
    session.add(CustomerScore(customer_id=cid, value_tier="gold", churn_risk=0.7,
                              at_risk_valuable=True, run_id="t"))
    for n, day in (("O-1", 1), ("O-2", 3), ("O-3", 2)):
        session.add(Order(customer_id=cid, number=n, status="paid", currency="EUR",
                          total=Decimal("10.00"), ordered_at=datetime(2026, 1, day, tzinfo=UTC)))
    seller = make_user(session, "sales", "sam@example.com", "Sam Sales", team="North")
    outsider = make_user(session, "sales", "sue@example.com", "Sue Sales", team="South")
    support = make_user(session, "support", "theo@example.com", "Theo Agent")
    admin = make_user(session, "admin", "root@example.com", "Rita Admin")
    from accord.models import Customer

    session.get(Customer, cid).team_id = seller.team_id  # the North team's customer
    session.flush()
    pipe = ensure_default_pipelines(session)[0]
    open_deal = deals.create_deal(session, seller, DealCreate(
        name="Upgrade", pipeline_id=pipe.id, currency="EUR", amount="500.00", customer_id=cid))
    lost = deals.create_deal(session, seller, DealCreate(
        name="Old deal", pipeline_id=pipe.id, currency="EUR", amount="5.00", customer_id=cid))
    lost.status = "lost"
    session.flush()

    shown = customer_summary.summary(session, support, cid, ticket_id=t.id)
    assert shown is not None
    assert shown["value_tier"] == "gold" and shown["at_risk_valuable"] is True
    assert shown["churn_masked"] is True and shown["churn_risk"] is None  # support: masked
    assert [d["name"] for d in shown["deals"]] == ["Upgrade"] and \
        shown["deals"][0]["id"] == open_deal.id
    assert [o["number"] for o in shown["orders"]] == ["O-2", "O-3", "O-1"]
    assert [p["id"] for p in shown["tickets"]] == [earlier.id]  # not the ticket itself

    full = customer_summary.summary(session, admin, cid, ticket_id=t.id)
    assert full["churn_masked"] is False and full["churn_risk"] == 0.7
    assert full["churn_level"] == "high"

    # a salesperson of another team may not read the customer: no summary at all
    assert customer_summary.summary(session, outsider, cid, ticket_id=t.id) is None
    mine = customer_summary.summary(session, seller, cid, ticket_id=t.id)
    assert mine is not None and mine["churn_risk"] == 0.7 and len(mine["deals"]) == 1
    assert customer_summary.summary(session, support, None) is None
    assert customer_summary.summary(session, support, 999_999) is None


def test_sentiment_trend_counts_only_tickets_the_viewer_may_read(session):
    """Review fix: a team-scoped viewer's trend must not average other teams' conversations."""
    north_ticket = _ticket(session, subject="North")
    south_ticket = _ticket(session, subject="South")
    assert north_ticket.customer_id == south_ticket.customer_id
    seller = make_user(session, "sales", "sam@example.com", "Sam Sales", team="North")
    south = make_user(session, "sales", "sue@example.com", "Sue Sales", team="South")
    admin = make_user(session, "admin", "root@example.com", "Rita Admin")
    north_ticket.team_id, south_ticket.team_id = seller.team_id, south.team_id
    session.query(TicketMessage).delete()
    at = datetime(2026, 6, 2, 9, tzinfo=UTC)
    _message(session, north_ticket, at, -0.5)
    _message(session, south_ticket, at, 0.9)
    session.flush()
    now = datetime(2026, 6, 15, tzinfo=UTC)

    def june(principal):
        trend = customer_summary.sentiment_trend(session, north_ticket.customer_id, months=1,
                                                 now=now, principal=principal)
        return trend[0].average, trend[0].count

    assert june(seller) == (-0.5, 1)  # the North ticket only
    assert june(south) == (0.9, 1)
    assert june(admin) == (0.2, 2)  # "all" scope: both
    assert june(None) == (0.2, 2)  # a caller without a viewer (jobs) sees everything
    panel = customer_summary.panel_360(session, seller, north_ticket.customer_id, months=1)
    assert panel is not None and all(t["id"] != south_ticket.id for t in panel["tickets"])
