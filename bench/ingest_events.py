"""Collection-API throughput: Segment-style batches of 100 events from 16 concurrent clients.

Starts `accord serve` (one uvicorn process, SQLite) in a subprocess with a tracking source whose
known users were identified and resolved beforehand, then drives it from ONE separate load
process: an asyncio loop holding C keep-alive HTTP/1.1 connections, each POSTing `/v1/batch`
requests of B events back to back (a closed loop). Every event has a fresh messageId; most are
`track` and `page` calls of known users (they land on the customer's timeline at once), a fifth
are anonymous visitors (kept pending until they identify). In the same run and over the same
connections it measures `GET /health/live` as the baseline of the HTTP stack and the machine.
Prints events/s, batches/s, p50/p99 latency per request, the server's CPU per event, and checks
afterwards that every event is in the database exactly once. Target: 10,000 events/s.

    python bench/ingest_events.py [--seconds 10] [--clients 16] [--batch 100] [--users 1000]
                                  [--workers 1]
    python bench/ingest.py --only events [...]          # the same figure
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
TARGET = 10_000
EVENTS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed",
          "Newsletter Signed Up", "Video Played")
PAGES = ("Home", "Pricing", "Docs", "Blog", "Careers", "Contact")


def prepare(db: Path, users: int) -> str:
    """Migrate, register the `web` source, identify and resolve `users` people; the write key."""
    os.environ["ACCORD_DATABASE_URL"] = f"sqlite:///{db}"
    from accord.access.policy import SYSTEM
    from accord.core.db import dispose_all, session_scope
    from accord.core.migrate import upgrade
    from accord.core.settings import reset_settings
    from accord.integration import collection
    from accord.integration.resolution import resolve_pending
    from accord.integration.sources import create_source, mint_write_key

    reset_settings()
    dispose_all()
    upgrade()
    with session_scope() as session:
        source = create_source(session, SYSTEM, name="web", kind="tracking", trust_rank=60)
        key = mint_write_key(session, SYSTEM, source)
        identifies = [{"type": "identify", "userId": f"user-{i}", "messageId": f"id-{i}",
                       "traits": {"email": f"user{i}@example.com", "firstName": "Test",
                                  "lastName": f"User{i}"}} for i in range(users)]
        collection.collect(session, source, identifies)
    with session_scope() as session:
        resolve_pending(session)
    dispose_all()
    return key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the server and its uvicorn workers (shared with customer_read)."""
    from customer_read import cpu_seconds as measure  # bench/ is the script's directory

    return measure(pid)


def start_server(db: Path, port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ACCORD_DATABASE_URL": f"sqlite:///{db}",
           "ACCORD_EMBEDDED_WORKER": "false", "ACCORD_ENVIRONMENT": "development"}
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "accord.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--no-worker", "--workers", str(workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 60 s")


# --- the load process -----------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length) if length else b""


class Batches:
    """Fresh `/v1/batch` requests: unique messageIds, a mix of known and anonymous visitors."""

    def __init__(self, key: str, size: int, users: int, seed: int) -> None:
        import base64

        self.auth = base64.b64encode(f"{key}:".encode()).decode()
        self.size, self.users = size, users
        self.rnd = random.Random(seed)
        self.n = 0

    def _event(self) -> dict[str, Any]:
        self.n += 1
        rnd = self.rnd
        who: dict[str, str] = ({"anonymousId": f"anon-{rnd.randrange(50_000)}"}
                               if rnd.random() < 0.2 else
                               {"userId": f"user-{rnd.randrange(self.users)}"})
        minute, second = divmod(self.n % 3600, 60)
        stamp = f"2024-05-01T12:{minute:02d}:{second:02d}.000Z"
        if rnd.random() < 0.5:
            return {"type": "page", **who, "name": rnd.choice(PAGES),
                    "messageId": f"{os.getpid()}-{self.n}", "timestamp": stamp,
                    "context": {"page": {"url": "https://example.com/x", "path": "/x"},
                                "library": {"name": "analytics.js", "version": "2.11.1"}}}
        return {"type": "track", **who, "event": rnd.choice(EVENTS),
                "messageId": f"{os.getpid()}-{self.n}", "timestamp": stamp,
                "properties": {"sku": f"SKU-{rnd.randrange(500)}", "price": 19.99},
                "context": {"library": {"name": "analytics.js", "version": "2.11.1"}}}

    def request(self) -> bytes:
        body = json.dumps({"batch": [self._event() for _ in range(self.size)],
                           "sentAt": "2024-05-01T13:00:00.000Z"}).encode()
        return (b"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Authorization: Basic {self.auth}\r\nContent-Length: {len(body)}\r\n\r\n"
                .encode() + body)


LIVE = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def _client(port: int, make: Any, start: asyncio.Event, state: dict[str, Any],
                  latencies: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    state["ready"] += 1
    await start.wait()
    clock = time.perf_counter
    while True:
        request = make()
        t0 = clock()
        if t0 >= state["stop_at"]:
            break
        writer.write(request)
        status, body = await _read_response(reader)
        latencies.append(clock() - t0)
        if status != 200 or (b'"rejected":[]' not in body and b"rejected" in body):
            errors.append(f"{status} {body[:200]!r}")
    writer.close()


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    clients, seconds, port = spec["clients"], spec["seconds"], spec["port"]
    if spec["what"] == "live":
        def make() -> bytes:
            return LIVE
    else:
        batches = Batches(spec["key"], spec["batch"], spec["users"], spec["seed"])
        make = batches.request
    start = asyncio.Event()
    state: dict[str, Any] = {"ready": 0, "stop_at": float("inf")}
    latencies: list[float] = []
    errors: list[str] = []
    tasks = [asyncio.create_task(_client(port, make, start, state, latencies, errors))
             for _ in range(clients)]
    while state["ready"] < clients:
        await asyncio.sleep(0.01)
    began = time.perf_counter()
    state["stop_at"] = began + seconds
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - began
    latencies.sort()
    n = len(latencies)

    def pct(q: float) -> float:
        return latencies[min(n - 1, int(q * n))] * 1000 if n else float("nan")

    return {"requests": n, "elapsed": elapsed, "errors": errors[:5], "error_count": len(errors),
            "p50": pct(0.50), "p99": pct(0.99)}


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    """The load runs in its own process, never in the server's or this one."""
    proc = subprocess.run([sys.executable, __file__, "--load"], input=json.dumps(spec),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"load process failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the figure -----------------------------------------------------------------------------------


def events_figure(args: argparse.Namespace, work: Path) -> None:
    """The figure; `bench/ingest.py --only events` calls it with its own arguments."""
    for name, default in (("seconds", 10.0), ("clients", 16), ("batch", 100), ("users", 1000),
                          ("seed", 7), ("workers", 1)):
        if getattr(args, name, None) is None:
            setattr(args, name, default)
    db = work / "events.db"
    print(f"preparing {args.users:,} identified users ...", flush=True)
    key = prepare(db, args.users)
    port = free_port()
    server = start_server(db, port, work / "server.log", args.workers)
    try:
        base = {"port": port, "clients": args.clients, "seconds": args.seconds}
        live = run_load({**base, "what": "live"})
        cpu0 = cpu_seconds(server.pid)
        res = run_load({**base, "what": "events", "key": key, "batch": args.batch,
                        "users": args.users, "seed": args.seed})
        cpu = cpu_seconds(server.pid) - cpu0
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    from sqlalchemy import func, select

    from accord.core.db import dispose_all, session_scope
    from accord.models import Interaction, SourceRecord

    dispose_all()
    with session_scope(write=False) as session:
        events = session.scalar(select(func.count()).select_from(SourceRecord).where(
            SourceRecord.kind == "event", SourceRecord.external_id.not_like("id-%")))
        distinct = session.scalar(select(func.count(func.distinct(SourceRecord.external_id)))
                                  .where(SourceRecord.kind == "event",
                                         SourceRecord.external_id.not_like("id-%")))
        applied = session.scalar(select(func.count()).select_from(Interaction)) - args.users
    sent = res["requests"] * args.batch
    rate = sent / res["elapsed"]
    print()
    print(f"SQLite, uvicorn workers={args.workers}, {os.cpu_count()} CPUs, {args.clients} "
          f"keep-alive connections from one asyncio load process, {args.seconds:.0f} s each")
    print("| figure | requests/s | events/s | p50 ms | p99 ms | errors | target |")
    print("|---|---|---|---|---|---|---|")
    print(f"| baseline: GET /health/live | {live['requests'] / live['elapsed']:,.0f} | | "
          f"{live['p50']:.1f} | {live['p99']:.1f} | {live['error_count']} | |")
    verdict = "met" if rate >= TARGET else "missed"
    print(f"| POST /v1/batch ({args.batch} events) | {res['requests'] / res['elapsed']:,.0f} | "
          f"{rate:,.0f} | {res['p50']:.1f} | {res['p99']:.1f} | {res['error_count']} | "
          f"{TARGET:,} events/s: {verdict} |")
    print()
    print(f"server CPU: {cpu:.1f} s for {sent:,} events = {cpu / max(sent, 1) * 1e6:.0f} µs per "
          f"event; in the database: {events:,} event records ({distinct:,} distinct message "
          f"ids) for {sent:,} sent, {applied:,} on known customers' timelines")
    if res["errors"]:
        print("first errors:", *res["errors"], sep="\n  ")
    if events != sent or distinct != sent:
        print("MISMATCH: every event sent should be stored exactly once")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--users", type=int, default=1000, help="identified users")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the load process: spec on stdin, result on stdout
        print(json.dumps(asyncio.run(_drive(json.loads(sys.stdin.read())))))
        return
    work = Path(tempfile.mkdtemp(prefix="accord-bench-events-"))
    try:
        events_figure(args, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
