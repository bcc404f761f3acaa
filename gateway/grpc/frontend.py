"""``GrpcFrontend``: the gRPC listener of a broker (master or slave), on the broker's own event loop.

It registers its address with the name servers (``grpcAddr``) so the other groups' listeners
name it in QueryRoute; a slave's serves reads, and a send to it answers what the broker answers
a remoting send on a slave (SERVICE_NOT_AVAILABLE, as INTERNAL_SERVER_ERROR: the proxy's local
mode answers so too).

Bounds: a request larger than grpcMaxInboundMessageSize (default maxMessageSize + 1 MiB) is refused by grpcio
itself (RESOURCE_EXHAUSTED) before it is read whole; at most ``MAX_CONCURRENT_RPCS`` calls at once (each
client's Telemetry stream is one); HTTP/2 keepalive pings find dead peers (a stream that hangs
is closed after ``KEEPALIVE_TIMEOUT_MS`` without an answer). With ``tls.server.mode`` permissive
or enforcing the port is a sniffing TLS front and grpcio listens on a private Unix socket behind it
(``tls_front.py``); with ``aclEnable`` every call is checked (``acl.py``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from ferrymq.gateway.grpc.service import MessagingService
from ferrymq.gateway.grpc.tls_front import GrpcTlsFront

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.core.broker.routes_source import ClusterSource

log = logging.getLogger("ferrymq.grpc")

MAX_CONCURRENT_RPCS = 4096
KEEPALIVE_TIME_MS = 30_000
KEEPALIVE_TIMEOUT_MS = 10_000
STOP_GRACE_S = 2.0


class GrpcFrontend:
    def __init__(
        self, broker: Broker, host: str, port: int, advertised_host: str, routes: ClusterSource | None = None
    ) -> None:
        self.broker = broker
        self.routes = routes
        self.host = host
        self.requested_port = port
        self.advertised_host = advertised_host
        self.port = 0
        self.server: grpc.aio.Server | None = None
        self.service: MessagingService | None = None
        self.front: GrpcTlsFront | None = None
        self.socket_dir: Path | None = None

    async def start(self) -> None:
        cfg = self.broker.config
        outbound = cfg.max_message_size + 1024 * 1024  # one stored message and its envelope
        inbound = cfg.grpc_max_inbound_message_size or outbound  # the bound on requests, when set
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", inbound),
                ("grpc.max_send_message_length", outbound),
                ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
                ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
                ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
        )
        tls = self.broker.config.server_tls()
        if tls is None:
            self.port = server.add_insecure_port(f"{self.host}:{self.requested_port}")
        else:
            self.socket_dir = Path(tempfile.mkdtemp(prefix="ferrymq-grpc-"))  # 0700: this user only
            self.front = GrpcTlsFront(tls, self.socket_dir)
            if not server.add_insecure_port(f"unix:{self.front.upstream}"):
                raise OSError(f"gRPC listener: cannot bind {self.front.upstream}")
            self.port = await self.front.start(self.host, self.requested_port)
        if not self.port:
            raise OSError(f"gRPC listener: cannot bind {self.host}:{self.requested_port}")
        self.service = MessagingService(self.broker, self.advertised_host, self.port, self.routes)
        server.add_generic_rpc_handlers((self.service,))
        await server.start()
        self.server = server
        registrar = self.broker.registrar
        if registrar is not None:  # the other groups' listeners name this one in their routes
            registrar.extra_fields["grpcAddr"] = f"{self.advertised_host}:{self.port}"
            registrar.kick()
        log.info("gRPC listener on %s:%d (TLS %s)", self.host, self.port, tls.mode if tls else "disabled")

    async def stop(self) -> None:
        if self.broker.registrar is not None:
            self.broker.registrar.extra_fields.pop("grpcAddr", None)
        if self.front is not None:
            front, self.front = self.front, None
            await front.stop()
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop(STOP_GRACE_S)
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None
