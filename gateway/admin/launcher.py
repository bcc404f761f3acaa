"""The admin API's listening socket now, the app behind it on first use.

Importing FastAPI, uvicorn and the routers takes longer than the rest of a broker's start and
about 15 MB, and many brokers are never looked at. ``AdminLauncher.start()`` binds the port (so a
busy port still fails start-up, and port 0 is known at once) and watches it: the first incoming
connection (or ``ready()``) loads the app in a worker thread; that connection waits in the listen
backlog meanwhile (under a second) and is served once the app is up. What the ``ferrymq``
command hands over before that (frontends) is kept and passed on. This module imports nothing
heavy: the command imports it to start.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
from typing import TYPE_CHECKING

from ferrymq.core.broker.frontend_view import FrontendView
from ferrymq.core.broker.listeners import CountedListener
from ferrymq.core.broker.routes_source import ClusterSource

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.gateway.admin.server import AdminServer

log = logging.getLogger("ferrymq.admin")


def bind(host: str, port: int) -> socket.socket:
    """A listening non-blocking TCP socket (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _log_failure(task: asyncio.Task[AdminServer]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the admin API failed to start", exc_info=task.exception())


class AdminLauncher:
    """``start()`` binds; the app loads and serves in the background; ``ready()`` awaits it."""

    def __init__(
        self,
        broker: Broker,
        routes: ClusterSource,
        host: str,
        port: int,
        *,
        token: str | None = None,
        read_open: bool = False,
    ) -> None:
        self._args = (broker, routes, host)
        self._token = token
        self._read_open = read_open
        self._requested_port = port
        self._routes = routes
        self._sock: socket.socket | None = None
        self._frontends: list[FrontendView] = []
        self._task: asyncio.Task[AdminServer] | None = None
        self.server: AdminServer | None = None

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    async def start(self) -> None:
        broker = self._args[0]
        broker.stats.latency.attach(broker.dispatcher)  # /metrics' latencies count from the start
        broker.listeners["admin"] = CountedListener(
            lambda: self.server.open_connections if self.server else 0
        )
        self._sock = bind(self._args[2], self._requested_port)
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._begin_load)

    def _begin_load(self) -> asyncio.Task[AdminServer]:
        """Load the app (once): on the first connection, or when ``ready()`` is awaited."""
        if self._task is None:
            assert self._sock is not None, "start() first"
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._task = asyncio.create_task(self._load(self._sock), name="admin-load")
            self._task.add_done_callback(_log_failure)
        return self._task

    async def _load(self, sock: socket.socket) -> AdminServer:
        module = await asyncio.to_thread(importlib.import_module, "ferrymq.gateway.admin.server")
        broker, routes, host = self._args
        server: AdminServer = module.AdminServer(
            broker, routes, host, 0, token=self._token, read_open=self._read_open, sock=sock
        )
        for frontend in self._frontends:
            server.add_frontend(frontend)
        self.server = server  # frontends added from now on go straight to it
        await server.start()
        return server

    async def ready(self) -> AdminServer:
        """The running admin server, once loaded (raises what went wrong if it could not start)."""
        return await asyncio.shield(self._begin_load())

    def add_frontend(self, frontend: FrontendView) -> None:
        """Show a protocol frontend in the admin API (see ``AdminServer.add_frontend``)."""
        if self.server is not None:
            self.server.add_frontend(frontend)
        else:
            self._frontends.append(frontend)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None and self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass  # a failure was logged when it happened
        if self.server is not None:
            await self.server.stop()  # closes the socket and the routes
        else:
            if self._sock is not None:
                self._sock.close()
            await self._routes.close()
