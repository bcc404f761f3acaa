"""Kafka frontend state that clients create stays bounded.

Topic-name caches: a client naming millions of random topics (Metadata, Produce, Fetch) must not
grow the frontend's memory: illegal names are refused before any lookup and the route cache is
bounded. Idempotent-producer state expires after producer.id.expiration.ms without a write
(Kafka's semantics), and a Kafka group left empty drops its state object (its committed offsets
stay in the broker's offset store).
"""

from __future__ import annotations

import asyncio
import random
import string
from pathlib import Path

import pytest
from kio.schema.errors import ErrorCode

from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka import cluster as cluster_module
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.group.state import GroupConfig, JoinRequest
from ferrymq.gateway.kafka.producer_state import ProducerStates
from tests.test_kafka_frontend import TOPIC, Wire, batch, fetch, metadata, produce, produced, run

ROUTES_BOUND = 300


def _names(n: int, legal: bool) -> list[str]:
    rnd = random.Random(n)
    alphabet = string.ascii_letters if legal else "!@# $*()"
    return ["".join(rnd.choices(alphabet, k=20)) for _ in range(n)]


def test_random_topic_names_do_not_grow_the_route_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_module, "MAX_ROUTES", ROUTES_BOUND, raising=False)

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        wire = await Wire.open(f.port)
        legal, illegal = _names(2000, True), _names(500, False)
        for i in range(0, len(legal), 250):
            r = await wire.call(metadata(*legal[i : i + 250], auto=False))
            assert {t.error_code for t in r.topics} == {ErrorCode.unknown_topic_or_partition}
        r = await wire.call(metadata(*illegal, auto=False))
        assert {t.error_code for t in r.topics} == {ErrorCode.invalid_topic_exception}
        for name in legal[:300] + illegal[:100]:
            response = await wire.call(produce(batch(1), topic=name))
            assert response.responses[0].partition_responses[0].error_code != ErrorCode.none
            part = (await wire.call(fetch(0, topic=name))).responses[0].partitions[0]
            assert part.error_code != ErrorCode.none
        view = f.cluster
        cached = set(view._remote) | set(view._placed)
        assert len(view._remote) <= ROUTES_BOUND and len(view._placed) <= ROUTES_BOUND + 1, len(cached)
        assert not cached & set(illegal)  # illegal names are never looked up
        assert await produced(wire, batch(2)) == (ErrorCode.none, 0)  # the real topic still works
        assert TOPIC in view._placed

    run(tmp_path, body, auto_create_topic_enable=False)


def _info(pid: int, seq: int) -> rb.BatchInfo:
    return rb.BatchInfo(0, 100, 0, 0, 0, 0, pid, 0, seq, 1)


def test_idempotent_producer_state_expires_after_producer_id_expiration_ms(tmp_path: Path) -> None:
    now = [0]
    states = ProducerStates(
        tmp_path / "ids.json", lambda t, p: iter(()), expiration_ms=60_000, clock=lambda: now[0]
    )
    for pid in range(1000):
        states.appended("t", pid % 4, _info(pid, 0), pid)
    now[0] = 30_000
    states.appended("t", 0, _info(0, 1), 1000)  # producer 0 writes again: it stays
    assert states.producer_count() == 1000
    now[0] = 60_001
    states.expire()
    assert states.producer_count() == 1
    now[0] = 90_001
    states.expire()
    assert states.producer_count() == 0
    # an expired producer is unknown: any sequence is accepted, as in Kafka
    assert states.check("t", 0, _info(0, 7))[0].name == "OK"


def test_a_group_left_empty_drops_its_state(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        coordinator = f.coordinator
        for n in range(50):
            group = f"g{n}"
            req = JoinRequest("", None, "c", "/127.0.0.1", 6000, 6000, "consumer", (("range", b""),), False)
            joined = await coordinator.join(group, req, "127.0.0.1:1")
            assert joined.error == ErrorCode.none
            assert coordinator.leave(group, [(joined.member_id, None)])[0] == ErrorCode.none
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while coordinator.groups.groups and loop.time() < deadline:
            await asyncio.sleep(0.05)  # the coordinator's sweep runs on its own timer (1 s here)
        assert len(coordinator.groups.groups) == 0

    config = GroupConfig(initial_rebalance_delay_ms=0, empty_group_retention_ms=0)
    run(tmp_path, body, group_config=config)
