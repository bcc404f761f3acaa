"""Thin asyncio glue over the sans-IO codec, shared by broker, name server and client.

``RemotingConnection`` is one TCP connection, server or client side alike: requests that arrive
go to a handler, responses that arrive resolve the future of the request with the same opaque.
Handlers return a response, ``None`` (no response), or an awaitable of either, so that a long
poll can park without blocking the connection. Garbage (a FrameError) closes the connection and
is logged with the peer; it never reaches the handler or other connections.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias, cast

from ferrymq.core.remoting.codes import FLAG_ONEWAY, RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.frame import DEFAULT_MAX_FRAME, FrameDecoder, FrameError, encode_frame

log = logging.getLogger("ferrymq.remoting")

HandlerResult: TypeAlias = RemotingCommand | Awaitable[RemotingCommand | None] | None
Handler = Callable[[RemotingCommand, "RemotingConnection"], HandlerResult]

_opaques = itertools.count(1)


def next_opaque() -> int:
    """A process-wide request id, kept in int32 range as Java expects."""
    return next(_opaques) & 0x7FFFFFFF


class RemotingError(Exception):
    """A remote call failed: timeout, closed connection, or an error response."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RemotingConnection(asyncio.Protocol):
    """One remoting connection; see the module docstring."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        on_close: Callable[[RemotingConnection], None] | None = None,
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
        # While handling the frames of one read, replies are collected and written once: one
        # send() per read instead of one per reply (the largest cost under pipelined load).
        self._corked: list[bytes | bytearray | memoryview] | None = None

    # ---- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses but have the same methods
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    def data_received(self, data: bytes) -> None:
        garbage: FrameError | None = None
        try:
            commands = self.decoder.feed(data)
        except FrameError as exc:
            garbage, commands = exc, exc.commands
        corked: list[bytes | bytearray | memoryview] = []
        self._corked = corked
        try:
            for cmd in commands:
                if cmd.is_response:
                    fut = self._pending.pop(cmd.opaque, None)
                    if fut is not None and not fut.done():
                        fut.set_result(cmd)
                else:
                    self._handle_request(cmd)
        finally:
            self._corked = None
            if corked and self.transport is not None and not self.transport.is_closing():
                self.transport.write(b"".join(corked))
        if garbage is not None:
            # answer the good frames that came first, then close (close() flushes, abort() would not)
            log.warning("closing connection from %s: %s", self.peer, garbage)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        err = RemotingError(f"connection to {self.peer} closed")
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        self._pending.clear()
        for task in self._tasks:
            task.cancel()
        self.closed.set()
        if self.on_close is not None:
            self.on_close(self)

    # ---- requests arriving -------------------------------------------------------------------

    def _handle_request(self, cmd: RemotingCommand) -> None:
        if self.handler is None:
            return
        try:
            result = self.handler(cmd, self)
        except Exception as exc:  # a handler bug answers SYSTEM_ERROR, never kills the loop
            log.exception("request code %s from %s failed", cmd.code, self.peer)
            result = cmd.response(ResponseCode.SYSTEM_ERROR, f"{type(exc).__name__}: {exc}")
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._finish(cmd, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif result is not None and not cmd.is_oneway:
            self.send(result)

    async def _finish(self, cmd: RemotingCommand, pending: Awaitable[RemotingCommand | None]) -> None:
        try:
            result = await pending
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("request code %s from %s failed", cmd.code, self.peer)
            result = cmd.response(ResponseCode.SYSTEM_ERROR, f"{type(exc).__name__}: {exc}")
        if result is not None and not cmd.is_oneway:
            self.send(result)

    # ---- sending -----------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, cmd: RemotingCommand) -> None:
        if self._corked is not None:
            self._corked.extend(encode_frame(cmd))
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(encode_frame(cmd)))

    async def invoke(self, cmd: RemotingCommand, timeout: float = 3.0) -> RemotingCommand:
        """Send a request and wait for its response."""
        if not self.is_open:
            raise RemotingError(f"connection to {self.peer} is closed")
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
            log.info("unsupported request code %s from %s", cmd.code, conn.peer)
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
) -> RemotingConnection:
    """Open a client connection."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            _, proto = await loop.create_connection(
                lambda: RemotingConnection(handler, on_close=on_close), host, port
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
) -> asyncio.Server:
    """Start a remoting server; every connection gets its own RemotingConnection."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: RemotingConnection(handler, max_frame=max_frame, on_close=on_close),
        host,
        port,
        reuse_address=True,
    )


def split_addr(addr: str) -> tuple[str, int]:
    """'host:port' to (host, port)."""
    host, _, port = addr.rpartition(":")
    return host, int(port)
