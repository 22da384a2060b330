"""Several server processes: the supervisor deals connections out in turn, replaces a worker that
dies, stops gracefully, and gives up when workers cannot start."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from accord.core import serving

pytestmark = pytest.mark.skipif(not serving.CAN_HAND_OFF, reason="no descriptor passing here")

ROOT = Path(__file__).resolve().parents[2]
SUPERVISOR = """
import socket, sys, uvicorn
from accord.core.serving import Dispatcher
sock = socket.socket()
sock.bind(("127.0.0.1", 0))  # bound, not listening: as uvicorn's Config.bind_socket leaves it
print(sock.getsockname()[1], flush=True)
config = uvicorn.Config("tests.core.pid_app:app", http="accord.core.serving:NoDelayHTTP",
                        lifespan="on", log_level="warning", timeout_graceful_shutdown=10)
Dispatcher(config, int(sys.argv[1])).run(sock)
"""


def start(workers: int, **env: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(workers)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, **env})
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    deadline = time.monotonic() + 30
    while proc.poll() is None:  # printed once bound; the supervisor listens a moment later
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the supervisor never listened"
            time.sleep(0.05)
    return proc, port


@pytest.fixture
def two_workers() -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc, port = start(2)
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def pid_of(conn: http.client.HTTPConnection, delay: float = 0.0) -> int:
    conn.request("GET", f"/?{delay}" if delay else "/")
    response = conn.getresponse()
    assert response.status == 200
    return int(response.read())


def connect(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=20)


def test_connections_are_dealt_out_in_turn_and_stay_with_their_worker(two_workers):
    proc, port = two_workers
    conns = [connect(port) for _ in range(8)]
    first = [pid_of(c) for c in conns]
    # keep-alive: every later request on a connection is served by the same process
    for _ in range(3):
        assert [pid_of(c) for c in conns] == first
    split = Counter(first)
    assert len(split) == 2 and set(split.values()) == {4}
    assert proc.pid not in split  # the supervisor accepts, it does not serve
    # in turn: consecutive connections alternate
    assert all(a != b for a, b in zip(first, first[1:], strict=False))
    for c in conns:
        c.close()


def test_a_worker_that_dies_is_replaced(two_workers):
    _proc, port = two_workers
    with_first = connect(port)
    victim = pid_of(with_first)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    seen: set[int] = set()
    while time.monotonic() < deadline and len(seen) < 2:
        conn = connect(port)
        try:
            seen.add(pid_of(conn))
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)  # handed to the replacement before it took over its channel
        finally:
            conn.close()
    assert len(seen) == 2 and victim not in seen


def test_sigterm_lets_requests_in_flight_finish(two_workers):
    proc, port = two_workers
    conn = connect(port)
    worker = pid_of(conn)
    conn.request("GET", "/?1.0")
    time.sleep(0.3)  # the request is being served
    proc.send_signal(signal.SIGTERM)
    response = conn.getresponse()
    assert response.status == 200 and int(response.read()) == worker
    assert proc.wait(timeout=20) == 0
    with pytest.raises(ProcessLookupError):  # the workers are gone too
        os.kill(worker, 0)
    with pytest.raises(OSError):
        pid_of(connect(port))


def test_workers_that_cannot_start_stop_the_supervisor():
    proc, _port = start(2, ACCORD_TEST_FAIL_STARTUP="1")
    try:
        assert proc.wait(timeout=60) == 3  # uvicorn's STARTUP_FAILURE, not a restart loop
    finally:
        if proc.poll() is None:
            proc.kill()


def test_one_worker_runs_uvicorn_in_process(monkeypatch):
    import uvicorn

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda **kw: seen.update(kw))
    monkeypatch.setattr(serving, "Dispatcher", None)  # would fail if it were used
    serving.serve(1, app="tests.core.pid_app:app", port=0)
    assert seen == {"app": "tests.core.pid_app:app", "port": 0, "workers": 1}


def test_several_workers_run_under_the_dispatcher(monkeypatch):
    import uvicorn

    seen: dict = {}

    class Recorder:
        def __init__(self, config: uvicorn.Config, workers: int) -> None:
            seen.update(app=config.app, port=config.port, workers=workers,
                        config_workers=config.workers)

        def run(self) -> None:
            seen["ran"] = True

    monkeypatch.setattr(uvicorn, "run", None)  # would fail if it were used
    monkeypatch.setattr(serving, "Dispatcher", Recorder)
    serving.serve(3, app="tests.core.pid_app:app", port=8123)
    assert seen == {"app": "tests.core.pid_app:app", "port": 8123, "workers": 3,
                    "config_workers": 3, "ran": True}
