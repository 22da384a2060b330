"""Forecasts: hand-computed weighted pipeline, categories, currencies, history, backtest,
metrics and record scopes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from accord.access.policy import Principal
from accord.core.errors import Forbidden, ValidationProblem
from accord.models import Team, User
from accord.models.sales import Deal, DealStageChange, Pipeline, PipelineStage
from accord.sales import forecast as fc

Q4 = date(2026, 10, 1)
AS_OF = datetime(2026, 10, 1, tzinfo=UTC)


def at(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 9, 0, tzinfo=UTC)


@dataclass
class World:
    session: Session
    pipeline: Pipeline
    stages: dict[str, PipelineStage]
    owner: User
    team: Team

    def deal(self, amount: str, stage: str, *, currency: str = "EUR",
             close: date | None = None, category: str = "pipeline",
             probability: int | None = None, path: list[tuple[str, datetime]] | None = None,
             owner: User | None = None, team: Team | None = None,
             created: datetime | None = None) -> Deal:
        """A deal whose stage history is `path` ((stage, entered at), ...; the last is current)."""
        path = path or [(stage, created or AS_OF - timedelta(days=1))]
        last_stage, last_at = path[-1]
        assert last_stage == stage
        status = self.stages[stage].outcome
        owner = owner or self.owner
        deal = Deal(
            name=f"deal {amount}", pipeline_id=self.pipeline.id,
            stage_id=self.stages[stage].id, status=status, amount=Decimal(amount),
            currency=currency, probability=probability, expected_close_date=close,
            forecast_category="closed" if status != "open" else category,
            closed_at=last_at if status != "open" else None, stage_entered_at=last_at,
            owner_id=owner.id, team_id=(team or self.team).id, created_at=path[0][1],
        )
        self.session.add(deal)
        self.session.flush()
        prev = None
        for name, when in path:
            self.session.add(DealStageChange(
                deal_id=deal.id, from_stage_id=prev, to_stage_id=self.stages[name].id,
                amount=Decimal(amount), changed_at=when))
            prev = self.stages[name].id
        self.session.flush()
        return deal

    def user(self, role: str, team: Team | None, name: str) -> User:
        user = User(email=f"{name}@example.com", full_name=name.title(), password_hash="x",
                    role=role, team_id=team.id if team else None)
        self.session.add(user)
        self.session.flush()
        return user


def make_world(session: Session, team_name: str = "North",
               owner_email: str = "owner@example.com") -> World:
    team = Team(name=team_name)
    session.add(team)
    session.flush()
    owner = User(email=owner_email, full_name="Olga Owner", password_hash="x",
                 role="sales", team_id=team.id)
    pipeline = Pipeline(name="New business")
    session.add_all([owner, pipeline])
    session.flush()
    stages = {}
    for pos, (name, prob, outcome) in enumerate([
        ("Qualify", 10, "open"), ("Propose", 50, "open"), ("Negotiate", 80, "open"),
        ("Won", 100, "won"), ("Lost", 0, "lost"),
    ]):
        stage = PipelineStage(pipeline_id=pipeline.id, name=name, position=pos,
                              probability=prob, outcome=outcome)
        session.add(stage)
        stages[name] = stage
    session.flush()
    return World(session, pipeline, stages, owner, team)


ADMIN = Principal(user_id=None, email="admin@example.com", role="admin")


def _fig(bucket: Any, currency: str) -> Any:
    found = [c for c in bucket.currencies if c.currency == currency]
    assert len(found) == 1, (bucket.label, currency, bucket.currencies)
    return found[0]


def _seed_q4(w: World) -> None:
    w.deal("1000", "Qualify", close=date(2026, 10, 15))  # 10 % → 100
    w.deal("2000", "Propose", close=date(2026, 10, 20), category="best_case",
           probability=25)  # the deal's own 25 % → 500
    w.deal("4000", "Negotiate", close=date(2026, 11, 5), category="commit")  # 80 % → 3200
    w.deal("5000", "Propose", currency="USD", close=date(2026, 11, 10),
           category="commit")  # 50 % → 2500 USD
    w.deal("9999", "Negotiate", close=date(2026, 12, 1), category="omitted")  # left out
    w.deal("7000", "Qualify", close=date(2027, 1, 10))  # after the quarter
    w.deal("3000", "Propose")  # no expected close date: not in the weighted months
    w.deal("1500", "Won", path=[("Qualify", at(2026, 9, 1)), ("Won", at(2026, 10, 3))])
    w.deal("800", "Won", currency="USD",
           path=[("Qualify", at(2026, 9, 1)), ("Won", at(2026, 12, 15))])
    w.deal("600", "Won", path=[("Qualify", at(2026, 8, 1)), ("Won", at(2026, 9, 30))])
    w.deal("900", "Lost", path=[("Qualify", at(2026, 9, 1)), ("Lost", at(2026, 10, 10))])


def test_weighted_pipeline_and_categories_by_hand(session: Session) -> None:
    w = make_world(session)
    _seed_q4(w)
    out = fc.forecast(session, ADMIN, Q4, period="quarter", as_of=AS_OF)
    assert (out.start, out.end, out.scope) == (Q4, date(2027, 1, 1), "all")
    assert [m.label for m in out.months] == ["2026-10", "2026-11", "2026-12"]
    assert [q.label for q in out.quarters] == ["2026-Q4"]

    oct_eur = _fig(out.months[0], "EUR")
    assert oct_eur.open_count == 2
    assert oct_eur.pipeline_amount == Decimal("3000.00")
    assert oct_eur.weighted_amount == Decimal("600.00")
    assert (oct_eur.won_count, oct_eur.won_amount) == (1, Decimal("1500.00"))
    assert oct_eur.commit_amount == Decimal("1500.00")
    assert oct_eur.best_case_amount == Decimal("3500.00")
    assert [c.currency for c in out.months[0].currencies] == ["EUR"]

    nov_eur, nov_usd = _fig(out.months[1], "EUR"), _fig(out.months[1], "USD")
    assert (nov_eur.weighted_amount, nov_eur.commit_amount) == (Decimal("3200.00"),
                                                                Decimal("4000.00"))
    assert (nov_usd.weighted_amount, nov_usd.commit_amount, nov_usd.best_case_amount) == (
        Decimal("2500.00"), Decimal("5000.00"), Decimal("5000.00"))

    dec = out.months[2]
    assert [c.currency for c in dec.currencies] == ["USD"]  # the omitted EUR deal is not there
    assert _fig(dec, "USD").won_amount == Decimal("800.00")
    assert _fig(dec, "USD").commit_amount == Decimal("800.00")

    q_eur, q_usd = _fig(out.quarters[0], "EUR"), _fig(out.quarters[0], "USD")
    assert (q_eur.open_count, q_eur.pipeline_amount, q_eur.weighted_amount) == (
        3, Decimal("7000.00"), Decimal("3800.00"))
    assert (q_eur.won_amount, q_eur.commit_amount, q_eur.best_case_amount) == (
        Decimal("1500.00"), Decimal("5500.00"), Decimal("7500.00"))
    assert (q_usd.weighted_amount, q_usd.won_amount, q_usd.commit_amount) == (
        Decimal("2500.00"), Decimal("800.00"), Decimal("5800.00"))
    assert out.total == out.quarters[0].currencies

    # by owner and team: one owner, one team, per currency
    assert [(b.id, b.name, b.currency, b.weighted_amount) for b in out.by_owner] == [
        (w.owner.id, "Olga Owner", "EUR", Decimal("3800.00")),
        (w.owner.id, "Olga Owner", "USD", Decimal("2500.00")),
    ]
    assert [(b.name, b.currency, b.commit_amount, b.best_case_amount) for b in out.by_team] == [
        ("North", "EUR", Decimal("4000.00"), Decimal("6000.00")),
        ("North", "USD", Decimal("5000.00"), Decimal("5000.00")),
    ]


def test_filters_and_a_year_split_into_quarters(session: Session) -> None:
    w = make_world(session)
    _seed_q4(w)
    out = fc.forecast(session, ADMIN, date(2026, 7, 1), period="year", as_of=AS_OF)
    assert [q.label for q in out.quarters] == ["2026-Q3", "2026-Q4", "2027-Q1", "2027-Q2"]
    q3, q1 = out.quarters[0], out.quarters[2]
    assert _fig(q3, "EUR").won_amount == Decimal("600.00")  # won on 30 September
    assert _fig(q1, "EUR").pipeline_amount == Decimal("7000.00")
    assert len(out.months) == 12
    other = fc.forecast(session, ADMIN, Q4, pipeline_id=w.pipeline.id + 99, as_of=AS_OF)
    assert other.total == [] and other.by_owner == []
    nobody = fc.forecast(session, ADMIN, Q4, owner_id=w.owner.id + 99, as_of=AS_OF)
    assert nobody.total == []


def test_period_validation() -> None:
    with pytest.raises(ValidationProblem) as err:
        fc.period_bounds(date(2026, 10, 2), "quarter")
    assert err.value.field == "start"
    with pytest.raises(ValidationProblem):
        fc.period_bounds(Q4, "decade")
    assert fc.period_bounds(None, "quarter", today=date(2026, 11, 23)) == (
        date(2026, 10, 1), date(2027, 1, 1))
    assert fc.period_bounds(date(2026, 12, 1), "month") == (date(2026, 12, 1), date(2027, 1, 1))


# --- the historical model -----------------------------------------------------------------------


def _history(w: World) -> None:
    day0 = at(2026, 1, 1)

    def d(n: int) -> datetime:
        return day0 + timedelta(days=n)

    w.deal("100", "Won", path=[("Qualify", d(0)), ("Propose", d(10)), ("Won", d(30))])
    w.deal("100", "Won", path=[("Qualify", d(0)), ("Propose", d(5)), ("Negotiate", d(20)),
                               ("Won", d(40))])
    w.deal("100", "Lost", path=[("Qualify", d(0)), ("Lost", d(15))])
    w.deal("100", "Lost", path=[("Qualify", d(0)), ("Propose", d(10)), ("Lost", d(50))])


def test_stage_conversion_rates_and_durations_by_hand(session: Session) -> None:
    w = make_world(session)
    _history(w)
    flt = fc.DealFilter.of(ADMIN)
    model = fc.stage_model(fc.closed_history(session, flt), list(w.stages.values()))
    q, p, n = (w.stages[s].id for s in ("Qualify", "Propose", "Negotiate"))
    assert model.closed_deals == 4
    assert (model.reached[q], model.won[q], model.rates[q]) == (4, 2, 0.5)
    assert model.days[q] == 35.0  # won after 30 and 40 days
    assert (model.reached[p], model.won[p]) == (3, 2)
    assert model.rates[p] == pytest.approx(2 / 3)
    assert model.days[p] == 27.5  # 20 and 35 days
    assert (model.rates[n], model.days[n]) == (1.0, 20.0)
    assert set(model.rates) == {q, p, n}  # won and lost stages are not forecast stages
    # the forecast's fast path (day differences computed by the database) agrees
    fast = fc.stage_model_of_durations(fc.closed_durations(session, flt),
                                       list(w.stages.values()))
    assert fast.rates == model.rates and fast.reached == model.reached
    assert fast.days == pytest.approx(model.days)


def test_stages_without_history_fall_back_to_defaults(session: Session) -> None:
    w = make_world(session)
    w.deal("100", "Won", path=[("Qualify", at(2026, 1, 1)), ("Won", at(2026, 1, 11))])
    model = fc.stage_model(fc.closed_history(session, fc.DealFilter.of(ADMIN)),
                           list(w.stages.values()))
    neg = w.stages["Negotiate"].id
    assert model.basis[neg] == "stage_default"
    assert model.rates[neg] == 0.8
    assert model.days[neg] == 10.0  # the median over every stage with history
    empty = fc.stage_model([], list(w.stages.values()))
    assert empty.days[neg] == fc.DEFAULT_DAYS_TO_CLOSE


def test_historical_forecast_places_open_deals_by_stage(session: Session) -> None:
    w = make_world(session)
    _history(w)
    # Negotiate (rate 1, 20 days) entered 26 Sep → 16 Oct
    w.deal("1000", "Negotiate", path=[("Negotiate", AS_OF - timedelta(days=5))])
    # Qualify (rate 0.5, 35 days) entered 1 Oct → 5 Nov
    w.deal("2000", "Qualify", path=[("Qualify", AS_OF)])
    # Propose (rate 2/3, 27.5 days) entered in June: overdue → predicted as of now (October)
    w.deal("300", "Propose", path=[("Propose", at(2026, 6, 1))], currency="EUR")
    # Qualify entered 1 Dec → 5 Jan: after the quarter
    w.deal("5000", "Qualify", path=[("Qualify", at(2026, 12, 1))])
    out = fc.forecast(session, ADMIN, Q4, as_of=AS_OF)
    oct_, nov, dec = (_fig(m, "EUR") if m.currencies else None for m in out.months)
    assert (oct_.historical_count, oct_.historical_amount) == (2, Decimal("1200.00"))
    assert (nov.historical_count, nov.historical_amount) == (1, Decimal("1000.00"))
    assert dec is None
    stats = {s.stage_name: s for s in out.historical.stages}
    assert out.historical.closed_deals == 4
    assert stats["Propose"].conversion_rate == pytest.approx(0.6667)
    assert stats["Qualify"].median_days_to_close == 35.0
    assert stats["Negotiate"].basis == "history"


def test_historical_forecast_of_a_future_quarter_skips_earlier_predictions(
    session: Session,
) -> None:
    w = make_world(session)
    _history(w)
    w.deal("1000", "Negotiate", path=[("Negotiate", AS_OF)])  # → 21 Oct: before Q1
    w.deal("2000", "Negotiate", path=[("Negotiate", at(2026, 12, 20))])  # → 9 Jan 2027
    out = fc.forecast(session, ADMIN, date(2027, 1, 1), as_of=AS_OF)
    jan = _fig(out.months[0], "EUR")
    assert (jan.historical_count, jan.historical_amount) == (1, Decimal("2000.00"))
    assert _fig(out.quarters[0], "EUR").historical_amount == Decimal("2000.00")


# --- backtest -----------------------------------------------------------------------------------


def test_backtest_on_synthetic_quarters(session: Session) -> None:
    w = make_world(session)
    # learnt before Q2: one win after 30 days, one loss → Qualify 50 %, 30 days
    w.deal("100", "Won", path=[("Qualify", at(2026, 1, 5)), ("Won", at(2026, 2, 4))])
    w.deal("100", "Lost", path=[("Qualify", at(2026, 1, 5)), ("Lost", at(2026, 2, 10))])
    # open on 1 April: predicted to close 19 and 24 April → 0.5 × (1000 + 3000) = 2000
    w.deal("1000", "Won", path=[("Qualify", at(2026, 3, 20)), ("Won", at(2026, 5, 1))])
    w.deal("3000", "Lost", path=[("Qualify", at(2026, 3, 25)), ("Lost", at(2026, 5, 15))])
    # created during Q2: in the quarter's total won, not in the comparison
    w.deal("700", "Won", path=[("Qualify", at(2026, 4, 10)), ("Won", at(2026, 5, 20))])
    # Q3: learnt from 5 closed deals → Qualify 3/5 = 60 %, median(30, 42, 40) = 40 days;
    # open on 1 July, entered 15 June → 25 July: 0.6 × 2000 = 1200; actual 2000
    w.deal("2000", "Won", path=[("Qualify", at(2026, 6, 15)), ("Won", at(2026, 8, 1))])
    # still open today, in another currency: predicted in Q3 but never won
    w.deal("500", "Qualify", currency="USD", path=[("Qualify", at(2026, 6, 20))])

    out = fc.backtest(session, ADMIN, quarters=2, as_of=datetime(2026, 10, 15, tzinfo=UTC))
    rows = {(r.quarter, r.currency): r for r in out.quarters}
    q2 = rows[("2026-Q2", "EUR")]
    assert (q2.open_at_start, q2.predicted_amount, q2.actual_amount) == (
        2, Decimal("2000.00"), Decimal("1000.00"))
    assert q2.actual_total_won == Decimal("1700.00")
    assert q2.error_pct == 100.0
    q3 = rows[("2026-Q3", "EUR")]
    assert (q3.open_at_start, q3.predicted_amount, q3.actual_amount) == (
        1, Decimal("1200.00"), Decimal("2000.00"))
    assert q3.error_pct == -40.0
    usd = rows[("2026-Q3", "USD")]
    assert usd.actual_amount == 0 and usd.error_pct is None
    assert usd.predicted_amount == Decimal("300.00")  # 0.6 × 500, 20 June + 40 days
    assert out.mape == {"EUR": 70.0, "USD": None}
    assert ("2026-Q2", "USD") not in rows  # the USD deal did not exist on 1 April

    with pytest.raises(ValidationProblem):
        fc.backtest(session, ADMIN, quarters=0)


# --- metrics ------------------------------------------------------------------------------------


def test_metrics_formulas_by_hand(session: Session) -> None:
    w = make_world(session)
    w.deal("1000", "Won", path=[("Qualify", at(2026, 1, 1)), ("Won", at(2026, 1, 11))])
    w.deal("3000", "Won", path=[("Qualify", at(2026, 1, 1)), ("Won", at(2026, 1, 31))])
    w.deal("2000", "Lost", path=[("Qualify", at(2026, 1, 1)), ("Lost", at(2026, 1, 20))])
    w.deal("500", "Won", currency="USD",
           path=[("Qualify", at(2026, 2, 1)), ("Won", at(2026, 2, 21))])
    w.deal("500", "Lost", currency="USD",
           path=[("Qualify", at(2026, 2, 1)), ("Lost", at(2026, 2, 5))])
    for _ in range(4):
        w.deal("10", "Qualify")
    w.deal("10", "Propose", currency="USD")
    w.deal("10", "Propose", category="omitted")
    # closed before the window: not counted
    w.deal("99999", "Won", path=[("Qualify", at(2025, 1, 1)), ("Won", at(2025, 6, 1))])

    m = fc.metrics(session, ADMIN, date(2026, 1, 1), date(2027, 1, 1))
    assert (m.won_count, m.lost_count, m.win_rate) == (3, 2, 0.6)
    assert m.median_cycle_days == 20.0
    eur = next(c for c in m.currencies if c.currency == "EUR")
    assert (eur.won_amount, eur.lost_amount) == (Decimal("4000.00"), Decimal("2000.00"))
    assert eur.win_rate_amount == pytest.approx(4000 / 6000)
    assert eur.average_deal_size == Decimal("2000.00")
    assert eur.open_count == 4
    assert eur.velocity_per_day == Decimal("240.00")  # 4 × 0.6 × 2000 / 20
    assert eur.velocity_per_month == Decimal("7305.00")  # × 365.25 / 12
    usd = next(c for c in m.currencies if c.currency == "USD")
    assert (usd.win_rate_amount, usd.average_deal_size, usd.open_count) == (
        0.5, Decimal("500.00"), 1)
    assert usd.velocity_per_day == Decimal("15.00")
    assert usd.velocity_per_month == Decimal("456.56")
    all_time = fc.metrics(session, ADMIN)
    assert all_time.won_count == 4


# --- access -------------------------------------------------------------------------------------


def test_forecast_sums_only_readable_deals(session: Session) -> None:
    w = make_world(session)
    south = Team(name="South")
    session.add(south)
    session.flush()
    seller = w.owner  # sales, team North
    mate = w.user("sales", w.team, "mate")
    other = w.user("sales", south, "other")
    manager = w.user("manager", w.team, "manny")
    close = date(2026, 10, 20)
    w.deal("100", "Negotiate", close=close)  # seller's own
    w.deal("200", "Negotiate", close=close, owner=mate)  # same team
    w.deal("400", "Negotiate", close=close, owner=other, team=south)  # another team
    w.deal("800", "Negotiate", close=close, owner=other, team=w.team)  # South user, North deal

    def pipeline(user: User | None, role: str = "admin") -> Decimal:
        principal = (Principal(user_id=user.id, email=user.email, role=user.role,
                               team_id=user.team_id) if user else
                     Principal(user_id=None, email="a@example.com", role=role))
        out = fc.forecast(session, principal, Q4, as_of=AS_OF)
        return sum((c.pipeline_amount for c in out.total), Decimal("0"))

    assert pipeline(seller) == Decimal("1100.00")  # own + team North, not South's
    assert pipeline(manager) == Decimal("1100.00")
    assert pipeline(other) == Decimal("1200.00")  # own deals (either team) + South team
    assert pipeline(None) == Decimal("1500.00")
    seller_p = Principal(user_id=seller.id, email=seller.email, role="sales",
                         team_id=w.team.id)
    assert fc.forecast(session, seller_p, Q4, as_of=AS_OF).scope == "team"
    # the filters narrow within the scope, never widen it
    narrowed = fc.forecast(session, seller_p, Q4, team_id=south.id, as_of=AS_OF)
    assert narrowed.total == []
    # the historical model and the metrics see the same deals
    w.deal("5000", "Won", owner=other, team=south,
           path=[("Qualify", at(2026, 9, 1)), ("Won", at(2026, 9, 20))])
    assert fc.forecast(session, seller_p, Q4, as_of=AS_OF).historical.closed_deals == 0
    assert fc.metrics(session, seller_p).won_count == 0
    assert fc.metrics(session, Principal(user_id=other.id, email=other.email, role="sales",
                                         team_id=south.id)).won_count == 1
    assert fc.backtest(session, seller_p, as_of=AS_OF).quarters == []


def test_roles_without_deal_read_are_refused(session: Session) -> None:
    nobody = Principal(user_id=1, email="x@example.com", role="no-such-role")
    with pytest.raises(Forbidden):
        fc.forecast(session, nobody, Q4)
    with pytest.raises(Forbidden):
        fc.metrics(session, nobody)
    token = Principal(user_id=1, email="x@example.com", role="admin",
                      scopes=frozenset({"leads:read"}))
    with pytest.raises(Forbidden):
        fc.backtest(session, token)
