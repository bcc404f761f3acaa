"""Runs the admin app inside the broker's process and event loop: uvicorn serving a socket we
bind ourselves (so port 0 works and a busy port fails start-up with an OSError, not an exit),
without uvicorn's own signal handling (the ferrymq command owns SIGINT/SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

import uvicorn

from ferrymq.core.broker.frontend_view import FrontendView
from ferrymq.core.broker.group_views import GroupProvider
from ferrymq.core.broker.routes_source import ClusterSource
from ferrymq.core.remoting.tls import server_context
from ferrymq.core.remoting.transport import serve_tls_only
from ferrymq.gateway.admin.app import create_app
from ferrymq.gateway.admin.context import AdminContext
from ferrymq.gateway.admin.frontends import batch_decoder
from ferrymq.gateway.admin.launcher import bind
from ferrymq.gateway.admin.message_view import BatchDecoder

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.admin")


class _Server(uvicorn.Server):
    #: adminTlsEnable: HTTPS through core's TLS-only listener, which logs each refused connection
    #: with its peer (uvicorn's own TLS drops bad handshakes silently)
    tls: ssl.SSLContext | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if self.tls is None or not sockets:
            await super().startup(sockets)
            return
        await super().startup([])  # the app and state, no listener: ours serves the sockets
        config, state = self.config, self.server_state

        def protocol() -> asyncio.Protocol:
            # what uvicorn's own startup builds per connection
            make: Any = config.http_protocol_class
            made: asyncio.Protocol = make(config=config, server_state=state, app_state=self.lifespan.state)
            return made

        refusal = "plaintext on the admin HTTPS port (adminTlsEnable)"
        for sock in sockets:
            listener = await serve_tls_only(protocol, self.tls, refusal, sock=sock)
            self.servers.append(cast(asyncio.Server, listener))  # closed and awaited by shutdown


class AdminServer:
    """``start()`` binds and serves; ``port`` is the bound port; ``stop()`` finishes requests."""

    def __init__(
        self,
        broker: Broker,
        routes: ClusterSource,
        host: str,
        port: int,
        *,
        token: str | None = None,
        read_open: bool = False,
        sock: socket.socket | None = None,
    ) -> None:
        """``sock``: an already listening socket to serve (AdminLauncher binds it early)."""
        self.host = host
        c = broker.config
        open_paths = tuple(p.strip() for p in c.admin_open_paths.split(",") if p.strip())
        self.ctx = AdminContext(broker, routes, token or None, read_open, open_paths)
        #: adminTlsEnable: HTTPS with the tls.server certificate (and client certificates if asked)
        self.tls = c.admin_tls_enable
        self.app = create_app(self.ctx)
        self._requested_port = port
        self._sock: socket.socket | None = sock
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        broker.stats.latency.attach(broker.dispatcher)

    def add_frontend(self, frontend: FrontendView) -> None:
        """Show a protocol frontend's groups under /api/groups and its batch entries (Kafka
        record batches) record by record."""
        self.add_group_provider(frontend.groups)
        for fmt in frontend.batch_formats:
            self.add_batch_decoder(fmt, batch_decoder(frontend, fmt))

    def add_group_provider(self, provider: GroupProvider) -> None:
        """Show another protocol's groups under /api/groups."""
        self.ctx.groups.add(provider)

    def add_batch_decoder(self, fmt: int, decoder: BatchDecoder) -> None:
        """Expand batch entries of format ``fmt`` into records when messages are viewed."""
        self.ctx.batch_decoders[fmt] = decoder

    @property
    def open_connections(self) -> int:
        """HTTP connections open now (/metrics' admin listener)."""
        return len(self._server.server_state.connections) if self._server is not None else 0

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    async def start(self) -> None:
        if self._sock is None:
            self._sock = bind(self.host, self._requested_port)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=3,
            ws="none",
        )
        self._server = _Server(config)
        if self.tls:
            c = self.ctx.broker.config
            self._server.tls = server_context(c.tls_server_files, c.tls_server_need_client_auth)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]), name="admin-http")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what went wrong
                raise RuntimeError("admin server stopped during start-up")
            await asyncio.sleep(0.01)
        log.info(
            "admin API and console on %s://%s:%d/", "https" if self.tls else "http", self.host, self.port
        )

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            try:
                await self._task
            except Exception:
                log.exception("admin server stopped with an error")
        if self._sock is not None:
            self._sock.close()
        await self.ctx.routes.close()
