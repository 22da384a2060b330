"""Demo sales data: leads with engagement, open and closed deals with stage history, activities.

Written with the same bulk path as the customer base (`BulkWriter`), so the benchmark can build
a million leads and a hundred thousand open deals in minutes. Closed deals walk the pipeline's
stages (each stage passed with a fixed chance, then won or lost), so stage-to-win conversion
rates, stage durations and win rates measured on them are realistic and known.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from accord.core.db import get_engine, session_scope
from accord.demo import catalog
from accord.demo.generator import (
    BulkWriter,
    Generator,
    Progress,
    ProgressFn,
    _quiet,
    _setup,
    default_now,
    finish_tables,
    first_ids,
)
from accord.demo.pools import COUNTRIES
from accord.models import (
    Account,
    AssignmentRule,
    Customer,
    LeadForm,
    Pipeline,
    PipelineStage,
    Team,
)

SALES_COLUMNS: dict[str, tuple[str, ...]] = {
    "leads": (
        "id", "status", "disqualify_reason", "first_name", "last_name", "email",
        "email_normalized", "phone", "phone_e164", "company", "job_title", "industry",
        "employees", "annual_revenue", "country", "preferred_language", "source",
        "source_detail", "budget", "budget_currency", "authority", "need", "timeline",
        "owner_id", "team_id", "assigned_at", "first_touch_due_at", "first_touched_at",
        "last_engaged_at", "fit_score", "engagement_score", "score", "score_factors",
        "customer_id", "converted_at", "created_at", "updated_at", "version"),
    "lead_engagements": ("id", "lead_id", "kind", "occurred_at", "detail"),
    "deals": (
        "id", "name", "pipeline_id", "stage_id", "status", "amount", "currency",
        "expected_close_date", "forecast_category", "competitors", "lost_reason", "closed_at",
        "stage_entered_at", "source", "customer_id", "account_id", "lead_id", "owner_id",
        "team_id", "created_at", "updated_at", "version"),
    "deal_stage_changes": (
        "id", "deal_id", "from_stage_id", "to_stage_id", "amount", "changed_at", "changed_by"),
    "activities": (
        "id", "kind", "subject", "body", "status", "due_at", "remind_at", "done_at",
        "duration_minutes", "direction", "outcome", "owner_id", "team_id", "lead_id", "deal_id",
        "created_at", "updated_at", "version"),
}
SALES_TABLES = tuple(SALES_COLUMNS)

DAY = 86400
LEAD_STATUS_MIX = (("new", 0.18), ("working", 0.20), ("nurturing", 0.15), ("qualified", 0.10),
                   ("disqualified", 0.17), ("converted", 0.20))
LEAD_SOURCES = (("form", 0.40), ("event", 0.25), ("import", 0.20), ("api", 0.10),
                ("manual", 0.05))
ENGAGEMENTS = ("form_submitted", "newsletter_signup", "whitepaper_download",
               "webinar_registered", "demo_requested", "trial_started")
DISQUALIFY = ("no_budget", "no_need", "bad_timing", "competitor", "unreachable")
LOST = ("price", "competitor", "no_decision", "timing", "product_fit")
JOBS = ("Head of Procurement", "Operations Manager", "Purchasing Lead", "Managing Director",
        "Team Lead", "Buyer", "Facilities Manager", "CEO", "Office Manager", "Club Secretary")
GOOD_FIT = frozenset({"Retail", "Sports clubs", "Outdoor education", "Tourism"})
ADVANCE = 0.65  # chance that a deal passes each open stage; after the last it is won at WIN_LAST
WIN_LAST = 0.6
STAGE_DAYS = 12.0  # mean days in a stage


@dataclass(frozen=True)
class SalesSize:
    leads: int
    open_deals: int
    closed_deals: int

    @classmethod
    def for_customers(cls, customers: int) -> SalesSize:
        return cls(leads=max(50, customers // 2), open_deals=max(20, customers // 20),
                   closed_deals=max(40, customers // 10))


@dataclass
class _Stages:
    pipeline_id: int
    open: list[tuple[int, int]]  # (stage id, probability), in order
    won: int
    lost: int


def _pick(rnd: random.Random, mix: tuple[tuple[str, float], ...]) -> str:
    x, acc = rnd.random(), 0.0
    for value, share in mix:
        acc += share
        if x < acc:
            return value
    return mix[-1][0]


def _pipelines(url: str | None) -> dict[str, _Stages]:
    from accord.sales.pipelines import ensure_default_pipelines

    out: dict[str, _Stages] = {}
    with session_scope(url) as session:
        ensure_default_pipelines(session)
        session.flush()
        for pipeline in session.scalars(select(Pipeline).order_by(Pipeline.position)):
            stages = session.scalars(select(PipelineStage).where(
                PipelineStage.pipeline_id == pipeline.id).order_by(PipelineStage.position)).all()
            won = [s.id for s in stages if s.outcome == "won"]
            lost = [s.id for s in stages if s.outcome == "lost"]
            if won and lost and pipeline.kind not in out:
                out[pipeline.kind] = _Stages(
                    pipeline.id, [(s.id, s.probability) for s in stages if s.outcome == "open"],
                    won[0], lost[0])
    return out


class SalesGenerator:
    """Rows for leads, deals and activities, ids continuing after the existing ones."""

    def __init__(self, gen: Generator, stages: dict[str, _Stages],
                 customers: list[tuple[int, str]], accounts: list[tuple[int, str]]) -> None:
        self.gen = gen
        self.rnd = gen.rnd
        self.stages = stages
        self.customers = customers
        self.accounts = accounts
        self.now = gen.now
        self.countries, self.country_cum = gen.countries, gen.country_cum
        self.country = {c.code: c for c in COUNTRIES}
        self.tz = gen.tz

    def ts(self, at: datetime) -> str:
        return at.strftime("%Y-%m-%d %H:%M:%S.%f") + self.tz

    def _team_owner(self, code: str) -> tuple[int | None, int]:
        return self.gen.owner_for(self.country[code].team)

    def leads(self, count: int) -> dict[str, list[tuple[Any, ...]]]:
        rnd, r, gen = self.rnd, self.rnd.random, self.gen
        out: dict[str, list[tuple[Any, ...]]] = {"leads": [], "lead_engagements": []}
        for _ in range(count):
            lid = gen.take("leads")
            code = self.countries[bisect.bisect(self.country_cum, r())]
            pools = gen.pools[code]
            female = r() < 0.5
            first = rnd.choice(pools.first_f if female else pools.first_m)
            last = rnd.choice(pools.last)
            company = rnd.choice(pools.companies)
            domain = (gen.ascii_key(company)[:20] or "company") + "." + pools.country.tld
            email = f"{gen.ascii_key(first)}.{gen.ascii_key(last)}.{lid}@{domain}"
            nsn = pools.landline.national(rnd)
            status = _pick(rnd, LEAD_STATUS_MIX)
            source = _pick(rnd, LEAD_SOURCES)
            created = self.now - timedelta(seconds=int(r() * 365 * DAY))
            owner, team = self._team_owner(code)
            employees = int(10 ** (0.5 + r() * 3.5))
            industry = rnd.choice(catalog.INDUSTRIES)
            if status in ("converted", "disqualified"):  # bigger clubs and shops buy more often
                fit = min(1.0, len(str(employees)) / 5) * 0.6 + (
                    0.4 if industry in GOOD_FIT else 0.0)
                status = "converted" if r() < 0.15 + 0.6 * fit else "disqualified"
            touched = None if status == "new" else created + timedelta(hours=r() * 40)
            # BANT answers are collected while working a lead, whatever its outcome
            qualified = status != "new" and r() < (
                0.9 if status in ("qualified", "converted") else 0.5)
            engaged = []
            for _ in range(int(r() * 5)):
                at = created + timedelta(seconds=int(r() * max(1, (self.now - created)
                                                            .total_seconds())))
                engaged.append(at)
                out["lead_engagements"].append((
                    gen.take("lead_engagements"), lid, rnd.choice(ENGAGEMENTS), self.ts(at),
                    "{}"))
            customer_id = (self.customers[int(r() * len(self.customers))][0]
                           if status == "converted" and self.customers else None)
            out["leads"].append((
                lid, status, rnd.choice(DISQUALIFY) if status == "disqualified" else None,
                first, last, email, email.lower(), pools.landline.raw(nsn, 0),
                pools.landline.e164(nsn), company, rnd.choice(JOBS),
                industry, employees,
                f"{employees * (50000 + int(r() * 150000))}.00", code, pools.country.language,
                source, None, f"{int(1000 + r() * 50000)}.00" if qualified else None,
                pools.country.currency if qualified else None,
                rnd.choice(("decision_maker", "influencer", "user")) if qualified else None,
                "Team outfitting for the coming season" if qualified else None,
                rnd.choice(("now", "quarter", "half_year", "year")) if qualified else None,
                owner, team, self.ts(created), self.ts(created + timedelta(hours=24)),
                self.ts(touched) if touched else None,
                self.ts(max(engaged)) if engaged else None, 0, 0, 0, "{}", customer_id,
                self.ts(touched + timedelta(days=5)) if status == "converted" and touched
                else None,
                self.ts(created), self.ts(touched or created), 1))
        return out

    def _deal_base(self) -> tuple[str, int | None, int | None, str, int | None, int]:
        """Pipeline kind, customer, account, currency, owner and team of a new deal."""
        r = self.rnd.random
        kind = "upsell" if r() < 0.2 and "upsell" in self.stages else "new_business"
        customer_id = account_id = None
        if self.accounts and (kind == "new_business" and r() < 0.5):
            account_id, code = self.accounts[int(r() * len(self.accounts))]
        elif self.customers:
            customer_id, code = self.customers[int(r() * len(self.customers))]
        else:
            code = self.countries[bisect.bisect(self.country_cum, r())]
        owner, team = self._team_owner(code)
        return kind, customer_id, account_id, self.country[code].currency, owner, team

    def deals(self, count: int, closed: bool) -> dict[str, list[tuple[Any, ...]]]:
        rnd, r, gen = self.rnd, self.rnd.random, self.gen
        out: dict[str, list[tuple[Any, ...]]] = {
            "deals": [], "deal_stage_changes": [], "activities": []}
        changes, acts = out["deal_stage_changes"], out["activities"]
        today = self.now.date()
        for _ in range(count):
            did = gen.take("deals")
            kind, customer_id, account_id, currency, owner, team = self._deal_base()
            st = self.stages[kind]
            amount = f"{round(rnd.lognormvariate(8.5, 0.9), -1):.2f}"
            if closed:
                created = self.now - timedelta(seconds=int((30 + r() * 700) * DAY))
            else:
                created = self.now - timedelta(seconds=int(r() * 120 * DAY))
            at, prev = created, None
            path: list[int] = []
            for stage_id, _p in st.open:
                path.append(stage_id)
                if closed and r() > ADVANCE:
                    break
                if not closed and r() < 0.45:
                    break
            for stage_id in path:
                changes.append((gen.take("deal_stage_changes"), did, prev, stage_id, amount,
                                self.ts(at), owner))
                prev, entered = stage_id, at
                if stage_id != path[-1]:
                    at = at + timedelta(seconds=int(rnd.expovariate(1 / STAGE_DAYS) * DAY) + 3600)
            entered = at
            status, stage_id, closed_at, lost_reason = "open", path[-1], None, None
            category = "pipeline"
            if closed:
                finished = len(path) == len(st.open)
                won = finished and r() < WIN_LAST
                closed_dt = at + timedelta(seconds=int(rnd.expovariate(1 / STAGE_DAYS) * DAY)
                                           + 3600)
                if closed_dt > self.now:
                    closed_dt = self.now - timedelta(hours=1)
                status, stage_id = ("won", st.won) if won else ("lost", st.lost)
                lost_reason = None if won else rnd.choice(LOST)
                changes.append((gen.take("deal_stage_changes"), did, prev, stage_id, amount,
                                self.ts(closed_dt), owner))
                entered = closed_at = closed_dt
                category = "closed"
                close_date = closed_dt.date()
            else:
                close_date = today + timedelta(days=int(r() * 180))
                position = path.index(stage_id)
                if position == len(st.open) - 1 and r() < 0.6:
                    category = "commit"
                elif position >= len(st.open) - 2 and r() < 0.5:
                    category = "best_case"
                if r() < 0.5:  # a follow-up call on the deal, due around today
                    due = self.now + timedelta(hours=int(r() * 96) - 24)
                    acts.append((gen.take("activities"), "call", "Follow-up call", "", "open",
                                 self.ts(due), self.ts(due - timedelta(minutes=15)), None, None,
                                 "outbound", None, owner, team, None, did, self.ts(created),
                                 self.ts(created), 1))
            label = ("Upsell" if kind == "upsell" else "Team outfitting") + f" #{did}"
            out["deals"].append((
                did, label, st.pipeline_id, stage_id, status, amount, currency,
                close_date.isoformat(), category, json.dumps(
                    [rnd.choice(("Summit Gear", "PeakPro", "TrailCo"))] if r() < 0.3 else []),
                lost_reason, self.ts(closed_at) if closed_at else None, self.ts(entered),
                "lead" if r() < 0.4 else "manual", customer_id, account_id, None, owner, team,
                self.ts(created), self.ts(entered), 1))
        return out


def _reference(url: str | None) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    with session_scope(url) as session:
        customers = [(i, c or "GB") for i, c in session.execute(
            select(Customer.id, Customer.country).where(Customer.country.in_(
                [c.code for c in COUNTRIES])))]
        accounts = [(i, c) for i, c in session.execute(
            select(Account.id, Account.country).where(Account.country.in_(
                [c.code for c in COUNTRIES])))]
    return customers, accounts


def generate_sales(size: SalesSize, seed: int = 42, *, url: str | None = None,
                   now: datetime | None = None, progress: ProgressFn | None = None,
                   chunk: int = 20000) -> dict[str, int]:
    """Write the sales data set next to an existing customer base; returns rows per table."""
    progress = progress or _quiet
    now = now or default_now()
    engine = get_engine(url)
    setup = _setup(url, now)
    stages = _pipelines(url)
    customers, accounts = _reference(url)
    writer = BulkWriter(engine)
    gen = Generator(setup, seed + 1, now, first_ids(engine, SALES_TABLES), writer.tz_suffix)
    sales = SalesGenerator(gen, stages, customers, accounts)
    total = size.leads + size.open_deals + size.closed_deals
    done = 0
    with writer:
        for n, make in ((size.leads, sales.leads),
                        (size.closed_deals, lambda k: sales.deals(k, closed=True)),
                        (size.open_deals, lambda k: sales.deals(k, closed=False))):
            for start in range(0, n, chunk):
                rows = make(min(chunk, n - start))
                for table in SALES_TABLES:
                    if rows.get(table):
                        writer.write(table, rows[table], SALES_COLUMNS[table])
                writer.commit()
                done += min(chunk, n - start)
                progress("sales", done, total)
    finish_tables(engine, SALES_TABLES)
    return dict(writer.rows)


def _demo_setup(url: str | None, now: datetime) -> None:
    """A contact form with consent, a newsletter form, territory routing, then lead scores
    (a model trained on the demo's past conversions, every open lead rescored)."""
    from accord.sales import scoring

    with session_scope(url) as session:
        if session.execute(select(LeadForm.id).limit(1)).first() is None:
            teams = {t.name: t.id for t in session.scalars(select(Team))}
            session.add_all([
                LeadForm(slug="contact-us", name="Contact sales",
                         fields=["first_name", "last_name", "email", "phone", "company",
                                 "job_title", "country", "employees", "need"],
                         required=["email"], consent_purpose="marketing",
                         consent_wording="Yes, Accord Outdoor may e-mail me news and offers. "
                         "I can unsubscribe at any time.", engagement_kind="demo_requested"),
                LeadForm(slug="newsletter", name="Newsletter sign-up",
                         fields=["first_name", "email", "country"], required=["email"],
                         consent_purpose="newsletter", consent_required=True,
                         consent_wording="Send me the monthly newsletter.",
                         engagement_kind="newsletter_signup"),
            ])
            for position, team in enumerate(("Sales North", "Sales South")):
                codes = sorted(c.code for c in COUNTRIES if c.team == team)
                session.add(AssignmentRule(
                    name=f"{team} territory", position=position, method="round_robin",
                    conditions={"countries": codes}, team_id=teams.get(team),
                    first_touch_hours=24))
        session.flush()
        with contextlib.suppress(scoring.LeadModelError):  # a tiny demo: rules only
            scoring.train_lead_model(session, now=now)
        scoring.rescore_leads(session, now=now)


def demo_sales(customers: int, seed: int = 42, *, url: str | None = None,
               now: datetime | None = None, progress: ProgressFn | None = None
               ) -> dict[str, int]:
    """The demo's pipeline, scaled to its customer base."""
    now = now or default_now()
    rows = generate_sales(SalesSize.for_customers(customers), seed, url=url, now=now,
                          progress=progress or Progress())
    _demo_setup(url, now)
    return rows


