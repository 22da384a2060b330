"""Customer service at scale: the agent queue with 1,000,000 tickets and 5,000,000 messages,
knowledge-base search over 10,000 articles, sentiment scoring throughput.

    python bench/service_scale.py [--tickets 1000000] [--messages-per-ticket 5.3]
                                  [--articles 10000] [--agents 50] [--customers 20000]
                                  [--db FILE] [--requests 200] [--seed 0]

The data set is the demo's service generator (`accord.demo.service`) at that size, in a SQLite
file (`--db` keeps it for the next run; set ACCORD_DATABASE_URL to measure PostgreSQL instead).
Every figure is measured in this process, the median and p99 of `--requests` calls, printed
beside a baseline measured in the same run (the machines are shared and noisy: compare ratios):

  * agent queue      GET /api/v1/tickets?assignee=&status__in=... by SLA due (first page)
                     and the "My queue" page GET /service/queue   target p99 < 50 ms
                     baseline: GET /health/live (the stack's own cost per request)
  * team queue       GET /api/v1/tickets?team=&status__in=... (unassigned and assigned)
  * KB search        `knowledge.search` (public, ranked, with snippets)   target p99 < 30 ms
                     and GET /api/v1/help/search (public API)
                     baseline: the bare FTS statement (FTS5 MATCH / tsvector @@) on the driver
  * sentiment        `sentiment.score` on stored inbound messages, messages/s
                     baseline: VADER's own polarity_scores on the same texts
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _web import ensure_customers, login, pct, timed  # bench/ is the script's directory

TARGETS = {"queue_p99": 50.0, "search_p99": 30.0}
OPEN = ("new", "open", "pending_customer", "on_hold")
QUERIES = ("refund", "return policy", "how long does delivery take", "waterproof jacket wash",
           "warranty zip broken", "resole hiking boots", "loyalty points", "change address",
           "invoice VAT number", "cancel order", "trail runner fit", "merino", "payment klarna",
           "tracking not updated", "exchange size")


def row(label: str, ms: list[float], note: str = "") -> None:
    print(f"  {label:<50} median {statistics.median(ms):8.2f} ms   p99 {pct(ms, .99):8.2f} ms"
          f"   {note}", flush=True)


def _ratio(ms: list[float], base: list[float]) -> str:
    return f"median ×{statistics.median(ms) / statistics.median(base):.1f} baseline"


def prepare(args: argparse.Namespace) -> None:
    from sqlalchemy import func, select

    from accord.core.db import session_scope
    from accord.demo.generator import Progress
    from accord.demo.service import ServiceSize, generate_service
    from accord.models import Ticket

    ensure_customers(args.customers, args.seed)
    with session_scope() as s:
        have = s.scalar(select(func.count()).select_from(Ticket))
    if not have:
        size = ServiceSize(args.tickets, args.messages_per_ticket, args.articles, args.agents)
        print(f"generating {size.tickets:,} tickets, {size.articles:,} extra articles, "
              f"{size.agents} extra agents ...", flush=True)
        t = time.perf_counter()
        rows = generate_service(size, args.seed, progress=Progress())
        print(f"  {sum(rows.values()):,} rows in {time.perf_counter() - t:.0f} s: "
              + ", ".join(f"{k} {v:,}" for k, v in rows.items()), flush=True)


def _counts() -> dict[str, int]:
    from sqlalchemy import func, select

    from accord.core.db import session_scope
    from accord.models import KbArticle, Ticket, TicketMessage

    with session_scope() as s:
        return {name: s.scalar(select(func.count()).select_from(m)) or 0
                for name, m in (("tickets", Ticket), ("messages", TicketMessage),
                                ("articles", KbArticle))}


def _busiest_agent() -> tuple[int, int, int]:
    """The agent with the most open tickets (the worst queue), their team and queue length."""
    from sqlalchemy import func, select

    from accord.core.db import session_scope
    from accord.models import Ticket

    with session_scope() as s:
        agent, n = s.execute(
            select(Ticket.assignee_id, func.count()).where(
                Ticket.status.in_(OPEN), Ticket.assignee_id.is_not(None))
            .group_by(Ticket.assignee_id).order_by(func.count().desc()).limit(1)).one()
        team = s.scalar(select(Ticket.team_id).where(Ticket.assignee_id == agent).limit(1))
    return agent, team, n


def bench_queue(client: Any, args: argparse.Namespace) -> None:
    from sqlalchemy import select

    from accord.core.db import session_scope
    from accord.models import User

    agent, team, n = _busiest_agent()
    with session_scope() as s:
        email = s.scalar(select(User.email).where(User.id == agent))
    print(f"\nagent queue: agent {agent} has {n:,} open tickets", flush=True)
    client.sign_in(email)
    statuses = "status__in=new,open,on_hold"
    base = timed(lambda: client.get("/health/live"), args.requests)
    row("baseline GET /health/live", base)
    api = timed(lambda: client.ok(f"/api/v1/tickets?assignee={agent}&{statuses}"
                                  "&sort=due_at&limit=50"), args.requests)
    row("GET /api/v1/tickets (my queue, by SLA due)", api,
        f"target p99 < {TARGETS['queue_p99']:.0f} ms  {_ratio(api, base)}")
    page = timed(lambda: client.ok("/service/queue"), args.requests)
    row("GET /service/queue (My queue page)", page,
        f"target p99 < {TARGETS['queue_p99']:.0f} ms")
    team_q = timed(lambda: client.ok(f"/api/v1/tickets?team={team}&{statuses}"
                                     "&sort=due_at&limit=50"), args.requests)
    row("GET /api/v1/tickets (team queue)", team_q)


def bench_search(client: Any, args: argparse.Namespace) -> None:
    from sqlalchemy import text

    from accord.core.db import get_engine, session_scope
    from accord.service import knowledge

    rnd = random.Random(args.seed)
    queries = [rnd.choice(QUERIES) for _ in range(args.requests)]
    it = iter(queries * 3)
    engine = get_engine()
    if engine.dialect.name == "sqlite":
        raw = ("SELECT rowid FROM kb_articles_fts WHERE kb_articles_fts MATCH :q "
               "ORDER BY bm25(kb_articles_fts, 10.0, 1.0) LIMIT 10")

        def param(q: str) -> str:
            return " ".join(f'"{w}"' for w in q.split())
    else:
        raw = ("SELECT id FROM kb_articles WHERE search_vector @@ websearch_to_tsquery("
               "'english', :q) ORDER BY ts_rank_cd(search_vector, websearch_to_tsquery("
               "'english', :q)) DESC LIMIT 10")

        def param(q: str) -> str:
            return q
    print("\nknowledge-base search", flush=True)
    with engine.connect() as conn:
        base = timed(lambda: conn.execute(text(raw), {"q": param(next(it))}).all(),
                     args.requests)
    row("baseline: bare FTS statement, top 10", base)
    with session_scope() as s:
        hits = timed(lambda: knowledge.search(s, next(it), public_only=True, limit=10),
                     args.requests)
    row("knowledge.search (public, ranked, snippets)", hits,
        f"target p99 < {TARGETS['search_p99']:.0f} ms  {_ratio(hits, base)}")
    api = timed(lambda: client.ok(f"/api/v1/help/search?q={next(it)}"), args.requests)
    row("GET /api/v1/help/search (public API)", api)


def bench_sentiment(args: argparse.Namespace) -> None:
    from sqlalchemy import select

    from accord.core.db import session_scope
    from accord.models import TicketMessage
    from accord.service import sentiment

    with session_scope() as s:
        texts = list(s.scalars(select(TicketMessage.body_text).where(
            TicketMessage.direction == "inbound").limit(args.sentiment)))
    analyzer = sentiment._analyzer()
    print(f"\nsentiment over {len(texts):,} stored inbound messages", flush=True)
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        for body in texts:
            analyzer.polarity_scores(body)
        raw = time.perf_counter() - t
        t = time.perf_counter()
        for body in texts:
            sentiment.score(body, "en")
        ours = time.perf_counter() - t
        runs.append((raw, ours))
    raw_s = statistics.median(r[0] for r in runs)
    ours_s = statistics.median(r[1] for r in runs)
    print(f"  baseline VADER polarity_scores       {len(texts) / raw_s:10,.0f} messages/s")
    print(f"  sentiment.score (quotes stripped)    {len(texts) / ours_s:10,.0f} messages/s"
          f"   ×{ours_s / raw_s:.2f} baseline time (median of 3)", flush=True)


class Client:
    def __init__(self) -> None:
        from fastapi.testclient import TestClient

        from accord.app import create_app

        self.http = TestClient(create_app())

    def sign_in(self, email: str) -> None:
        from accord.demo.generator import DEMO_PASSWORD

        self.http.cookies.clear()
        login(self.http, email, DEMO_PASSWORD)

    def get(self, url: str) -> Any:
        return self.http.get(url)

    def ok(self, url: str) -> Any:
        r = self.http.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--messages-per-ticket", type=float, default=5.3)
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--db", default=None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sentiment", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if "ACCORD_DATABASE_URL" not in os.environ:
        db = Path(args.db or Path(tempfile.gettempdir()) / "accord-service-bench.db")
        os.environ["ACCORD_DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("ACCORD_DATA_DIR", tempfile.mkdtemp(prefix="accord-bench-"))
    os.environ["ACCORD_EMBEDDED_WORKER"] = "false"
    prepare(args)
    counts = _counts()
    print(f"\ndata: {counts['tickets']:,} tickets, {counts['messages']:,} messages, "
          f"{counts['articles']:,} articles on {os.environ['ACCORD_DATABASE_URL'].split(':')[0]}"
          f"; load average {os.getloadavg()[0]:.1f}", flush=True)
    client = Client()
    bench_queue(client, args)
    bench_search(client, args)
    bench_sentiment(args)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {rss:,.0f} MB; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
