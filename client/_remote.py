"""Connections of one client: a pool keyed by address, and name-server fail-over.

One :class:`~ferrymq.core.remoting.transport.RemotingConnection` per broker or name-server
address, opened on first use and re-opened after it closes (concurrent callers share one connect
attempt). Name-server calls go to the current name server of the configured list, which starts
at a random entry; when it cannot be reached the next one is tried, as Java's
``NettyRemotingClient.getAndCreateNameserverChannel`` does. Requests the server sends to the
client (NOTIFY_CONSUMER_IDS_CHANGED, ...) go to handlers registered by code; other codes are
answered REQUEST_CODE_NOT_SUPPORTED. Transport failures become :class:`NetworkError`; what to
do with a response code is the caller's business (see :func:`check_response`).

With ``set_credentials`` every request is signed as the Java client's ``AclClientRPCHook`` signs
it (core/remoting/acl_sign.py), name-server requests included.
TLS: every connection of a client uses its ``ssl_context`` when one is given (RocketMQ's
``ClientConfig.setUseTLS``); brokers in permissive or enforcing mode accept it on their usual port.

Not here: the VIP channel.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Iterable

from ferrymq.client.errors import BrokerError, ClientError, NetworkError
from ferrymq.core.remoting.acl_sign import sign
from ferrymq.core.remoting.codes import SERVER_VERSION, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import (
    Handler,
    RemotingConnection,
    RemotingError,
    RequestDispatcher,
    connect,
    split_addr,
)

log = logging.getLogger("ferrymq.client")

#: ``language`` our requests carry (LanguageCode.PYTHON); brokers only record it.
CLIENT_LANGUAGE = "PYTHON"
#: ``version`` our requests carry: MQVersion V5_3_3, so 5.x name servers send standard JSON.
CLIENT_VERSION = SERVER_VERSION


def request(code: int, ext_fields: dict[str, str] | None = None, body: bytes = b"") -> RemotingCommand:
    """A request command as this client sends it."""
    return RemotingCommand(
        code=int(code),
        ext_fields=ext_fields or {},
        body=body,
        language=CLIENT_LANGUAGE,
        version=CLIENT_VERSION,
    )


def check_response(resp: RemotingCommand, *ok_codes: int, addr: str | None = None) -> RemotingCommand:
    """Return ``resp`` if its code is SUCCESS or one of ``ok_codes``, else raise BrokerError."""
    if resp.code == ResponseCode.SUCCESS or resp.code in ok_codes:
        return resp
    raise BrokerError(resp.code, resp.remark, addr=addr)


def parse_namesrv_addrs(addrs: str | Iterable[str]) -> list[str]:
    """``"a:9876;b:9876"`` (also commas or a list) to a list of ``host:port``."""
    items = addrs.replace(",", ";").split(";") if isinstance(addrs, str) else list(addrs)
    out: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ClientError(f"bad name server address {item!r}, expected host:port")
        out.append(item)
    if not out:
        raise ClientError("no name server address given")
    return out


class RemotingClient:
    """Connection pool plus name-server fail-over; lives on one event loop."""

    def __init__(
        self,
        namesrv_addrs: list[str],
        *,
        connect_timeout: float = 3.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.ssl_context = ssl_context
        self.namesrv_addrs = list(namesrv_addrs)
        self._ns_index = random.randrange(len(self.namesrv_addrs)) if self.namesrv_addrs else 0
        self.connect_timeout = connect_timeout
        self.dispatcher = RequestDispatcher()
        self._conns: dict[str, RemotingConnection] = {}
        self._connecting: dict[str, asyncio.Future[RemotingConnection]] = {}
        self._closed = False
        #: (accessKey, secretKey) every request is signed with (RocketMQ ACL), None: unsigned
        self.credentials: tuple[str, str] | None = None

    def set_credentials(self, access_key: str | None, secret_key: str | None) -> None:
        """Sign requests with this RocketMQ ACL account; both None: unsigned."""
        if (access_key is None) != (secret_key is None) or access_key == "" or secret_key == "":
            raise ClientError("access_key and secret_key go together and must not be empty")
        self.credentials = (access_key, secret_key) if access_key and secret_key else None

    def signed(self, cmd: RemotingCommand) -> RemotingCommand:
        if self.credentials is not None:
            sign(cmd, *self.credentials)
        return cmd

    def register_handler(self, code: int, handler: Handler) -> None:
        """Handle requests with ``code`` that servers send to this client."""
        self.dispatcher.register(code, handler)

    @property
    def current_namesrv(self) -> str:
        return self.namesrv_addrs[self._ns_index % len(self.namesrv_addrs)]

    # ---- connections ---------------------------------------------------------------------------

    async def connection(self, addr: str) -> RemotingConnection:
        """The open connection to ``addr``, connecting if needed; raises NetworkError."""
        if self._closed:
            raise ClientError("the client is shut down")
        conn = self._conns.get(addr)
        if conn is not None and conn.is_open:
            return conn
        pending = self._connecting.get(addr)
        if pending is None:
            # One connect attempt shared by every caller; shielded so that a caller giving up
            # does not cancel it for the others.
            pending = asyncio.ensure_future(self._open(addr))
            self._connecting[addr] = pending
            pending.add_done_callback(lambda t: self._connect_done(addr, t))
        return await asyncio.shield(pending)

    def _connect_done(self, addr: str, task: asyncio.Future[RemotingConnection]) -> None:
        if self._connecting.get(addr) is task:
            del self._connecting[addr]
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" noise

    async def _open(self, addr: str) -> RemotingConnection:
        try:
            host, port = split_addr(addr)
        except ValueError:
            raise ClientError(f"bad address {addr!r}") from None
        try:
            conn = await connect(
                host,
                port,
                self.dispatcher,
                timeout=self.connect_timeout,
                on_close=self._on_close,
                ssl_context=self.ssl_context,
            )
        except RemotingError as exc:
            raise NetworkError(str(exc)) from None
        if self._closed:
            conn.close()
            raise ClientError("the client is shut down")
        conn.attrs["addr"] = addr
        self._conns[addr] = conn
        return conn

    def _on_close(self, conn: RemotingConnection) -> None:
        addr = conn.attrs.get("addr")
        if addr is not None and self._conns.get(addr) is conn:
            del self._conns[addr]

    def close_connection(self, addr: str) -> None:
        conn = self._conns.pop(addr, None)
        if conn is not None:
            conn.close()

    async def close(self) -> None:
        """Close every connection; later calls raise ClientError."""
        self._closed = True
        conns = list(self._conns.values())
        self._conns.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            try:
                async with asyncio.timeout(1.0):
                    await conn.closed.wait()
            except TimeoutError:
                conn.abort()

    # ---- requests ------------------------------------------------------------------------------

    async def invoke(self, addr: str, cmd: RemotingCommand, timeout: float) -> RemotingCommand:
        """Send ``cmd`` to ``addr`` and wait for the response; raises NetworkError."""
        if timeout <= 0:
            raise NetworkError(f"request code {cmd.code} to {addr}: no time left")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        conn = self._conns.get(addr)
        if conn is None or not conn.is_open:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives just as the inner call completes, and a cancelled puller would live on.
            try:
                async with asyncio.timeout(timeout):
                    conn = await self.connection(addr)
            except TimeoutError:
                raise NetworkError(f"connect to {addr} timed out after {timeout}s") from None
        try:
            return await conn.invoke(self.signed(cmd), max(0.001, deadline - loop.time()))
        except RemotingError as exc:
            raise NetworkError(str(exc)) from None

    async def invoke_oneway(self, addr: str, cmd: RemotingCommand) -> None:
        """Send ``cmd`` oneway (no response); raises NetworkError if it cannot be written."""
        conn = await self.connection(addr)
        if not conn.is_open:
            raise NetworkError(f"connection to {addr} is closed")
        conn.invoke_oneway(self.signed(cmd))

    async def invoke_namesrv(self, cmd: RemotingCommand, timeout: float) -> RemotingCommand:
        """Send ``cmd`` to a name server, moving on to the next one when one cannot be reached."""
        if not self.namesrv_addrs:
            raise ClientError("no name server address configured")
        last: NetworkError | None = None
        for _ in range(len(self.namesrv_addrs)):
            addr = self.current_namesrv
            try:
                return await self.invoke(addr, cmd, timeout)
            except NetworkError as exc:
                log.info("name server %s failed (%s); trying the next one", addr, exc)
                self.close_connection(addr)
                self._ns_index = (self._ns_index + 1) % len(self.namesrv_addrs)
                last = exc
        assert last is not None
        raise last
