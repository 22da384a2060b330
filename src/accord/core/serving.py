"""How `accord serve` runs uvicorn: TCP_NODELAY on every connection, and, with several worker
processes, a supervisor that deals connections out to them in turn.

uvicorn's own `--workers N` lets every worker accept from one shared socket, so the kernel gives
each new connection to whichever worker wakes first. With a few long-lived keep-alive clients
(touchpoint services with connection pools, a load balancer's upstream connections) that split is
a lottery: 16 clients over two workers came out anywhere from 8/8 to 16/0, and a worker holding
15 of them serves them like a single process while the other idles. Here the supervisor accepts
and passes each connection's descriptor to the next worker over a Unix socket (SCM_RIGHTS), as
Node's cluster module does, so N clients always split as evenly as N allows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import time
from multiprocessing.context import SpawnProcess
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.protocols.http.auto import AutoHTTPProtocol

logger = logging.getLogger("uvicorn.error")

#: Whether this platform can pass descriptors between processes (not Windows).
CAN_HAND_OFF = hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


class NoDelayHTTP(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """With `--workers N` uvicorn binds the listening socket itself with `proto` 0; accepted
    sockets inherit it and asyncio then skips TCP_NODELAY, so every keep-alive response after the
    first waits ~40 ms for the client's delayed ACK (uvicorn issue #3149). Setting the option here
    works for one worker and many, on whichever implementation uvicorn's "auto" picks."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)


class HandoffServer(uvicorn.Server):
    """A worker that listens on nothing: it serves the connections its supervisor accepted and
    passed over `channel`, and shuts down gracefully when the supervisor closes the channel."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self._starting: set[asyncio.Task[Any]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # lifespan and state; no listener of its own
        loop = asyncio.get_running_loop()
        self.channel.setblocking(False)
        loop.add_reader(self.channel.fileno(), self._take, loop)

    def _protocol(self) -> asyncio.Protocol:
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state)

    def _take(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.channel, 1, 1)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data and not fds:  # the supervisor is gone or stopping: finish and exit
                loop.remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                task = loop.create_task(
                    loop.connect_accepted_socket(self._protocol, socket.socket(fileno=fd)))
                self._starting.add(task)
                task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task[Any]) -> None:
        self._starting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("could not serve a handed-over connection: %s", task.exception())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        with contextlib.suppress(ValueError, OSError):  # already removed at end of channel
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
        self.channel.close()
        await super().shutdown(sockets)


def _worker_main(config: uvicorn.Config, channel: socket.socket) -> None:  # pragma: no cover
    """Entry point of a spawned worker (runs in the child; its coverage is the tests' HTTP)."""
    config.configure_logging()
    server = HandoffServer(config, channel)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class _Worker:
    def __init__(self, config: uvicorn.Config) -> None:
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.channel.setblocking(False)  # a stuck worker must not stall the supervisor
        self.process: SpawnProcess = multiprocessing.get_context("spawn").Process(
            target=_worker_main, args=(config, theirs), daemon=False)
        self.process.start()
        theirs.close()

    def hand(self, conn: socket.socket) -> bool:
        try:
            return socket.send_fds(self.channel, [b"c"], [conn.fileno()]) == 1
        except OSError:  # full (not reading) or gone: the caller tries the next worker
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.channel.close()


class Dispatcher:
    """Supervises `workers` server processes, hands them accepted connections in turn and
    replaces any that dies. SIGINT/SIGTERM stop accepting and let the workers finish what they
    are serving (uvicorn's graceful shutdown) before they exit."""

    def __init__(self, config: uvicorn.Config, workers: int) -> None:
        self.config = config
        self.count = workers
        self.workers: list[_Worker] = []
        self.should_exit = False
        self.failed = False  # a worker could not start: restarting it would fail the same way
        self._turn = 0

    def _stop(self, signum: int, _frame: object) -> None:
        logger.info("Received %s, stopping the workers.", signal.Signals(signum).name)
        self.should_exit = True

    def run(self, sock: socket.socket | None = None) -> None:
        listener = sock or self.config.bind_socket()
        listener.listen(self.config.backlog)  # uvicorn's bind leaves listening to the server
        listener.setblocking(False)
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGINT, signal.SIGTERM)}
        self.workers = [_Worker(self.config) for _ in range(self.count)]
        logger.info("Started supervisor [%d] with %d workers", os.getpid(), self.count)
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(listener, selectors.EVENT_READ)
                while not self.should_exit:
                    if selector.select(timeout=0.5):
                        self._accept(listener)
                    self._replace_dead()
        finally:
            listener.close()
            self._stop_workers()
            for s, handler in previous.items():
                signal.signal(s, handler)
        if self.failed:
            sys.exit(STARTUP_FAILURE)

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(64):  # a burst of connections, then the workers' health again
            try:
                conn, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors and the like: log, pause, go on
                logger.warning("accept failed: %s", exc)
                time.sleep(0.1)
                return
            with conn:  # the worker holds its own copy once sent
                for _ in range(len(self.workers)):
                    worker = self.workers[self._turn % len(self.workers)]
                    self._turn += 1
                    if worker.hand(conn):
                        break
                else:
                    logger.warning("no worker could take a connection; it was closed")

    def _replace_dead(self) -> None:
        for i, worker in enumerate(self.workers):
            if worker.process.is_alive():
                continue
            worker.close()
            if worker.process.exitcode == STARTUP_FAILURE:
                logger.error("Worker [%s] failed to start; stopping.", worker.process.pid)
                self.should_exit = self.failed = True
                return
            logger.info("Worker [%s] died (exit %s); starting another.",
                        worker.process.pid, worker.process.exitcode)
            self.workers[i] = _Worker(self.config)

    def _stop_workers(self) -> None:
        for worker in self.workers:
            worker.close()  # end of channel: each worker finishes its requests and exits
        deadline = time.monotonic() + (self.config.timeout_graceful_shutdown or 30)
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()


def serve(workers: int, **options: Any) -> None:
    """Run uvicorn with `options` (uvicorn.run's keywords): in this process for one worker or
    where descriptors cannot be passed, else under a `Dispatcher`."""
    if workers <= 1 or not CAN_HAND_OFF:
        uvicorn.run(workers=workers, **options)
        return
    Dispatcher(uvicorn.Config(workers=workers, **options), workers).run()
