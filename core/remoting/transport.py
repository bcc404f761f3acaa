"""Thin asyncio glue over the sans-IO codec, shared by broker, name server and client.

``RemotingConnection`` is one TCP connection, server or client side alike: requests that arrive
go to a handler, responses that arrive resolve the future of the request with the same opaque.
Handlers return a response, ``None`` (no response), or an awaitable of either, so that a long
poll can park without blocking the connection. Garbage (a FrameError) closes the connection and
is logged with the peer; it never reaches the handler or other connections.

A server's connections are bounded by its :class:`ServerLimits` (as the Kafka frontend's
connection.py bounds its own): requests wait in a per-connection backlog and reading pauses while
the connection's write buffer is above its high-water mark (a client that does not read its
responses stops being served, instead of having them piled up in memory), while it has
``max_in_flight`` requests awaiting their response, while the backlog is not empty, or while a quota
mutes it (``mute``: neither read nor handled, as Kafka mutes a throttled channel). At most
``TURN_BUDGET`` requests of one connection are handled per event-loop turn, so a flood on one
connection does not starve the others. Connections past ``max_connections`` are closed at once,
and connections with no traffic for ``idle_timeout`` seconds are closed, both logged with the peer.
Client connections (``limits`` None) keep reading always: responses never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import socket
import ssl
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from ferrymq.core.remoting.codes import FLAG_ONEWAY, RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.frame import DEFAULT_MAX_FRAME, FrameDecoder, FrameError, encode_frame
from ferrymq.core.remoting.tls import ServerTls

log = logging.getLogger("ferrymq.remoting")

HandlerResult: TypeAlias = RemotingCommand | Awaitable[RemotingCommand | None] | None
Handler = Callable[[RemotingCommand, "RemotingConnection"], HandlerResult]

_opaques = itertools.count(1)

#: requests of one connection handled per event-loop turn before the others get theirs
TURN_BUDGET = 64
#: what a client is told when a handler fails unexpectedly: the exception and its traceback go to
#: the log with the peer, never on the wire (they may name files, keys or data of others)
INTERNAL_ERROR_REMARK = "internal error (logged by the broker)"
#: replies collected in one turn are written once they reach this size (or at the turn's end)
CORK_LIMIT = 256 * 1024


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What the clients of one server may cost it (broker.conf keys in brackets).

    ``max_in_flight`` is generous because one client multiplexes everything over one connection
    per server, a long poll per queue included; parked long polls have their own, lower cap in
    the pull processor.
    """

    max_connections: int = 10_000  # [serverMaxConnections]
    idle_timeout: float = 120.0  # seconds without a request; 0 = never [serverChannelMaxIdleTimeSeconds]
    max_in_flight: int = 1024  # requests awaiting their response [serverMaxInFlightRequests]


class ConnectionGate:
    """Counts a server's open connections and refuses those past ``limit``.

    Refusals are logged with the peer at most once a second, with the count since the last line,
    so a connection flood cannot flood the log too.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        #: refusals since start by reason (core/broker/listeners.py names them), for /metrics
        self.rejected: Counter[str] = Counter()
        self._refused = 0
        self._logged_at = -1.0

    def admit(self, peer: str) -> bool:
        if self.open < self.limit:
            self.open += 1
            return True
        self._refused += 1
        self.rejected["connection_cap"] += 1
        now = time.monotonic()
        if now - self._logged_at >= 1.0:
            log.warning(
                "refused connection from %s: %d connections open (serverMaxConnections=%d); "
                "%d refused since the last report",
                peer,
                self.open,
                self.limit,
                self._refused,
                extra={"peer": peer, "reason": "connection_cap"},
            )
            self._logged_at = now
            self._refused = 0
        return False

    def release(self) -> None:
        self.open -= 1


def next_opaque() -> int:
    """A process-wide request id, kept in int32 range as Java expects."""
    return next(_opaques) & 0x7FFFFFFF


class RemotingError(Exception):
    """A remote call failed: timeout, closed connection, or an error response."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Mute:
    """A connection muted by a quota until a time; ``on_end`` runs when it ends. Kafka's connections use it
    too (gateway/kafka/connection.py)."""

    __slots__ = ("_handle", "_on_end", "_until")

    def __init__(self, on_end: Callable[[], None]) -> None:
        self._on_end = on_end
        self._handle: asyncio.TimerHandle | None = None
        self._until = 0.0

    @property
    def on(self) -> bool:
        return self._handle is not None

    def extend(self, seconds: float) -> bool:
        """Muted for at least ``seconds`` from now; whether that changed anything."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        if until <= self._until:
            return False
        self._until = until
        if self._handle is not None:
            self._handle.cancel()
        self._handle = loop.call_at(until, self._end)
        return True

    def _end(self) -> None:
        self._handle = None
        self._until = 0.0
        self._on_end()

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class RemotingConnection(asyncio.Protocol):
    """One remoting connection; see the module docstring."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        on_close: Callable[[RemotingConnection], None] | None = None,
        limits: ServerLimits | None = None,
        gate: ConnectionGate | None = None,
    ) -> None:
        self.handler = handler
        self.decoder = FrameDecoder(max_frame)
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.closed = asyncio.Event()
        self._pending: dict[int, asyncio.Future[RemotingCommand]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.attrs: dict[str, Any] = {}  # per-connection state a handler may keep
        # While handling the requests of one turn, replies are collected and written together:
        # one send() per turn instead of one per reply (the largest cost under pipelined load).
        self._corked: list[bytes | bytearray | memoryview] | None = None
        self._corked_bytes = 0
        self._limits = limits
        self._gate = gate
        self._admitted = False
        self._backlog: deque[RemotingCommand] = deque()
        self._draining = False
        self._drain_soon: asyncio.Handle | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._garbage = False  # a FrameError came: close once the requests before it are answered
        self._last_read = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_timer_clock: Callable[[], float] = time.monotonic
        #: a quota's mute: nothing is read or handled while on (core/broker/remoting_quotas.py)
        self._mute = Mute(self._schedule_drain)
        #: applied to each request this side sends (a broker's signing, core/remoting/outbound.py)
        self.request_hook: Callable[[RemotingCommand], None] | None = None

    # ---- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have the same methods
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        if self._gate is not None:
            if not self._gate.admit(self.peer):
                self.transport.abort()
                return
            self._admitted = True
        limits = self._limits
        if limits is not None and limits.idle_timeout > 0:
            loop = asyncio.get_running_loop()
            self._idle_timer_clock = loop.time
            self._last_read = loop.time()
            self._idle_timer = loop.call_later(limits.idle_timeout, self._check_idle)

    def data_received(self, data: bytes) -> None:
        garbage: FrameError | None = None
        try:
            commands = self.decoder.feed(data)
        except FrameError as exc:
            garbage, commands = exc, exc.commands
        if self._idle_timer is not None:
            self._last_read = self._idle_timer_clock()
        backlog = self._backlog
        for cmd in commands:
            if cmd.is_response:
                fut = self._pending.pop(cmd.opaque, None)
                if fut is not None and not fut.done():
                    fut.set_result(cmd)
            else:
                backlog.append(cmd)
        if garbage is not None:
            # answer the good frames that came first, then close (close() flushes, abort() would not)
            reason = "frame_too_big" if garbage.too_big else "bad_frame"
            if self._gate is not None:
                self._gate.rejected[reason] += 1
            log.warning(
                "closing connection from %s: %s",
                self.peer,
                garbage,
                extra={"peer": self.peer, "reason": reason},
            )
            self._garbage = True
        self._drain()

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._schedule_drain()

    def connection_lost(self, exc: Exception | None) -> None:
        err = RemotingError(f"connection to {self.peer} closed")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        self._pending.clear()
        self._backlog.clear()
        for task in self._tasks:
            task.cancel()
        for handle in (self._idle_timer, self._drain_soon):
            if handle is not None:
                handle.cancel()
        self._mute.cancel()
        if self._admitted and self._gate is not None:
            self._gate.release()
            self._admitted = False
        self.closed.set()
        if self.on_close is not None:
            self.on_close(self)

    # ---- requests arriving -------------------------------------------------------------------

    def _drain(self) -> None:
        """Handle waiting requests while the limits allow, their replies corked; see the module doc."""
        self._drain_soon = None
        transport = self.transport
        if self._draining or transport is None or transport.is_closing():
            return
        limits = self._limits
        backlog = self._backlog
        self._draining = True
        corked: list[bytes | bytearray | memoryview] = []
        self._corked, self._corked_bytes = corked, 0
        try:
            if limits is None:  # a client: server-sent requests are few, handle them all now
                while backlog:
                    self._handle_request(backlog.popleft())
            else:
                budget = TURN_BUDGET
                while (
                    backlog
                    and not self._mute.on
                    and not self._writing_paused
                    and len(self._tasks) < limits.max_in_flight
                ):
                    if budget == 0:
                        self._schedule_drain()
                        break
                    budget -= 1
                    self._handle_request(backlog.popleft())
                    if self._corked_bytes >= CORK_LIMIT:  # may pause writing: the loop then stops
                        self._write_corked(corked)
        finally:
            self._corked = None
            self._draining = False
            self._write_corked(corked)
        if self._garbage and not backlog:
            self.close()
        self._update_reading()

    def _write_corked(self, corked: list[bytes | bytearray | memoryview]) -> None:
        if corked and self.transport is not None and not self.transport.is_closing():
            # one copy, so no memoryview of a store segment outlives this call in the transport
            self.transport.write(b"".join(corked))
        corked.clear()
        self._corked_bytes = 0

    def _schedule_drain(self) -> None:
        if self._drain_soon is None and self._backlog:
            self._drain_soon = asyncio.get_running_loop().call_soon(self._drain)
        else:
            self._update_reading()

    def mute(self, seconds: float) -> None:
        """Read nothing from the peer for ``seconds`` (replies still go out): a client over its quota.
        When it ends, requests read before the mute are handled first, then reading resumes."""
        if self.transport is not None and not self.transport.is_closing() and self._mute.extend(seconds):
            self._update_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        limits = self._limits
        if limits is None or transport is None or transport.is_closing():
            return
        pause = (
            self._mute.on
            or bool(self._backlog)
            or self._garbage
            or self._writing_paused
            or len(self._tasks) >= limits.max_in_flight
        )
        if pause != self._reading_paused:
            self._reading_paused = pause
            if pause:
                if self._gate is not None and len(self._tasks) >= limits.max_in_flight:
                    self._gate.rejected["in_flight_cap"] += 1
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _check_idle(self) -> None:
        limits = self._limits
        assert limits is not None
        loop = asyncio.get_running_loop()
        due = self._last_read + limits.idle_timeout
        if due > loop.time() or self._tasks:  # traffic since, or a request still being served
            self._idle_timer = loop.call_at(max(due, loop.time() + 1.0), self._check_idle)
            return
        log.info(
            "closing connection from %s: idle for %.0fs (serverChannelMaxIdleTimeSeconds)",
            self.peer,
            limits.idle_timeout,
            extra={"peer": self.peer},
        )
        self.abort()  # its unread replies go too: a peer that reads nothing is idle as well

    def _handle_request(self, cmd: RemotingCommand) -> None:
        if self.handler is None:
            return
        try:
            result = self.handler(cmd, self)
        except Exception:  # a handler bug answers SYSTEM_ERROR, never kills the loop
            log.exception(
                "request code %s from %s failed",
                cmd.code,
                self.peer,
                extra={"peer": self.peer, "code": cmd.code},
            )
            result = cmd.response(ResponseCode.SYSTEM_ERROR, INTERNAL_ERROR_REMARK)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._finish(cmd, result))
            self._tasks.add(task)
            task.add_done_callback(self._task_done)
        elif result is not None and not cmd.is_oneway:
            self.send(result)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if self._reading_paused or self._backlog:
            self._schedule_drain()

    @property
    def gate(self) -> ConnectionGate | None:
        """The server's gate (None on a client connection): where its refusals are counted."""
        return self._gate

    async def _finish(self, cmd: RemotingCommand, pending: Awaitable[RemotingCommand | None]) -> None:
        try:
            result = await pending
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "request code %s from %s failed",
                cmd.code,
                self.peer,
                extra={"peer": self.peer, "code": cmd.code},
            )
            result = cmd.response(ResponseCode.SYSTEM_ERROR, INTERNAL_ERROR_REMARK)
        if result is not None and not cmd.is_oneway:
            self.send(result)

    # ---- sending -----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, cmd: RemotingCommand) -> None:
        frame = encode_frame(cmd)
        if self._corked is not None:
            self._corked.extend(frame)
            self._corked_bytes += sum(map(len, frame))
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(frame))

    async def invoke(self, cmd: RemotingCommand, timeout: float = 3.0) -> RemotingCommand:
        """Send a request and wait for its response."""
        if not self.is_open:
            raise RemotingError(f"connection to {self.peer} is closed")
        if self.request_hook is not None:
            self.request_hook(cmd)
        cmd.opaque = next_opaque()
        fut: asyncio.Future[RemotingCommand] = asyncio.get_running_loop().create_future()
        self._pending[cmd.opaque] = fut
        self.send(cmd)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise RemotingError(
                f"request code {cmd.code} to {self.peer} timed out after {timeout}s"
            ) from None
        finally:
            self._pending.pop(cmd.opaque, None)

    def invoke_oneway(self, cmd: RemotingCommand) -> None:
        if self.request_hook is not None:
            self.request_hook(cmd)
        cmd.opaque = next_opaque()
        cmd.flag |= FLAG_ONEWAY
        self.send(cmd)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


RequestObserver = Callable[[int, float], None]  # request code, seconds until the response


class RequestDispatcher:
    """Routes requests by code; unknown codes get REQUEST_CODE_NOT_SUPPORTED as Java answers.

    ``handlers`` is the server's table from request code to handler, given whole so that it
    can be read in one place; ``register`` adds one (clients use it for server-sent requests).
    ``observer``, when set, is told how long each handled request took (metrics); unset, the
    dispatch costs nothing extra.
    """

    def __init__(self, handlers: Mapping[RequestCode, Handler] | None = None) -> None:
        self.handlers: dict[int, Handler] = {int(code): h for code, h in (handlers or {}).items()}
        self.observer: RequestObserver | None = None

    def register(self, code: int, handler: Handler) -> None:
        self.handlers[int(code)] = handler

    def __call__(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        handler = self.handlers.get(cmd.code)
        if handler is None:
            log.info(
                "unsupported request code %s from %s",
                cmd.code,
                conn.peer,
                extra={"peer": conn.peer, "code": cmd.code},
            )
            return cmd.response(
                ResponseCode.REQUEST_CODE_NOT_SUPPORTED, f" request type {cmd.code} not supported"
            )
        observer = self.observer
        if observer is None:
            return handler(cmd, conn)
        start = time.perf_counter()
        result = handler(cmd, conn)
        if result is None or isinstance(result, RemotingCommand):
            observer(cmd.code, time.perf_counter() - start)
            return result
        return _timed(result, cmd.code, start, observer)


async def _timed(
    pending: Awaitable[RemotingCommand | None], code: int, start: float, observer: RequestObserver
) -> RemotingCommand | None:
    try:
        return await pending
    finally:
        observer(code, time.perf_counter() - start)


async def connect(
    host: str,
    port: int,
    handler: Handler | None = None,
    *,
    timeout: float = 3.0,
    on_close: Callable[[RemotingConnection], None] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> RemotingConnection:
    """Open a client connection (over TLS with ``ssl_context``)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            _, proto = await loop.create_connection(
                lambda: RemotingConnection(handler, on_close=on_close),
                host,
                port,
                ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None,
            )
    except (OSError, TimeoutError) as exc:
        raise RemotingError(f"cannot connect to {host}:{port}: {exc}") from None
    return proto


async def serve(
    handler: Handler,
    host: str,
    port: int,
    *,
    max_frame: int = DEFAULT_MAX_FRAME,
    on_close: Callable[[RemotingConnection], None] | None = None,
    limits: ServerLimits | None = None,
    tls: ServerTls | None = None,
    gate: ConnectionGate | None = None,
) -> Listener:
    """Start a remoting server; every connection gets its own RemotingConnection, all of them
    bounded by ``limits`` (the defaults unless given). With ``tls`` (not disabled) connections are
    accepted by a :class:`SniffingServer`, which tells TLS from plaintext by the first byte.
    ``gate``: the caller's, to read its counts."""
    loop = asyncio.get_running_loop()
    limits = limits or ServerLimits()
    if gate is None:
        gate = ConnectionGate(limits.max_connections)

    def factory() -> RemotingConnection:
        return RemotingConnection(handler, max_frame=max_frame, on_close=on_close, limits=limits, gate=gate)

    if tls is None or tls.mode == "disabled":  # a TLS hello then fails as an oversized frame
        return await loop.create_server(factory, host, port, reuse_address=True)
    sniffing = SniffingServer(factory, tls)
    await sniffing.listen(host, port)
    return sniffing


class SniffingServer:
    """A listener that accepts connections itself so it can peek (MSG_PEEK) at their first byte
    before a transport owns them: 0x16 gets the loop's TLS, anything else plaintext, or is closed
    in enforcing mode (logged with the peer). A peer that sends nothing within the handshake
    timeout, or whose handshake fails, is closed and logged too."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], tls: ServerTls) -> None:
        self._factory = factory
        self._tls = tls
        self._socks: list[socket.socket] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._socks)

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.adopt(sock)

    def adopt(self, sock: socket.socket) -> None:
        """Accept on ``sock``, a listening non-blocking socket bound elsewhere (closed by close())."""
        self._socks.append(sock)
        self._spawn(self._accept(sock))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listening)
            except OSError as exc:  # e.g. out of file descriptors: do not spin
                log.warning("accept on %s failed: %s", listening.getsockname(), exc)
                await asyncio.sleep(0.1)
                continue
            self._spawn(self._sniff(sock))

    async def _sniff(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        peer = _peer_of(sock)
        sock.setblocking(False)
        tls = self._tls
        try:
            async with asyncio.timeout(tls.handshake_timeout):
                first = await _peek(loop, sock)
                if not first:
                    sock.close()
                    return
                is_tls, refused = tls.accepts(first[0])
                if refused is not None:
                    log.warning("closing connection from %s: %s", peer, refused, extra={"peer": peer})
                    sock.close()
                    return
                await loop.connect_accepted_socket(
                    self._factory,
                    sock,
                    ssl=tls.context if is_tls else None,
                    ssl_handshake_timeout=tls.handshake_timeout if is_tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            why = str(exc) or ("timed out" if isinstance(exc, TimeoutError) else type(exc).__name__)
            log.warning(
                "closing connection from %s: TLS handshake failed: %s", peer, why, extra={"peer": peer}
            )
            sock.close()
        except asyncio.CancelledError:  # the server closes before the connection was handed over
            sock.close()
            raise

    def close(self) -> None:
        for sock in self._socks:
            sock.close()
        for task in self._tasks:
            task.cancel()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def is_serving(self) -> bool:
        return not self._closed.is_set()


async def serve_tls_only(
    factory: Callable[[], asyncio.Protocol],
    context: ssl.SSLContext,
    plaintext_refusal: str,
    *,
    host: str = "",
    port: int = 0,
    sock: socket.socket | None = None,
) -> SniffingServer:
    """A TLS-only listener (on ``sock``, or bound to ``host``:``port``) that logs with the peer every
    connection it refuses: plaintext (by its first byte), garbage, a handshake cut short or too slow.
    asyncio's own TLS server drops those silently; the Kafka SSL listeners, the HA port and the
    admin API's HTTPS use this instead."""
    server = SniffingServer(factory, ServerTls("enforcing", context, plaintext_refusal=plaintext_refusal))
    if sock is not None:
        server.adopt(sock)
    else:
        await server.listen(host, port)
    return server


#: what serve() returns: asyncio's server, or the sniffing one when TLS is on
Listener: TypeAlias = "asyncio.Server | SniffingServer"


async def _peek(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """The first byte waiting on ``sock``, left in the socket (b"" once the peer closed)."""
    readable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(sock.fileno(), ready)
    try:
        await readable
    finally:
        loop.remove_reader(sock.fileno())
    return sock.recv(1, socket.MSG_PEEK)


def _peer_of(sock: socket.socket) -> str:
    with contextlib.suppress(OSError):
        peer = sock.getpeername()
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
    return "?"


def split_addr(addr: str) -> tuple[str, int]:
    """'host:port' to (host, port)."""
    host, _, port = addr.rpartition(":")
    return host, int(port)
