"""``GrpcFrontend``: the gRPC listener of a master broker, on the broker's own event loop.

Bounds: a request larger than grpcMaxInboundMessageSize (default maxMessageSize + 1 MiB) is refused by grpcio
itself (RESOURCE_EXHAUSTED) before it is read whole; at most ``MAX_CONCURRENT_RPCS`` calls at once (each
client's Telemetry stream is one); HTTP/2 keepalive pings find dead peers (a stream that hangs
is closed after ``KEEPALIVE_TIMEOUT_MS`` without an answer). Plaintext only for now (no TLS or
ACL 2.0 on this listener yet: README, "RocketMQ 5 clients").
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc

from ferrymq.gateway.grpc.service import MessagingService

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.grpc")

MAX_CONCURRENT_RPCS = 4096
KEEPALIVE_TIME_MS = 30_000
KEEPALIVE_TIMEOUT_MS = 10_000
STOP_GRACE_S = 2.0


class GrpcFrontend:
    def __init__(self, broker: Broker, host: str, port: int, advertised_host: str) -> None:
        self.broker = broker
        self.host = host
        self.requested_port = port
        self.advertised_host = advertised_host
        self.port = 0
        self.server: grpc.aio.Server | None = None
        self.service: MessagingService | None = None

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
        self.port = server.add_insecure_port(f"{self.host}:{self.requested_port}")
        if not self.port:
            raise OSError(f"gRPC listener: cannot bind {self.host}:{self.requested_port}")
        self.service = MessagingService(self.broker, self.advertised_host, self.port)
        server.add_generic_rpc_handlers((self.service,))
        await server.start()
        self.server = server
        log.info("gRPC listener on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            server, self.server = self.server, None
            await server.stop(STOP_GRACE_S)
