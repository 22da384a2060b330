"""Demo customer service: agents, calendars, SLA policy, routing, canned replies, help articles,
tickets with their conversations, events and SLA outcomes.

Bulk rows go through `BulkWriter` like the customer base, so the benchmark can build a million
tickets and five million messages. Ticket conversations follow the ticket's status: solved and
closed tickets have a customer message, agent replies and a solve; open ones wait for an agent
or for the customer. Sentiment is scored once per template with the real scorer (not per row),
so every stored score is the scorer's own figure for that text. For the demo's own size the SLA
timers of open tickets are then evaluated exactly by `sla_tracking.refresh`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from accord.core.db import get_engine, session_scope
from accord.demo import service_texts as texts
from accord.demo.generator import (
    BulkWriter,
    Progress,
    ProgressFn,
    _quiet,
    _setup,
    default_now,
    finish_tables,
    first_ids,
)
from accord.models import (
    BusinessCalendar,
    CannedReply,
    Customer,
    CustomerEmail,
    KbArticle,
    Order,
    RoutingRule,
    ServiceAgent,
    SlaPolicy,
    SlaTarget,
    SurveyInvitation,
    SurveySchedule,
    Ticket,
    User,
)

SERVICE_COLUMNS: dict[str, tuple[str, ...]] = {
    "tickets": (
        "id", "subject", "customer_id", "requester_email", "requester_name", "channel",
        "priority", "category", "status", "language", "tags", "assignee_id", "team_id",
        "sla_policy_id", "sla_state", "first_response_due_at", "resolution_due_at", "due_at",
        "first_response_seconds", "resolution_seconds", "first_responded_at",
        "last_customer_message_at", "last_agent_reply_at", "solved_at", "closed_at",
        "sentiment", "escalation_level", "created_at", "updated_at", "version"),
    "ticket_messages": (
        "id", "ticket_id", "customer_id", "visibility", "direction", "channel", "author_id",
        "from_address", "subject", "body_text", "language", "sentiment", "sentiment_label",
        "sentiment_model", "is_auto_reply", "created_at"),
    "ticket_events": ("id", "ticket_id", "at", "kind", "status", "priority", "actor_id", "data"),
    "survey_invitations": ("id", "kind", "trigger", "customer_id", "ticket_id", "team_id",
                           "agent_id", "email", "token_hash", "sent_at", "expires_at", "used_at"),
    "survey_responses": ("id", "invitation_id", "kind", "score", "comment", "customer_id",
                         "ticket_id", "team_id", "agent_id", "responded_at"),
}
SERVICE_TABLES = tuple(SERVICE_COLUMNS)
NPS_COLUMNS = {
    "survey_invitations": ("id", "kind", "trigger", "customer_id", "schedule_id", "email",
                           "token_hash", "sent_at", "expires_at", "used_at"),
    "survey_responses": ("id", "invitation_id", "kind", "score", "comment", "customer_id",
                         "responded_at"),
}
NPS_ASKED = 0.25  # share of customers in the last quarterly NPS wave; 45% answer
NPS_MIX = (("10", 0.22), ("9", 0.20), ("8", 0.18), ("7", 0.12), ("6", 0.08), ("5", 0.06),
           ("4", 0.04), ("3", 0.04), ("2", 0.03), ("1", 0.02), ("0", 0.01))
NPS_COMMENTS = {10: "Great gear and friendly staff.", 9: "Would recommend to my club.",
                6: "Prices went up a lot.", 3: "Delivery is always late."}
SURVEYED = 0.35  # share of solved tickets that get a CSAT survey; 60% of those answer
CSAT_CALM = ((5, 0.45), (4, 0.35), (3, 0.12), (2, 0.05), (1, 0.03))
CSAT_UPSET = ((5, 0.10), (4, 0.20), (3, 0.25), (2, 0.25), (1, 0.20))
COMMENTS = {5: "Quick and friendly, thank you!", 4: "Solved, took a little while.",
            3: "Okay in the end.", 2: "Too slow and I had to repeat myself.",
            1: "Nobody read what I wrote."}
KB_COLUMNS = {
    "kb_articles": (
        "id", "slug", "locale", "category_id", "visibility", "status", "title", "body",
        "current_version", "published_at", "author_id", "views", "helpful_yes", "helpful_no",
        "created_at", "updated_at", "version"),
    "kb_article_versions": ("id", "article_id", "number", "title", "body", "note", "author_id",
                            "created_at"),
}

DAY = 86400
HOUR = 3600
CHANNEL_MIX = (("email", 0.55), ("chat", 0.15), ("web", 0.12), ("phone", 0.15), ("api", 0.03))
PRIORITY_MIX = (("low", 0.15), ("normal", 0.60), ("high", 0.20), ("urgent", 0.05))
# first response / resolution targets in business hours by priority (the demo's SLA policy)
TARGET_HOURS = {"urgent": (1, 8), "high": (4, 24), "normal": (8, 40), "low": (16, 80)}
NEXT_RESPONSE_HOURS = {"urgent": 2, "high": 4, "normal": 8, "low": 16}
PLATINUM_HOURS = {"urgent": (0.5, 4), "high": (2, 16), "normal": (4, 24)}
DEMO_AGENTS = (("support", ("returns", "delivery", "warranty", "de", "en")),
               ("support.two", ("billing", "account", "product", "en", "fr")))
HOLIDAYS = ("2026-01-01", "2026-04-03", "2026-04-06", "2026-05-01", "2026-05-14", "2026-05-25",
            "2026-10-03", "2026-12-25", "2026-12-26", "2027-01-01", "2027-03-26", "2027-03-29",
            "2027-05-01", "2027-05-06", "2027-05-17", "2027-10-03", "2027-12-25", "2027-12-26")


@dataclass(frozen=True)
class ServiceSize:
    tickets: int
    messages_per_ticket: float = 3.0
    articles: int = 0  # synthetic help articles beyond the written ones (the search benchmark)
    agents: int = 0  # extra agents beyond the demo's two (the queue benchmark)

    @classmethod
    def for_customers(cls, customers: int) -> ServiceSize:
        return cls(tickets=max(60, customers * 3 // 4))


def _pick(rnd: random.Random, mix: tuple[tuple[str, float], ...]) -> str:
    x, acc = rnd.random(), 0.0
    for value, share in mix:
        acc += share
        if x < acc:
            return value
    return mix[-1][0]


class _Scores:
    """Sentiment per (template, product): a million-ticket data set is scored in seconds, and
    order numbers and first names barely move a lexicon score (the demo test checks it)."""

    def __init__(self) -> None:
        from accord.service import sentiment

        self._sentiment = sentiment
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}

    def __call__(self, template: str, product: str) -> tuple[float, str]:
        found = self._cache.get((template, product))
        if found is None:
            text = template.format(product=product, order="A-100000", first="Kim")
            s = self._sentiment.score(text, "en")
            found = self._cache[(template, product)] = (round(s.compound, 4), s.label)
        return found


class ServiceGenerator:
    def __init__(self, rnd: random.Random, now: datetime, tz: str, ids: dict[str, int],
                 customers: list[tuple[int, str, str, str | None]],
                 orders: dict[int, list[str]], products: list[str], agents: list[int],
                 team_id: int, policy_id: int) -> None:
        self.rnd, self.now, self.tz, self.next_id = rnd, now, tz, dict(ids)
        self.customers, self.orders, self.products = customers, orders, products
        self.agents, self.team_id, self.policy_id = agents, team_id, policy_id
        self.scores = _Scores()
        self.model = f"{self.scores._sentiment.MODEL} {self.scores._sentiment.MODEL_VERSION}"
        self.categories = tuple(texts.CONVERSATIONS)

    def take(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    def ts(self, at: datetime) -> str:
        return at.strftime("%Y-%m-%d %H:%M:%S.%f") + self.tz

    def tickets(self, count: int, messages_per_ticket: float) -> dict[str, list[tuple[Any, ...]]]:
        rnd, r, now = self.rnd, self.rnd.random, self.now
        out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in SERVICE_TABLES}
        for _ in range(count):
            tid = self.take("tickets")
            cid, first, email, lang = self.customers[int(r() * len(self.customers))]
            category = rnd.choice(self.categories)
            subjects, calm, upset, replies = texts.CONVERSATIONS[category]
            order = rnd.choice(self.orders.get(cid) or ["A-100000"])
            fill = {"product": rnd.choice(self.products), "order": order, "first": first}
            subject = rnd.choice(subjects).format(**fill)
            channel = _pick(rnd, CHANNEL_MIX)
            priority = _pick(rnd, PRIORITY_MIX)
            age = (r() ** 2.2) * 365 * DAY  # most tickets are recent
            created = now - timedelta(seconds=int(age) + 60)
            # tickets older than three weeks are done; the last days hold the open work
            done = age > 21 * DAY or r() < min(0.97, age / (6 * DAY))
            status = ("closed" if age > 10 * DAY else "solved") if done else rnd.choice(
                ("new", "open", "open", "pending_customer", "on_hold"))
            assignee = None if status == "new" and r() < 0.6 else rnd.choice(self.agents)
            upset_first = r() < 0.18
            first_text = rnd.choice(upset if upset_first else calm)
            fr_h, res_h = TARGET_HOURS[priority]
            events = [("created", created, None, None)]
            msgs: list[tuple[str, datetime, str, bool]] = [
                ("inbound", created, first_text, False)]
            t = created
            n_msgs = 1 if status == "new" else max(1, int(messages_per_ticket * (0.5 + r())))
            responded = None
            for i in range(1, n_msgs):
                step = t + timedelta(seconds=int(HOUR * (0.2 + r() * fr_h * 1.6)))
                if step >= now:
                    break
                t = step
                if i % 2 == 1:
                    msgs.append(("outbound", t, rnd.choice(replies), False))
                    events.append(("public_reply_by_agent", t, None, None))
                    responded = responded or t
                else:
                    msgs.append(("inbound", t, rnd.choice(calm if r() < 0.8 else upset), False))
                    events.append(("customer_message", t, None, None))
            if status in ("pending_customer", "solved", "closed") and msgs[-1][0] == "inbound":
                # waiting on the customer or solved: an agent answered last
                t = t + min(timedelta(hours=0.1 + r() * fr_h * 1.6), (now - t) / 2)
                msgs.append(("outbound", t, rnd.choice(replies), False))
                events.append(("public_reply_by_agent", t, None, None))
                responded = responded or t
            if status != "new":
                events.append(("status_changed", created + timedelta(seconds=1), "open", None))
            solved_at = closed_at = None
            if status in ("solved", "closed"):
                solved_at = t + min(timedelta(hours=r() * 6), (now - t) / 2)
                events.append(("status_changed", solved_at, "solved", None))
                if status == "closed":
                    closed_at = solved_at + min(timedelta(days=4), (now - solved_at) / 2)
                    events.append(("status_changed", closed_at, "closed", None))
            elif status in ("pending_customer", "on_hold"):
                events.append(("status_changed", t + min(timedelta(seconds=5), (now - t) / 2),
                               status, None))
            # approximate SLA figures (wall-clock hours); the demo refreshes open ones exactly
            fr_secs = (responded - created).total_seconds() if responded else None
            res_secs = (solved_at - created).total_seconds() if solved_at else None
            fr_due = created + timedelta(hours=fr_h)
            res_due = created + timedelta(hours=res_h)
            if status in ("solved", "closed"):
                state = "met" if res_secs is not None and res_secs < res_h * HOUR else "breached"
                due = None
            else:
                due = fr_due if responded is None else res_due
                state = "paused" if status == "pending_customer" else (
                    "breached" if due <= now else "running")
            last_in = max(m[1] for m in msgs if m[0] == "inbound")
            outs = [m[1] for m in msgs if m[0] == "outbound"]
            sentiment = None
            for direction, at, text, auto in msgs:
                body = text.format(**fill)
                score = label = None
                if direction == "inbound":
                    score, label = self.scores(text, fill["product"])
                    sentiment = score
                out["ticket_messages"].append((
                    self.take("ticket_messages"), tid, cid, "public", direction, channel,
                    assignee if direction == "outbound" else None,
                    email if direction == "inbound" else None,
                    subject if at == created else None, body, lang, score, label,
                    self.model if score is not None else None, auto, self.ts(at)))
            for kind, at, st, pr in events:
                out["ticket_events"].append((self.take("ticket_events"), tid, self.ts(at), kind,
                                             st, pr, None, "{}"))
            if solved_at is not None and r() < SURVEYED:
                self._survey(out, tid, cid, email, assignee, solved_at, upset_first)
            tags = json.dumps(["upset"] if upset_first else [])
            out["tickets"].append((
                tid, subject, cid, email, first, channel, priority, category, status, lang,
                tags, assignee, self.team_id, self.policy_id, state, self.ts(fr_due),
                self.ts(res_due), self.ts(due) if due else None, fr_secs, res_secs,
                self.ts(responded) if responded else None, self.ts(last_in),
                self.ts(outs[-1]) if outs else None,
                self.ts(solved_at) if solved_at else None,
                self.ts(closed_at) if closed_at else None, sentiment,
                0, self.ts(created), self.ts(max(m[1] for m in msgs)), 1))
        return out

    def _survey(self, out: dict[str, list[tuple[Any, ...]]], tid: int, cid: int, email: str,
                agent: int | None, solved_at: datetime, upset: bool) -> None:
        """A CSAT invitation after the solve and, often, its answer (never in the future)."""
        rnd, r = self.rnd, self.rnd.random
        sent = solved_at + timedelta(hours=1)
        if sent >= self.now:
            return
        iid = self.take("survey_invitations")
        answered = sent + timedelta(hours=2 + r() * 46)
        used = answered if r() < 0.6 and answered < self.now else None
        out["survey_invitations"].append((
            iid, "csat", "ticket_solved", cid, tid, self.team_id, agent, email,
            f"{rnd.getrandbits(256):064x}", self.ts(sent), self.ts(sent + timedelta(days=14)),
            self.ts(used) if used else None))
        if used is not None:
            score = int(_pick(rnd, tuple((str(s), w) for s, w in (
                CSAT_UPSET if upset else CSAT_CALM))))
            out["survey_responses"].append((
                self.take("survey_responses"), iid, "csat", score,
                COMMENTS[score] if r() < 0.4 else None, cid, tid, self.team_id, agent,
                self.ts(used)))


    def nps_wave(self, customers: list[tuple[int, str, str, str | None]], schedule_id: int
                 ) -> dict[str, list[tuple[Any, ...]]]:
        """The last quarterly NPS wave: a quarter of the customers asked, about half answer."""
        rnd, r = self.rnd, self.rnd.random
        out: dict[str, list[tuple[Any, ...]]] = {t: [] for t in NPS_COLUMNS}
        wave = self.now - timedelta(days=30)
        for cid, _first, email, _lang in customers:
            if r() >= NPS_ASKED:
                continue
            iid = self.take("survey_invitations")
            sent = wave + timedelta(seconds=int(r() * 6 * HOUR))
            answered = sent + timedelta(hours=1 + r() * 72)
            used = answered if r() < 0.45 else None
            out["survey_invitations"].append((
                iid, "nps", "schedule", cid, schedule_id, email, f"{rnd.getrandbits(256):064x}",
                self.ts(sent), self.ts(sent + timedelta(days=14)),
                self.ts(used) if used else None))
            if used is not None:
                score = int(_pick(rnd, NPS_MIX))
                comment = NPS_COMMENTS.get(score) if r() < 0.5 else None
                out["survey_responses"].append((self.take("survey_responses"), iid, "nps",
                                                score, comment, cid, self.ts(used)))
        return out


def _service_setup(url: str | None, now: datetime, extra_agents: int) -> tuple[int, int, list[int]]:
    """Calendar, SLA policy, agents, routing, canned replies; returns (team, policy, agents)."""
    setup = _setup(url, now)
    team_id = setup.team_ids["Support"]
    with session_scope(url) as session:
        if session.scalar(select(BusinessCalendar.id).limit(1)) is None:
            week = {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
            session.add_all([
                BusinessCalendar(name="Support (Berlin)", team_id=team_id,
                                 timezone="Europe/Berlin", hours={**week, "sat": [["09:00",
                                                                                   "13:00"]]},
                                 holidays=list(HOLIDAYS)),
                BusinessCalendar(name="Default", team_id=None, timezone="Europe/Berlin",
                                 hours=week, holidays=list(HOLIDAYS)),
            ])
        policy_id = session.scalar(select(SlaPolicy.id).where(SlaPolicy.is_default))
        if policy_id is None:
            policy = SlaPolicy(name="Standard", is_default=True, warning_ratio=0.8)
            session.add(policy)
            session.flush()
            policy_id = policy.id
            for priority, (fr, res) in TARGET_HOURS.items():
                session.add(SlaTarget(policy_id=policy_id, priority=priority, tier=None,
                                      first_response_minutes=fr * 60,
                                      next_response_minutes=NEXT_RESPONSE_HOURS[priority] * 60,
                                      resolution_minutes=res * 60))
            for priority, (fr, res) in PLATINUM_HOURS.items():
                session.add(SlaTarget(policy_id=policy_id, priority=priority, tier="platinum",
                                      first_response_minutes=int(fr * 60),
                                      next_response_minutes=int(fr * 60),
                                      resolution_minutes=res * 60))
        agents = []
        for login, skills in DEMO_AGENTS:
            uid = setup.user_ids.get(login)
            if uid is None:
                continue
            agents.append(uid)
            if session.scalar(select(ServiceAgent.id).where(ServiceAgent.user_id == uid)) is None:
                session.add(ServiceAgent(user_id=uid, skills=list(skills[:-2]),
                                         languages=list(skills[-2:]), max_open_tickets=40))
        hash_ = session.scalar(select(User.password_hash).where(User.id == agents[0]))
        for n in range(extra_agents):
            email = f"agent{n + 1}@scale.example.com"
            uid = session.scalar(select(User.id).where(User.email == email))
            if uid is None:
                uid = session.execute(insert(User).values(
                    email=email, full_name=f"Agent {n + 1}", password_hash=hash_, role="support",
                    team_id=team_id, is_active=True, locale="en_GB", created_at=now,
                    updated_at=now, version=1).returning(User.id)).scalar_one()
                session.add(ServiceAgent(user_id=uid, skills=["delivery", "returns"],
                                         languages=["en"], max_open_tickets=1000))
            agents.append(uid)
        if session.scalar(select(RoutingRule.id).limit(1)) is None:
            session.add_all([
                RoutingRule(name="Billing and account to skilled agents", position=0,
                            category="billing", team_id=team_id, required_skill="billing",
                            method="least_loaded"),
                RoutingRule(name="Everything else: round robin", position=1, team_id=team_id,
                            method="round_robin"),
            ])
        if session.scalar(select(SurveySchedule.id).limit(1)) is None:
            # the last wave went out a month ago (see `nps_wave`); the next is two months off
            session.add(SurveySchedule(name="Quarterly NPS", kind="nps", every_days=90,
                                       audience={}, last_run_at=now - timedelta(days=30),
                                       next_run_at=now + timedelta(days=60)))
        if session.scalar(select(CannedReply.id).limit(1)) is None:
            for title, body, category in texts.CANNED_REPLIES:
                session.add(CannedReply(title=title, body=body, category=category))
    return team_id, policy_id, agents


def _customers(url: str | None, limit: int = 200_000
               ) -> tuple[list[tuple[int, str, str, str | None]], dict[int, list[str]]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(Customer.id, Customer.first_name, CustomerEmail.email,
                   Customer.preferred_language)
            .join(CustomerEmail, CustomerEmail.customer_id == Customer.id)
            .where(CustomerEmail.is_primary, Customer.merged_into_id.is_(None))
            .order_by(Customer.id).limit(limit)).all()
        orders: dict[int, list[str]] = {}
        for cid, number in session.execute(select(Order.customer_id, Order.number)
                                           .order_by(Order.id).limit(limit * 3)):
            orders.setdefault(cid, []).append(number)
    # the demo's texts are English whatever the customer's language
    return [(i, f or "there", e, "en") for i, f, e, _lang in rows], orders


def _articles(rnd: random.Random, count: int, category_ids: dict[str, int], author: int | None,
              now: str, ids: dict[str, int]) -> dict[str, list[tuple[Any, ...]]]:
    """The written articles, then `count` synthetic ones mixing their sentences and products."""
    from accord.demo.catalog import PRODUCTS

    out: dict[str, list[tuple[Any, ...]]] = {"kb_articles": [], "kb_article_versions": []}
    written = list(texts.KB_ARTICLES)
    sentences = [s.strip() + "." for a in written for s in a[4].split(". ") if s.strip()]
    products = [p[1] for p in PRODUCTS]
    cats = [c for c, _ in texts.KB_CATEGORIES if c != "internal-procedures"]
    rows: list[tuple[str, str, str, str, str]] = list(written)
    for n in range(count):
        product = rnd.choice(products)
        topic = rnd.choice(("care", "fit", "repair", "returns", "delivery", "warranty"))
        body = " ".join(rnd.sample(sentences, 5)).replace("Stormshell jacket", product)
        rows.append((f"{topic}-{product.lower().replace(' ', '-')}-{n}", rnd.choice(cats),
                     "public" if rnd.random() < 0.8 else "internal",
                     f"{product}: {topic} questions ({n})", body))
    aid, vid = ids["kb_articles"], ids["kb_article_versions"]
    for slug, cat, visibility, title, body in rows:
        out["kb_articles"].append((aid, slug, "en", category_ids[cat], visibility, "published",
                                   title, body, 1, now, author, 0, 0, 0, now, now, 1))
        out["kb_article_versions"].append((vid, aid, 1, title, body, "first version", author,
                                           now))
        aid, vid = aid + 1, vid + 1
    return out


def _kb_setup(url: str | None) -> tuple[dict[str, int], int | None] | None:
    """Categories (once); None when the help centre already has articles."""
    from accord.models import KbCategory

    with session_scope(url) as session:
        if session.scalar(select(KbArticle.id).limit(1)) is not None:
            return None
        if session.scalar(select(KbCategory.id).limit(1)) is None:
            for position, (slug, name) in enumerate(texts.KB_CATEGORIES):
                session.add(KbCategory(slug=slug, name=name, position=position))
            session.flush()
        category_ids = {c.slug: c.id for c in session.scalars(select(KbCategory))}
        author = session.scalar(select(User.id).where(User.role == "support").order_by(User.id))
    return category_ids, author


def _write_knowledge(engine: Any, writer: BulkWriter, kb: tuple[dict[str, int], int | None],
                     count: int, now: datetime, rnd: random.Random) -> None:
    ids = first_ids(engine, tuple(KB_COLUMNS))
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f") + writer.tz_suffix
    rows = _articles(rnd, count, kb[0], kb[1], stamp, ids)
    for table, cols in KB_COLUMNS.items():
        for start in range(0, len(rows[table]), 5000):
            writer.write(table, rows[table][start:start + 5000], cols)
    writer.commit()


def generate_service(size: ServiceSize, seed: int = 42, *, url: str | None = None,
                     now: datetime | None = None, progress: ProgressFn | None = None,
                     chunk: int = 20000) -> dict[str, int]:
    """Write the service data set next to an existing customer base; returns rows per table."""
    progress = progress or _quiet
    now = now or default_now()
    engine = get_engine(url)
    team_id, policy_id, agents = _service_setup(url, now, size.agents)
    customers, orders = _customers(url)
    if not customers:
        return {}
    with session_scope(url) as session:  # a fresh demo's wave; none when re-run on old data
        schedule_id = session.scalar(select(SurveySchedule.id).where(
            SurveySchedule.name == "Quarterly NPS", SurveySchedule.last_run_at.is_not(None)))
        if schedule_id is not None and session.scalar(select(func.count()).select_from(
                SurveyInvitation).where(SurveyInvitation.schedule_id == schedule_id)):
            schedule_id = None
    from accord.demo.catalog import PRODUCTS

    rnd = random.Random(seed + 7)
    kb = _kb_setup(url)
    ids = first_ids(engine, SERVICE_TABLES)
    writer = BulkWriter(engine)
    with writer:
        if kb is not None:
            _write_knowledge(engine, writer, kb, size.articles, now, rnd)
        gen = ServiceGenerator(rnd, now, writer.tz_suffix, ids,
                               customers, orders, [p[1] for p in PRODUCTS], agents, team_id,
                               policy_id)
        for start in range(0, size.tickets, chunk):
            rows = gen.tickets(min(chunk, size.tickets - start), size.messages_per_ticket)
            for table in SERVICE_TABLES:
                writer.write(table, rows[table], SERVICE_COLUMNS[table])
            writer.commit()
            progress("service", min(start + chunk, size.tickets), size.tickets)
        if schedule_id is not None:
            wave = gen.nps_wave(customers, schedule_id)
            for table, cols in NPS_COLUMNS.items():
                writer.write(table, wave[table], cols)
    finish_tables(engine, (*SERVICE_TABLES, *KB_COLUMNS, "kb_categories"))
    return dict(writer.rows)


def refresh_open_slas(url: str | None = None, now: datetime | None = None) -> int:
    """Evaluate the open tickets' SLA timers exactly (the bulk rows carry estimates)."""
    from accord.models.service import OPEN_STATUSES
    from accord.service import sla_tracking

    done = 0
    with session_scope(url) as session:
        for ticket in session.scalars(select(Ticket).where(Ticket.status.in_(OPEN_STATUSES))):
            sla_tracking.refresh(session, ticket, now=now)
            done += 1
    return done


def demo_service(customers: int, seed: int = 42, *, url: str | None = None,
                 now: datetime | None = None, progress: ProgressFn | None = None
                 ) -> dict[str, int]:
    """The demo's service desk, scaled to its customer base."""
    now = now or default_now()
    rows = generate_service(ServiceSize.for_customers(customers), seed, url=url, now=now,
                            progress=progress or Progress())
    refresh_open_slas(url, now)
    return rows
