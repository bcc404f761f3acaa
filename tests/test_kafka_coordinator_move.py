"""Group coordination across broker groups, in this process: a broker that stops coordinating a
group drops it (its members must find the new coordinator), and offsets whose owner cannot be
reached are reported unavailable, never guessed. The cluster-level behaviour (NOT_COORDINATOR, a
coordinator moving with the offsets staying put) is in test_kafka_multi_broker.py.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
import zlib
from pathlib import Path
from types import SimpleNamespace

from kio.schema.errors import ErrorCode

from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.consumer_offsets import ConsumerOffsetManager
from ferrymq.core.remoting.outbound import Outbound
from ferrymq.gateway.kafka.cluster import Node, node_id_of, place
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.group.owner_offsets import OwnerOffsets
from tests.test_kafka_group_wire import TOPIC, Wire, heartbeat, join_v5, run


def test_a_group_that_moves_away_is_dropped_and_its_members_told(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        cluster = frontend.cluster
        w = await Wire.open(frontend.port)
        r = await w.call(join_v5(group="moving", member_id=""))
        r = await w.call(join_v5(group="moving", member_id=r.member_id))
        assert r.error_code == ErrorCode.none
        assert await heartbeat(w, r.member_id, r.generation_id, group="moving") == ErrorCode.none
        # another broker group with a Kafka listener appears, and the group hashes to it
        other = next(
            name
            for name in (f"broker-{uuid.uuid4().hex[:6]}" for _ in range(1000))
            if sorted([name, cluster.broker_name])[zlib.crc32(b"moving") % 2] == name
        )
        cluster._peers[other] = Node(node_id_of(other), "127.0.0.1", 1)
        assert await heartbeat(w, r.member_id, r.generation_id, group="moving") == ErrorCode.not_coordinator
        assert frontend.coordinator.groups.get("moving") is None
        assert frontend.coordinator.list_groups() == []
        w.close()

    run(tmp_path, body)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_owner_gives_no_offset(tmp_path: Path) -> None:
    asyncio.run(_unreachable_owner(tmp_path))


async def _unreachable_owner(tmp_path: Path) -> None:
    offsets = ConsumerOffsetManager(tmp_path / "consumerOffset.json")
    dead = f"127.0.0.1:{closed_port()}"
    cluster = SimpleNamespace(
        broker_name="broker-a",
        placement=lambda topic: place({"broker-a": 2, "broker-b": 2}, "broker-a"),
        broker_addr=lambda name: dead,
        other_broker_addrs=lambda: [dead],
    )
    owners = OwnerOffsets(SimpleNamespace(offsets=offsets, outbound=Outbound()), cluster)  # type: ignore[arg-type]
    try:
        committed = await owners.commit("g", [(TOPIC, 1, 5), (TOPIC, 2, 7)])
        assert committed == [ErrorCode.none, ErrorCode.coordinator_not_available]
        assert offsets.query("g", TOPIC, 1) == 5  # partition 1 is this broker's queue 1
        assert await owners.fetch("g", [(TOPIC, 1), (TOPIC, 3), (TOPIC, 0)]) == [5, None, -1]
        assert await owners.topics("g") is None
    finally:
        owners.close()
