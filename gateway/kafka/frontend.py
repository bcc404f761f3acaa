"""The Kafka protocol frontend of one master broker: a listener on its own port, over core's API.

A Kafka topic is a RocketMQ topic, partition p is queue p, a Kafka offset is the queue offset.
The frontend owns the connections, the group coordinator (gateway/kafka/group) and the
idempotent-producer state; handlers reach the store only through ``broker`` (core's API).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ferrymq.gateway.kafka import apis
from ferrymq.gateway.kafka.connection import KafkaConnection
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.framing import DEFAULT_MAX_REQUEST_SIZE
from ferrymq.gateway.kafka.group.coordinator import GroupCoordinator

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.kafka")


class KafkaFrontend:
    def __init__(
        self,
        broker: Broker,
        host: str,
        port: int,
        advertised_host: str,
        node_id: int = 0,
        *,
        max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
    ) -> None:
        self.broker = broker
        self.host = host
        self.requested_port = port
        self.advertised_host = advertised_host
        self.node_id = node_id
        self.max_request_size = max_request_size
        self.cluster_id = broker.config.broker_cluster_name
        self.connections: set[KafkaConnection] = set()
        self.server: asyncio.Server | None = None
        self.coordinator = GroupCoordinator(self)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: KafkaConnection(self), self.host, self.requested_port, reuse_address=True
        )
        await self.coordinator.start()
        log.info(
            "kafka frontend of broker %s listening on %s:%d (advertised %s:%d, node %d)",
            self.broker.config.broker_name,
            self.host,
            self.port,
            self.advertised_host,
            self.port,
            self.node_id,
        )

    async def dispatch(self, ctx: RequestContext, request: Any) -> Any:
        return await apis.API_HANDLERS[ctx.api_key].handler(ctx, request)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
        await self.coordinator.stop()
        if self.server is not None:
            await self.server.wait_closed()
