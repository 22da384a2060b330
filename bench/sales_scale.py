"""Sales at scale: kanban first paint, the lead list filtered by owner and status, a quarter's
forecast — with 1,000,000 leads and 100,000 open deals.

    python bench/sales_scale.py [--leads 1000000] [--open-deals 100000] [--closed-deals 50000]
                                [--customers 20000] [--db FILE] [--requests 200] [--seed 0]

The data set is the demo's sales generator (`accord.demo.sales`) at that size, in a SQLite file
(`--db` keeps it for the next run; set ACCORD_DATABASE_URL to measure PostgreSQL instead). Every
figure is server time measured in this process (the app called through Starlette's TestClient:
routing, authentication, policy, queries, serialisation or rendering, the audit entry), the
median and p99 of `--requests` calls, and printed beside a baseline measured in the same run:

  * kanban first paint  GET /sales/pipeline (the page: one first page per stage + totals)
                        and `deals.board` alone                       target < 300 ms
                        baseline: GET /health/live (the stack's own cost per request)
  * lead list           GET /api/v1/leads?owner_id=&status=           target p99 < 50 ms
                        baseline: the same page as one raw SQL statement on the driver
  * forecast, quarter   `forecast.forecast` for the current quarter   target < 1 s
                        baseline: one raw GROUP BY over the open deals of the quarter
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _web import ensure_customers, login, pct, timed  # bench/ is the script's directory

TARGETS = {"kanban": 300.0, "leads_p99": 50.0, "forecast": 1000.0}


def row(label: str, ms: list[float], target: str = "") -> None:
    print(f"  {label:<46} median {statistics.median(ms):8.1f} ms   p99 {pct(ms, .99):8.1f} ms"
          f"   {target}")


def prepare(args: argparse.Namespace) -> None:
    from sqlalchemy import func, select

    from accord.core.db import session_scope
    from accord.demo.generator import Progress
    from accord.demo.sales import SalesSize, generate_sales
    from accord.models import Lead

    ensure_customers(args.customers, args.seed)
    with session_scope() as s:
        have = s.scalar(select(func.count()).select_from(Lead))
    if not have:
        size = SalesSize(args.leads, args.open_deals, args.closed_deals)
        print(f"generating {size.leads:,} leads, {size.open_deals:,} open and "
              f"{size.closed_deals:,} closed deals ...", flush=True)
        t = time.perf_counter()
        rows = generate_sales(size, args.seed, progress=Progress())
        print(f"  {sum(rows.values()):,} rows in {time.perf_counter() - t:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--leads", type=int, default=1_000_000)
    ap.add_argument("--open-deals", type=int, default=100_000)
    ap.add_argument("--closed-deals", type=int, default=50_000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if "ACCORD_DATABASE_URL" not in os.environ:
        db = args.db or Path(tempfile.mkdtemp(prefix="accord-sales-")) / "accord.db"
        os.environ["ACCORD_DATABASE_URL"] = f"sqlite:///{db}"
        os.environ.setdefault("ACCORD_DATA_DIR", str(db.parent))
    os.environ["ACCORD_EMBEDDED_WORKER"] = "false"
    prepare(args)

    from fastapi.testclient import TestClient
    from sqlalchemy import func, select, text

    from accord.access import service as access
    from accord.access.schemas import TokenCreate
    from accord.app import create_app
    from accord.core.clock import utcnow
    from accord.core.db import get_engine, session_scope
    from accord.demo import catalog
    from accord.demo.generator import DEMO_PASSWORD
    from accord.models import Deal, Lead, Pipeline, User
    from accord.models.sales import LEAD_STATUSES
    from accord.sales import deals, forecast

    n = args.requests
    with session_scope() as s:
        users = {u.email.split("@")[0]: u for u in s.scalars(select(User))}
        seller = users["sales.north"]
        principals = {k: access.principal_for(users[k]) for k in ("sales.north", "manager",
                                                                     "admin")}
        _, token = access.create_token(s, principals["sales.north"], TokenCreate(name="bench"))
        pipeline_id = s.scalar(select(Pipeline.id).where(Pipeline.kind == "new_business"))
        counts = {"leads": s.scalar(select(func.count()).select_from(Lead)),
                  "open deals": s.scalar(select(func.count()).select_from(Deal).where(
                      Deal.status == "open")),
                  "seller's leads": s.scalar(select(func.count()).select_from(Lead).where(
                      Lead.owner_id == seller.id))}
        seller_id = seller.id
    engine = get_engine()
    print(f"{engine.dialect.name}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    print(f"{n} calls per row, server time in this process\n")

    app = create_app()
    with TestClient(app) as api, TestClient(app) as page:
        login(page, f"sales.north@{catalog.DEMO_DOMAIN}", DEMO_PASSWORD)
        auth = {"Authorization": f"Bearer {token}"}

        print("kanban first paint")
        live = timed(lambda: api.get("/health/live"), n)
        row("baseline: GET /health/live", live)
        url = f"/sales/pipeline?pipeline_id={pipeline_id}"
        assert page.get(url).status_code == 200
        paint = timed(lambda: page.get(url), max(20, n // 4))
        row("GET /sales/pipeline (sales user: team scope)", paint,
            f"target < {TARGETS['kanban']:.0f} ms")

        def board_call(who: str) -> Callable[[], Any]:
            def run() -> Any:
                with session_scope() as s:
                    return deals.board(s, principals[who], pipeline_id)
            return run

        for who in ("sales.north", "manager", "admin"):
            row(f"deals.board ({who})", timed(board_call(who), max(20, n // 4)))

        print("\nlead list filtered by owner and status")
        rnd = random.Random(args.seed)
        picks = [rnd.choice(LEAD_STATUSES) for _ in range(n)]
        raw = engine.raw_connection()
        cur = raw.cursor()
        mark = "?" if engine.dialect.name == "sqlite" else "%s"
        sql = (f"SELECT * FROM leads WHERE owner_id = {mark} AND status = {mark} "  # noqa: S608
               f"ORDER BY id DESC LIMIT 51")
        it = iter(picks)
        base = timed(lambda: (cur.execute(sql, (seller_id, next(it))), cur.fetchall()), n)
        row("baseline: the same page as raw SQL", base)
        it = iter(picks)

        def lead_page() -> None:
            r = api.get(f"/api/v1/leads?owner_id={seller_id}&status={next(it)}&limit=50",
                        headers=auth)
            assert r.status_code == 200, r.text[:300]

        lead_ms = timed(lead_page, n)
        row("GET /api/v1/leads?owner_id=&status= (sales user)", lead_ms,
            f"target p99 < {TARGETS['leads_p99']:.0f} ms")
        cur.close()
        raw.close()

        print("\nforecast for the current quarter")
        start = forecast.quarter_start(utcnow().date())
        end = forecast.add_months(start, 3)
        with engine.connect() as conn:
            q = text("SELECT currency, COUNT(*), SUM(amount) FROM deals WHERE status = 'open' "
                     "AND expected_close_date >= :a AND expected_close_date < :b "
                     "GROUP BY currency")
            base = timed(lambda: conn.execute(q, {"a": start, "b": end}).all(), 10)
        row("baseline: one raw GROUP BY over the quarter", base)
        for who in ("admin", "manager", "sales.north"):
            def run(who: str = who) -> Any:
                with session_scope() as s:
                    return forecast.forecast(s, principals[who], start, period="quarter")
            row(f"forecast.forecast ({who})", timed(run, 10),
                f"target < {TARGETS['forecast']:.0f} ms" if who == "admin" else "")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
