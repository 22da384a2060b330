"""Read latency of the customer API under load: the 360° view and the search by e-mail.

With N generated customers (default 1,000,000) in a SQLite file, starts `accord serve` in a
subprocess and drives it from a separate load process (one OS process per client, each a
keep-alive httpx client issuing requests back to back) at 1 and 16 concurrent clients. Prints
p50/p99 latency and requests/s for

  * GET /health/live                            baseline: the machine's and the stack's own noise
  * GET /api/v1/customers/{id}/360               target p99 < 20 ms at 16 clients
  * GET /api/v1/customers?email=...              target p99 < 10 ms

    python bench/customer_read.py [N] [--seconds 10] [--clients 1,16] [--db FILE] [--workers 1]

`--db FILE` reuses (or creates and keeps) a generated database, so repeated runs skip generation.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = {"360": 20.0, "search": 10.0}


def prepare(db: Path, customers: int, seed: int) -> tuple[str, list[int], list[str]]:
    """Generate (once), mint an admin token, sample customer ids and primary e-mails."""
    from sqlalchemy import func, select

    from accord.access import service
    from accord.access.schemas import TokenCreate
    from accord.core.db import session_scope
    from accord.core.migrate import upgrade
    from accord.demo.generator import Progress, demo_exists, generate
    from accord.models import Customer, CustomerEmail, User

    upgrade()
    from accord.core.db import get_engine

    if not demo_exists(get_engine()):
        print(f"generating {customers:,} customers into {db} ...", flush=True)
        generate(customers, seed, progress=Progress())
    with session_scope() as s:
        admin = s.execute(
            select(User).where(User.role == "admin").order_by(User.id)).scalars().first()
        _, token = service.create_token(s, service.principal_for(admin), TokenCreate(name="bench"))
        lo, hi = s.execute(select(func.min(Customer.id), func.max(Customer.id))).one()
        rnd = random.Random(seed)
        ids = [rnd.randint(lo, hi) for _ in range(5000)]
        email_ids = ids[:2000]
        emails = list(s.execute(select(CustomerEmail.email_normalized).where(
            CustomerEmail.customer_id.in_(email_ids),
            CustomerEmail.is_primary.is_(True))).scalars())
    return token, ids, emails


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(db: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ACCORD_DATABASE_URL": f"sqlite:///{db}",
           "ACCORD_EMBEDDED_WORKER": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "accord.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--no-worker", "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            raise SystemExit(f"server exited: {err}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 60 s")


# --- the load process ----------------------------------------------------------------------------

def _client(base: str, token: str, paths: list[str], seconds: float, barrier: Any,
            out: Any) -> None:
    """One client: warm up, wait for every other client, then requests back to back."""
    import httpx

    latencies: list[float] = []
    errors = 0
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as c:
        for path in paths[-3:]:
            c.get(path)
        barrier.wait()
        stop_at = time.perf_counter() + seconds
        i = 0
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                break
            r = c.get(paths[i % len(paths)])
            latencies.append(time.perf_counter() - t0)
            errors += r.status_code != 200
            i += 1
    out.put((latencies, errors))


def load(spec: dict[str, Any]) -> dict[str, Any]:
    """`clients` processes for `seconds`; latency percentiles (ms) and requests/s."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    clients, seconds = spec["clients"], spec["seconds"]
    barrier = ctx.Barrier(clients)
    procs = [ctx.Process(target=_client, args=(spec["base"], spec["token"],
                                               spec["paths"][k::clients] or spec["paths"],
                                               seconds, barrier, queue))
             for k in range(clients)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    n = len(latencies)
    pct = lambda q: latencies[min(n - 1, int(q * n))] * 1000 if n else float("nan")  # noqa: E731
    return {"requests": n, "errors": errors, "rps": n / seconds, "p50": pct(0.50),
            "p90": pct(0.90), "p99": pct(0.99), "max": latencies[-1] * 1000 if n else float("nan")}


def run_load_process(spec: dict[str, Any]) -> dict[str, Any]:
    """The load runs in its own process (not the one that prepared the data or the server)."""
    proc = subprocess.run([sys.executable, __file__, "--load"], input=json.dumps(spec),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"load process failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("customers", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--clients", default="1,16", help="comma-separated concurrency levels")
    parser.add_argument("--db", type=Path, help="generated database to reuse (kept)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the load process: spec on stdin, result on stdout
        print(json.dumps(load(json.loads(sys.stdin.read()))))
        return

    tmp = None
    if args.db is None:
        tmp = Path(tempfile.mkdtemp(prefix="accord-bench-read-"))
        db = tmp / "accord.db"
    else:
        db = args.db.resolve()
    os.environ["ACCORD_DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("ACCORD_ENVIRONMENT", "development")
    server = None
    try:
        token, ids, emails = prepare(db, args.customers, args.seed)
        port = free_port()
        server = start_server(db, port, args.workers)
        base = f"http://127.0.0.1:{port}"
        scenarios = {
            "live": ["/health/live"],
            "360": [f"/api/v1/customers/{i}/360" for i in ids],
            "search": [f"/api/v1/customers?email={e}" for e in emails],
        }
        levels = [int(x) for x in args.clients.split(",")]
        print(f"\n{args.customers:,} customers (SQLite {db.name}), uvicorn workers={args.workers}, "
              f"{os.cpu_count()} CPUs, {args.seconds:.0f} s per measurement")
        print(f"{'endpoint':<10}{'clients':>8}{'req/s':>10}{'p50 ms':>9}{'p90 ms':>9}"
              f"{'p99 ms':>9}{'max ms':>9}{'errors':>8}  target")
        for clients in levels:
            for name, paths in scenarios.items():
                res = run_load_process({"base": base, "token": token, "paths": paths,
                                        "clients": clients, "seconds": args.seconds})
                target = TARGETS.get(name)
                verdict = ""
                if target is not None:
                    verdict = f"p99 < {target:.0f} ms: {'ok' if res['p99'] < target else 'MISSED'}"
                print(f"{name:<10}{clients:>8}{res['rps']:>10,.0f}{res['p50']:>9.1f}"
                      f"{res['p90']:>9.1f}{res['p99']:>9.1f}{res['max']:>9.1f}{res['errors']:>8}"
                      f"  {verdict}", flush=True)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
