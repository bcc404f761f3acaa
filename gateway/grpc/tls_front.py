"""TLS on the gRPC listener: a sniffing front on the public port, grpcio behind it on a private socket.

grpcio cannot serve TLS and plaintext on one port, nor hand it accepted sockets, so with
``tls.server.mode`` permissive or enforcing the public port is remoting's ``SniffingServer``
(core/remoting/tls.py's rules: a first byte 0x16 is TLS, anything else plaintext, refused and
logged with the peer when enforcing), which terminates TLS with the broker's own certificate files
and client-auth setting (ALPN ``h2``, which the gRPC clients insist on) and splices each connection
to grpcio's plaintext Unix socket in a private (0700) directory. That is how Apache's proxy decides
too (``ProxyAndTlsProtocolNegotiator`` looks at the first bytes), without its Netty pipeline.

grpcio sees every connection come from the socket path the front bound for it; ``real_peer`` turns
that back into the client's address, so the listener logs and checks (ACL white lists) the real
peer. With TLS disabled there is no front: grpcio owns the port and nothing is copied.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import ssl
from pathlib import Path
from typing import cast

from ferrymq.core.remoting.tls import ServerTls
from ferrymq.core.remoting.transport import SniffingServer

log = logging.getLogger("ferrymq.grpc")

#: grpcio's name of a spliced connection's peer ("unix:/dir/c-7") -> the client's "host:port"
_PEERS: dict[str, str] = {}
_ids = itertools.count()


def real_peer(peer: str) -> str:
    """The client's address for a peer grpcio reports (itself unless it came through a front)."""
    return _PEERS.get(peer, peer)


def alpn_h2(tls: ServerTls) -> ServerTls:
    """``tls`` with HTTP/2 offered by ALPN on its (own, fresh) context."""
    assert tls.context is not None
    tls.context.set_alpn_protocols(["h2"])
    return tls


class _Pipe(asyncio.Protocol):
    """One side of a spliced connection: what it reads goes to its partner, with back-pressure."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.partner: _Pipe | None = None
        self.early: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def link(self, partner: _Pipe) -> None:
        self.partner = partner
        for data in self.early:
            self._forward(data)
        self.early.clear()

    def _forward(self, data: bytes) -> None:
        assert self.partner is not None
        if self.partner.transport is not None and not self.partner.closed:
            self.partner.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self.partner is None:
            self.early.append(data)
        else:
            self._forward(data)

    def eof_received(self) -> bool | None:
        return False  # close this side; connection_lost closes the partner

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.close()  # after flushing what it still has to write

    def pause_writing(self) -> None:
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.partner is not None and self.partner.transport is not None:
            self.partner.transport.resume_reading()


class _ClientSide(_Pipe):
    """The client's connection (TLS already terminated, or plaintext): opens its grpcio side."""

    def __init__(self, front: GrpcTlsFront) -> None:
        super().__init__()
        self.front = front
        self.name = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        transport.pause_reading()  # type: ignore[attr-defined]
        host, port = transport.get_extra_info("peername")[:2]
        task = asyncio.ensure_future(self.front.open_upstream(self, f"{host}:{port}"))
        self.front.tasks.add(task)
        task.add_done_callback(self.front.tasks.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        _PEERS.pop(self.name, None)


class GrpcTlsFront:
    """The public port of a gRPC listener with TLS on; ``start`` answers the bound port."""

    def __init__(self, tls: ServerTls, socket_dir: Path) -> None:
        self.tls = alpn_h2(tls)
        self.dir = socket_dir
        self.upstream = str(socket_dir / "grpc.sock")
        self.server: SniffingServer | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        self.server = SniffingServer(lambda: _ClientSide(self), self.tls)
        await self.server.listen(host, port)
        return int(self.server.sockets[0].getsockname()[1])

    async def open_upstream(self, client: _ClientSide, peer: str) -> None:
        """Connect ``client`` to grpcio from a socket path of its own, named after ``peer``."""
        path = str(self.dir / f"c-{next(_ids)}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream = _Pipe()
        try:
            sock.bind(path)
            os.unlink(path)  # the name stays the peer grpcio reports; the file is not needed
            sock.setblocking(False)
            client.name = f"unix:{path}"
            _PEERS[client.name] = peer
            loop = asyncio.get_running_loop()
            await loop.sock_connect(sock, self.upstream)
            await loop.create_unix_connection(lambda: upstream, sock=sock)
        except (OSError, ssl.SSLError) as exc:
            log.warning("gRPC connection from %s: cannot reach the listener: %s", peer, exc)
            _PEERS.pop(client.name, None)
            sock.close()
            if client.transport is not None:
                client.transport.close()
            return
        if client.closed:
            if upstream.transport is not None:
                upstream.transport.close()
            return
        upstream.link(client)
        client.link(upstream)
        assert client.transport is not None
        client.transport.resume_reading()

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            server.close()
            await server.wait_closed()
        for task in list(self.tasks):
            task.cancel()
