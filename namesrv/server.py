"""The name server process: a remoting listener, the route tables and the expiry scan.

Serves the request codes wired in ``processor`` (103, 104, 105, 106, 206, 216) over the remoting
protocol of RocketMQ 4.x/5.x, with Java's liveness rules: a broker is dropped when its
connection closes, or when it has not re-registered within its heartbeat timeout (120 s unless
the broker sends ``heartbeatTimeoutMillis``), checked every ``scan_interval_s`` (5 s as in 5.x).

Left out: persistence (a name server is stateless; brokers re-register within 30 s), the
KV-config store, and clustering between name servers (like Java's, independent name
servers share nothing; brokers register with each of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.frame import DEFAULT_MAX_FRAME
from ferrymq.core.remoting.plain_acl import PlainAclFile
from ferrymq.core.remoting.tls import ServerTls
from ferrymq.core.remoting.transport import HandlerResult, Listener, RemotingConnection, serve
from ferrymq.namesrv.acl import Registrars, refusal, user_refusal
from ferrymq.namesrv.processor import build_dispatcher
from ferrymq.namesrv.route_info import DEFAULT_BROKER_EXPIRY_S, RemovedBroker, RouteInfoManager

if TYPE_CHECKING:  # the controller (and its Raft library) loads only when asked for
    from ferrymq.namesrv.controller.service import ControllerService

log = logging.getLogger("ferrymq.namesrv")

DEFAULT_PORT = 9876


def _peer(conn: object | None) -> str:
    return getattr(conn, "peer", "?") if conn is not None else "?"


class NameServer:
    """One name server; ``port=0`` binds a free port, readable from ``.port`` after start()."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        broker_expiry_s: float = DEFAULT_BROKER_EXPIRY_S,
        scan_interval_s: float = 5.0,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        controller: ControllerService | None = None,
        acl_file: Path | None = None,
        tls: ServerTls | None = None,
    ) -> None:
        if broker_expiry_s <= 0 or scan_interval_s <= 0:
            raise ValueError("broker_expiry_s and scan_interval_s must be positive")
        self.host = host
        self._port = port
        self.scan_interval_s = scan_interval_s
        self.max_frame = max_frame
        self.routes = RouteInfoManager(default_timeout_s=broker_expiry_s)
        self._dispatcher = build_dispatcher(self.routes)
        #: the failover controller node this name server runs, if any (namesrv/controller)
        self.controller = controller
        if controller is not None:
            for code, handler in controller.handlers().items():
                self._dispatcher.register(code, handler)
        #: plain_acl.yml: registrations must be signed by an admin account (namesrv/acl.py)
        self.acl = PlainAclFile(acl_file) if acl_file is not None else None
        self._acl_task: asyncio.Task[None] | None = None
        #: ACL 2.0 users, set by ``ferrymq serve`` once its broker runs: they sign registrations instead
        self.registrars: Registrars | None = None
        #: RocketMQ's tls.server.mode on the name server's port (core/remoting/tls.py)
        self.tls = tls
        self._server: Listener | None = None
        self._scan_task: asyncio.Task[None] | None = None
        # Connections that have sent a request, so stop() can close them (Python 3.11's
        # asyncio.Server cannot close its clients itself).
        self._connections: set[RemotingConnection] = set()

    @property
    def port(self) -> int:
        """The bound port once started (so ``port=0`` works), the configured one before."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def is_running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("name server already started")
        self._server = await serve(
            self._handle,
            self.host,
            self._port,
            max_frame=self.max_frame,
            on_close=self._on_close,
            tls=self.tls,
        )
        self._scan_task = asyncio.get_running_loop().create_task(self._scan_loop(), name="namesrv-scan")
        if self.acl is not None:
            self._acl_task = asyncio.get_running_loop().create_task(self.acl.watch(), name="namesrv-acl")
        if self.controller is not None:
            self.controller.start()
        log.info(
            "name server listening on %s:%d (broker expiry %.1fs, scan every %.1fs)",
            self.host,
            self.port,
            self.routes.default_timeout_s,
            self.scan_interval_s,
        )

    async def stop(self) -> None:
        """Stop listening, close client connections and the scan task; idempotent."""
        server, self._server = self._server, None
        for task in (self._scan_task, self._acl_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._scan_task = self._acl_task = None
        if server is None:
            return
        if self.controller is not None:
            await self.controller.stop()
        server.close()
        conns = list(self._connections)
        for conn in conns:
            conn.close()
        await server.wait_closed()
        if conns:
            await asyncio.wait([asyncio.ensure_future(c.closed.wait()) for c in conns], timeout=2.0)
        log.info("name server stopped")

    async def __aenter__(self) -> NameServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- connections -----------------------------------------------------------------------------

    def _handle(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        self._connections.add(conn)
        if self.registrars is not None:
            if (refused := user_refusal(self.registrars, cmd, conn.peer)) is not None:
                return refused
        elif self.acl is not None and (refused := refusal(self.acl, cmd, conn.peer)) is not None:
            return refused
        return self._dispatcher(cmd, conn)

    def _on_close(self, conn: RemotingConnection) -> None:
        self._connections.discard(conn)
        if self.controller is not None:
            self.controller.on_connection_closed(conn)
        for gone in self.routes.on_connection_closed(conn):
            log.info(
                "broker %s (cluster=%s name=%s id=%s) removed: connection from %s closed",
                gone.broker_addr,
                gone.cluster_name,
                gone.broker_name,
                gone.broker_id,
                conn.peer,
            )

    # ---- expiry ----------------------------------------------------------------------------------

    async def _scan_loop(self) -> None:
        while True:
            await asyncio.sleep(self.scan_interval_s)
            try:
                self.scan_now()
            except Exception:  # the scan must survive a bug in one pass
                log.exception("broker expiry scan failed")

    def scan_now(self) -> list[RemovedBroker]:
        """Expire silent brokers now and close their connections, as Java closes the channel."""
        removed = self.routes.scan_not_active()
        for gone in removed:
            log.warning(
                "broker %s (cluster=%s name=%s id=%s) expired: no registration within its timeout; peer %s",
                gone.broker_addr,
                gone.cluster_name,
                gone.broker_name,
                gone.broker_id,
                _peer(gone.connection),
            )
            if isinstance(gone.connection, RemotingConnection):
                gone.connection.close()
        return removed
