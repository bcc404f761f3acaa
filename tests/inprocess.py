"""Servers built in this interpreter for the fast tests: a Broker (no name server) and its Kafka
frontend on free ports, the store in a temporary directory. Tests reach into both objects (and
can shorten timers a ``ferrymq serve`` process would not let them), so these run in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.group.coordinator import GroupCoordinator
from ferrymq.gateway.kafka.group.state import GroupConfig
from ferrymq.gateway.kafka.listeners import parse_listeners

Body = Callable[[Broker, KafkaFrontend], Awaitable[None]]


@asynccontextmanager
async def kafka_broker(
    tmp_path: Path,
    topic: str,
    queues: int,
    *,
    node_id: int | None = None,
    group_config: GroupConfig | None = None,
    **config: Any,
) -> AsyncIterator[tuple[Broker, KafkaFrontend]]:
    """A started broker (store under ``tmp_path/store``, ``topic`` made with ``queues`` queues) and
    its Kafka frontend; ``config`` overrides BrokerConfig fields, ``group_config`` the coordinator's."""
    values = {"listen_port": 0, "listen_host": "127.0.0.1", "store_path_root_dir": tmp_path / "store"}
    broker = Broker(BrokerConfig(**{**values, **config}))
    await broker.start()
    try:
        broker.topics.create_if_absent(topic, queues)
        extra = {} if node_id is None else {"node_id": node_id}
        text = broker.config.kafka_listeners
        listeners = parse_listeners(text, "127.0.0.1") if text else None
        frontend = KafkaFrontend(broker, "127.0.0.1", 0, "127.0.0.1", listeners=listeners, **extra)
        if group_config is not None:
            frontend.coordinator = GroupCoordinator(broker, frontend.cluster, group_config)
        await frontend.start()
        try:
            yield broker, frontend
        finally:
            await frontend.stop()
    finally:
        await broker.stop()


def run_kafka_broker(
    tmp_path: Path, body: Body, topic: str, queues: int, *, timeout: float, **options: Any
) -> None:
    """``body`` against a fresh :func:`kafka_broker`, in its own event loop, failing after ``timeout``."""

    async def main() -> None:
        async with kafka_broker(tmp_path, topic, queues, **options) as (broker, frontend):
            await asyncio.wait_for(body(broker, frontend), timeout)

    asyncio.run(main())
