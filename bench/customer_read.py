"""Read latency of the customer API under load: the 360° view and the search by e-mail.

With N generated customers (default 1,000,000) in a SQLite file, starts `accord serve` in a
subprocess and drives it from ONE separate load process: an asyncio loop holding C keep-alive
HTTP/1.1 connections (a minimal client on raw asyncio streams, so the load side costs as little
CPU as possible), each issuing requests back to back (a closed loop), at 1 and 16 concurrent
clients. Prints p50/p90/p99/max latency and requests/s for

  * GET /health/live                            baseline: the machine's and the stack's own noise
  * GET /api/v1/customers/{id}/360               target p99 < 20 ms at 16 clients
  * GET /api/v1/customers?email=...              target p99 < 10 ms

and the CPU each side spent per request (server: all its processes; load: the load process), so
the cost of a request stays visible however noisy the shared machine is. With `--workers N` it
also prints how the clients' connections were split between the worker processes in each run
(`accord serve` deals them out in turn: 16 clients over two workers split "8/8").

    python bench/customer_read.py [N] [--seconds 10] [--clients 1,16] [--db FILE] [--workers 1]
                                  [--repeat K] [--audit-entries M]

Every read appends an audit entry, so a server that has run for a while has an audit trail many
times its customer count, and the cost of each append depends on that trail's size. The database
is therefore given a trail of at least M entries (default 5,000,000: reads of random customers,
chained as the server chains them) before it is measured.

`--db FILE` reuses (or creates and keeps) a generated database, so repeated runs skip generation.
`--repeat K` measures every row K times (interleaved) and prints the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGETS = {"360": 20.0, "search": 10.0}


def seed_audit_trail(entries: int, seed: int) -> int:
    """Top the audit trail up to `entries` with read entries of random customers, written by the
    server's own group-commit path; returns the trail's size."""
    from sqlalchemy import func, select

    from accord.access import audit
    from accord.access.policy import Principal
    from accord.core.db import get_engine
    from accord.models import AuditEntry, Customer

    engine = get_engine()
    with engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        top = conn.execute(select(func.max(Customer.id))).scalar_one()
    if have >= entries:
        return have
    print(f"appending {entries - have:,} read entries to the audit trail ...", flush=True)
    reader = Principal(user_id=None, email="bench@accord.invalid", role="admin", via="api")
    fields = ["addresses", "date_of_birth", "emails", "first_name", "last_name", "phones"]
    rnd = random.Random(seed)
    url = engine.url.render_as_string(hide_password=False)
    with engine.connect() as conn:
        while have < entries:
            batch = [audit._pending_read(reader, "customers", [rnd.randint(1, top)], fields,
                                         {"via": "api.360"}, url)
                     for _ in range(min(20_000, entries - have))]
            with conn.begin():
                audit._insert_reads(conn, [item for item in batch if item is not None])
            have += len(batch)
    return have


def prepare(db: Path, customers: int, seed: int) -> tuple[str, list[int], list[str]]:
    """Generate (once), mint an admin token, sample customer ids and primary e-mails."""
    from sqlalchemy import func, select

    from accord.access import service
    from accord.access.schemas import TokenCreate
    from accord.core.db import get_engine, session_scope
    from accord.core.migrate import upgrade
    from accord.demo.generator import Progress, demo_exists, generate
    from accord.models import Customer, CustomerEmail, User

    upgrade()
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


def start_server(db: Path, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ACCORD_DATABASE_URL": f"sqlite:///{db}",
           "ACCORD_EMBEDDED_WORKER": "false"}
    with log.open("wb") as err:  # a file, not a pipe nobody reads (a full pipe blocks the server)
        proc = subprocess.Popen(
            [sys.executable, "-m", "accord.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--no-worker", "--workers", str(workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        status, _ = asyncio.run(_get_once(port, "/health/live"))
        if status == 200:
            return proc
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 60 s")


def _process_tree(pid: int) -> list[int]:
    """A process and all its live descendants (Linux /proc)."""
    found, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
        found.append(p)
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its live descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def connection_split(server_pid: int, port: int) -> list[int]:
    """How many of the established connections to `port` each serving process holds, largest
    first (Linux /proc). `accord serve --workers N` deals connections out in turn, so 16 clients
    split 8/8; where the kernel picks (a shared accepting socket) the split is a lottery."""
    established: set[str] = set()  # socket inodes of established connections on the port
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == "01":
                    established.add(cols[9])
    held: dict[int, int] = {}
    for p in _process_tree(server_pid):
        with contextlib.suppress(OSError):
            if p != server_pid and b"resource_tracker" in Path(f"/proc/{p}/cmdline").read_bytes():
                continue
            held[p] = 0
            for fd in Path(f"/proc/{p}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    held[p] += link.startswith("socket:[") and link[8:-1] in established
    if len(held) > 1:
        held.pop(server_pid, None)  # the supervisor: it accepts, its workers serve
    return sorted(held.values(), reverse=True)


# --- the load process: one asyncio loop, C keep-alive connections --------------------------------

async def _read_response(reader: asyncio.StreamReader) -> int:
    """Status code of one HTTP/1.1 response; its body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


def _request(path: str, token: str | None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()


async def _get_once(port: int, path: str) -> tuple[int, bytes]:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return 0, b""
    try:
        writer.write(_request(path, None).replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        return await _read_response(reader), b""
    except (OSError, asyncio.IncompleteReadError):
        return 0, b""
    finally:
        writer.close()


async def _client(port: int, requests: list[bytes], start: asyncio.Event, state: dict[str, float],
                  latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for req in requests[-3:]:  # warm-up: connection, token, caches
        writer.write(req)
        await _read_response(reader)
    state["ready"] += 1
    await start.wait()
    clock = time.perf_counter
    stop_at = state["stop_at"]
    i = 0
    n = len(requests)
    while True:
        t0 = clock()
        if t0 >= stop_at:
            break
        writer.write(requests[i % n])
        status = await _read_response(reader)
        latencies.append(clock() - t0)
        if status != 200:
            errors.append(status)
        i += 1
    writer.close()


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    clients, seconds, port = spec["clients"], spec["seconds"], spec["port"]
    requests = [_request(p, spec["token"]) for p in spec["paths"]]
    start = asyncio.Event()
    state = {"ready": 0.0, "stop_at": float("inf")}
    latencies: list[float] = []
    errors: list[int] = []
    tasks = [asyncio.create_task(_client(port, requests[k::clients] or requests, start, state,
                                         latencies, errors)) for k in range(clients)]
    while state["ready"] < clients:
        await asyncio.sleep(0.01)
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()  # type: ignore[misc]
    split = connection_split(spec["server_pid"], port)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    server0 = cpu_seconds(spec["server_pid"])
    began = time.perf_counter()
    state["stop_at"] = began + seconds
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    server1 = cpu_seconds(spec["server_pid"])
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    load_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    latencies.sort()
    n = len(latencies)
    pct = lambda q: latencies[min(n - 1, int(q * n))] * 1000 if n else float("nan")  # noqa: E731
    return {"requests": n, "errors": len(errors), "rps": n / elapsed, "p50": pct(0.50),
            "p90": pct(0.90), "p99": pct(0.99), "max": latencies[-1] * 1000 if n else float("nan"),
            "server_ms": (server1 - server0) * 1000 / max(n, 1),
            "load_ms": load_cpu * 1000 / max(n, 1),
            "statuses": sorted(set(errors)), "split": split}


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
    parser.add_argument("--repeat", type=int, default=1, help="measure K times, print medians")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--audit-entries", type=int, default=5_000_000,
                        help="the audit trail's size to measure with (see above)")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the load process: spec on stdin, result on stdout
        print(json.dumps(asyncio.run(_drive(json.loads(sys.stdin.read())))))
        return

    tmp = Path(tempfile.mkdtemp(prefix="accord-bench-read-"))
    db = tmp / "accord.db" if args.db is None else args.db.resolve()
    os.environ["ACCORD_DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.setdefault("ACCORD_ENVIRONMENT", "development")
    server = None
    log = tmp / "server.log"
    try:
        token, ids, emails = prepare(db, args.customers, args.seed)
        trail = seed_audit_trail(args.audit_entries, args.seed)
        port = free_port()
        server = start_server(db, port, args.workers, log)
        scenarios = {
            "live": ["/health/live"],
            "360": [f"/api/v1/customers/{i}/360" for i in ids],
            "search": [f"/api/v1/customers?email={e}" for e in emails],
        }
        levels = [int(x) for x in args.clients.split(",")]
        print(f"\n{args.customers:,} customers (SQLite {db.name}), uvicorn workers={args.workers}, "
              f"{os.cpu_count()} CPUs, {trail:,} audit entries, {args.seconds:g} s per measurement"
              + (f", medians of {args.repeat}" if args.repeat > 1 else ""))
        print(f"{'endpoint':<10}{'clients':>8}{'req/s':>9}{'p50 ms':>8}{'p90 ms':>8}"
              f"{'p99 ms':>8}{'max ms':>8}{'errors':>7}{'srv CPU':>8}{'load CPU':>9}  target")
        print(f"{'':<10}{'':>8}{'':>9}{'':>8}{'':>8}{'':>8}{'':>8}{'':>7}{'ms/req':>8}"
              f"{'ms/req':>9}")
        for clients in levels:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in scenarios}
            for _ in range(args.repeat):
                for name, paths in scenarios.items():
                    runs[name].append(run_load_process(
                        {"port": port, "token": token, "paths": paths, "clients": clients,
                         "seconds": args.seconds, "server_pid": server.pid}))
            for name, results in runs.items():
                res = {k: statistics.median(r[k] for r in results)
                       for k in ("rps", "p50", "p90", "p99", "max", "server_ms", "load_ms")}
                errors = sum(r["errors"] for r in results)
                statuses = sorted({s for r in results for s in r["statuses"]})
                target = TARGETS.get(name)
                verdict = ""
                if target is not None:
                    verdict = f"p99 < {target:.0f} ms: {'ok' if res['p99'] < target else 'MISSED'}"
                if statuses:
                    verdict += f"  statuses {statuses}"
                if args.workers > 1:  # the clients' connections per worker, in each run
                    verdict += "  split " + ", ".join(
                        "/".join(map(str, r["split"])) for r in results)
                print(f"{name:<10}{clients:>8}{res['rps']:>9,.0f}{res['p50']:>8.1f}"
                      f"{res['p90']:>8.1f}{res['p99']:>8.1f}{res['max']:>8.1f}{errors:>7}"
                      f"{res['server_ms']:>8.2f}{res['load_ms']:>9.2f}  {verdict}", flush=True)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        if log.exists() and server is not None and "Traceback" in log.read_text(errors="replace"):
            print(f"\nserver errors (tail of its log):\n{log.read_text(errors='replace')[-3000:]}")
        shutil.rmtree(tmp, ignore_errors=True)  # the generated DB too, unless --db kept it


if __name__ == "__main__":
    main()
