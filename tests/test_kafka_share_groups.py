"""Kafka share groups (KIP-932) over real sockets against an in-process broker: ApiVersions and the
share.version feature, ShareGroupHeartbeat/Describe, ShareFetch and ShareAcknowledge over the POP
core (acquisition locks, delivery counts, release, reject to the DLQ, the delivery count limit),
share session epochs, and a RocketMQ POP consumer of the same group sharing the same records."""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.errors import ErrorCode
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from kio.schema.share_acknowledge.v2.request import AcknowledgementBatch as AckBatch
from kio.schema.share_acknowledge.v2.request import (
    AcknowledgePartition,
    AcknowledgeTopic,
    ShareAcknowledgeRequest,
)
from kio.schema.share_fetch.v2.request import (
    AcknowledgementBatch,
    FetchPartition,
    FetchTopic,
    ShareFetchRequest,
)
from kio.schema.share_group_describe.v1.request import ShareGroupDescribeRequest
from kio.schema.share_group_heartbeat.v1.request import ShareGroupHeartbeatRequest

from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.pop import PopRequest
from ferrymq.core.broker.topic_config import DLQ_GROUP_TOPIC_PREFIX
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.group.share_group import ShareGroups
from ferrymq.gateway.kafka.topic_ids import topic_id
from tests.inprocess import run_kafka_broker
from tests.test_kafka_group_wire import Wire

TOPIC = "jobs"
GROUP = "sg"
ACCEPT, RELEASE, REJECT, RENEW = 1, 2, 3, 4
LOCK_MS = 1000  # the shortest lock Kafka allows: the lock-expiry test waits for it (an event, not a sleep)


def ms(n: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=n)


def run(tmp_path: Path, body: Any, **config: Any) -> None:
    conf = {
        "kafka_share_record_lock_duration_ms": LOCK_MS,
        "kafka_share_auto_offset_reset": "earliest",
        "kafka_share_delivery_count_limit": 3,
        **config,
    }
    run_kafka_broker(tmp_path, body, TOPIC, 1, timeout=30, **conf)


def tid(frontend: KafkaFrontend) -> uuid.UUID:
    return topic_id(frontend.cluster.cluster_id, TOPIC)


async def produce(wire: Wire, n: int) -> None:
    now = int(time.time() * 1000)
    batch = rb.build_batch(0, [(i, now, None, f"v{i}".encode(), []) for i in range(n)])
    r = await wire.call(
        ProduceRequest(
            transactional_id=None,
            acks=1,
            timeout=ms(5000),
            topic_data=(
                TopicProduceData(name=TOPIC, partition_data=(PartitionProduceData(index=0, records=batch),)),
            ),
        )
    )
    assert r.responses[0].partition_responses[0].error_code == ErrorCode.none


def heartbeat(
    member: str, epoch: int, topics: tuple[str, ...] | None = (TOPIC,)
) -> ShareGroupHeartbeatRequest:
    return ShareGroupHeartbeatRequest(
        group_id=GROUP, member_id=member, member_epoch=epoch, subscribed_topic_names=topics
    )


def fetch(
    t: uuid.UUID,
    member: str,
    epoch: int,
    acks: tuple[tuple[int, int, tuple[int, ...]], ...] = (),
    wait_ms: int = 0,
    max_records: int = 500,
) -> ShareFetchRequest:
    batches = tuple(
        AcknowledgementBatch(first_offset=f, last_offset=la, acknowledge_types=k) for f, la, k in acks
    )
    return ShareFetchRequest(
        group_id=GROUP,
        member_id=member,
        share_session_epoch=epoch,
        max_wait=ms(wait_ms),
        min_bytes=1,
        max_records=max_records,
        batch_size=500,
        topics=(
            FetchTopic(
                topic_id=t, partitions=(FetchPartition(partition_index=0, acknowledgement_batches=batches),)
            ),
        ),
        forgotten_topics_data=(),
    )


def acquired(response: Any) -> dict[int, int]:
    """offset -> delivery count of every record a ShareFetch acquired."""
    assert response.error_code == ErrorCode.none, response
    out = {}
    for t in response.responses:
        for p in t.partitions:
            for a in p.acquired_records:
                for off in range(a.first_offset, a.last_offset + 1):
                    out[off] = a.delivery_count
    return out


def offsets_in(response: Any) -> set[int]:
    """The record offsets the batches of a ShareFetch carry."""
    out = set()
    for t in response.responses:
        for p in t.partitions:
            data = bytes(p.records or b"")
            for info in rb.split_batches(data) if data else []:
                base = rb.base_offset_of(data, info.start)
                out.update(range(base, base + info.last_offset_delta + 1))
    return out


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` (state the revive timer changes) with a generous deadline."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def ack_error(response: Any) -> int:
    return int(response.responses[0].partitions[0].acknowledge_error_code)


def test_api_versions_advertise_share_groups_as_kafka_4_2(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        r = await wire.call(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        keys = {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in r.api_keys}
        assert {k: keys.get(k) for k in (76, 77, 78, 79)} == {76: (1, 1), 77: (1, 1), 78: (1, 2), 79: (1, 2)}
        assert {f.name: f.max_version_level for f in r.finalized_features}["share.version"] == 1
        broker.config.kafka_share_groups_enable = False
        r = await wire.call(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
        assert not {76, 77, 78, 79} & {int(k.api_key) for k in r.api_keys}
        assert "share.version" not in {f.name for f in r.finalized_features}
        hb = await wire.call(heartbeat("m1", 0))
        assert hb.error_code == ErrorCode.unsupported_version
        wire.close()

    run(tmp_path, body)


def test_members_join_with_every_partition_describe_and_leave(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        a = await wire.call(heartbeat("a", 0))
        assert a.error_code == ErrorCode.none and a.member_id == "a" and a.member_epoch >= 1
        assert [(tp.topic_id, tuple(tp.partitions)) for tp in a.assignment.topic_partitions] == [
            (tid(frontend), (0,))
        ]
        b = await wire.call(heartbeat("b", 0))
        assert b.assignment.topic_partitions[0].partitions == (0,), "share partitions are shared"
        again = await wire.call(heartbeat("a", a.member_epoch, None))
        assert again.error_code == ErrorCode.none and again.assignment is None, "unchanged: no assignment"
        fenced = await wire.call(heartbeat("a", a.member_epoch + 5, None))
        assert fenced.error_code == ErrorCode.fenced_member_epoch
        unknown = await wire.call(heartbeat("zz", 3, None))
        assert unknown.error_code == ErrorCode.unknown_member_id
        no_topics = await wire.call(heartbeat("c", 0, None))
        assert no_topics.error_code == ErrorCode.invalid_request
        d = await wire.call(
            ShareGroupDescribeRequest(group_ids=(GROUP, "nope"), include_authorized_operations=False)
        )
        ours, missing = d.groups
        assert ours.group_state == "Stable" and [m.member_id for m in ours.members] == ["a", "b"]
        assert ours.members[0].assignment.topic_partitions[0].topic_name == TOPIC
        assert missing.error_code == ErrorCode.group_id_not_found
        left = await wire.call(heartbeat("a", -1, None))
        assert left.error_code == ErrorCode.none and left.member_epoch == -1
        d = await wire.call(
            ShareGroupDescribeRequest(group_ids=(GROUP,), include_authorized_operations=False)
        )
        assert [m.member_id for m in d.groups[0].members] == ["b"]
        wire.close()

    run(tmp_path, body)


def test_two_members_split_records_release_reject_and_lock_expiry(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        t = tid(frontend)
        await produce(wire, 6)
        await wire.call(heartbeat("a", 0))
        await wire.call(heartbeat("b", 0))
        fa = await wire.call(fetch(t, "a", 0, max_records=3))
        got_a = acquired(fa)
        assert got_a == {0: 1, 1: 1, 2: 1} and set(got_a) <= offsets_in(fa)
        assert fa.acquisition_lock_timeout == ms(LOCK_MS)
        fb = await wire.call(fetch(t, "b", 0))
        assert acquired(fb) == {3: 1, 4: 1, 5: 1}, "b gets only what a did not acquire"
        # a: accepts 0, releases 1, rejects 2 (ranges of one type each, and a per-offset batch)
        fa = await wire.call(fetch(t, "a", 1, acks=((0, 2, (ACCEPT, RELEASE, REJECT)),), wait_ms=5000))
        assert ack_error(fa) == 0
        assert acquired(fa) == {1: 2}, "the released record comes back with delivery count 2"
        dlq = DLQ_GROUP_TOPIC_PREFIX + GROUP
        assert broker.store.max_offset(dlq, 0) == 1, "the rejected record is in the group's DLQ"
        # b never acknowledges: its records come back after the lock, to a member that waits for them
        fa = await wire.call(fetch(t, "a", 2, acks=((1, 1, (ACCEPT,)),), wait_ms=10_000))
        assert ack_error(fa) == 0
        assert acquired(fa) == {3: 2, 4: 2, 5: 2}
        # b's late acknowledgement finds its locks ended
        late = await wire.call(fetch(t, "b", 1, acks=((3, 5, (ACCEPT,)),)))
        assert ack_error(late) == ErrorCode.invalid_record_state
        # ShareAcknowledge: accept 3, renew 4, release 5
        r = await wire.call(
            ShareAcknowledgeRequest(
                group_id=GROUP,
                member_id="a",
                share_session_epoch=3,
                topics=(
                    AcknowledgeTopic(
                        topic_id=t,
                        partitions=(
                            AcknowledgePartition(
                                partition_index=0,
                                acknowledgement_batches=(
                                    AckBatch(
                                        first_offset=3,
                                        last_offset=5,
                                        acknowledge_types=(ACCEPT, RENEW, RELEASE),
                                    ),
                                ),
                            ),
                        ),
                    ),
                ),
            )
        )
        assert r.error_code == ErrorCode.none and r.responses[0].partitions[0].error_code == ErrorCode.none
        fa = await wire.call(fetch(t, "a", 4, acks=((4, 4, (ACCEPT,)),), wait_ms=5000))
        assert ack_error(fa) == 0 and acquired(fa) == {5: 3}, "released again: its third delivery"
        fa = await wire.call(fetch(t, "a", 5, acks=((5, 5, (RELEASE,)),)))
        assert ack_error(fa) == 0
        await until(lambda: broker.store.max_offset(dlq, 0) == 2)  # the limit (3) reached: archived
        fa = await wire.call(fetch(t, "a", 6))
        assert acquired(fa) == {}, "nothing left to deliver"
        wire.close()

    run(tmp_path, body)


def test_share_session_epochs(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        t = tid(frontend)
        await produce(wire, 2)
        assert (await wire.call(fetch(t, "a", 3))).error_code == ErrorCode.share_session_not_found
        assert (
            await wire.call(fetch(t, "a", 0, acks=((0, 0, (ACCEPT,)),)))
        ).error_code == ErrorCode.invalid_request
        first = await wire.call(fetch(t, "a", 0, max_records=1))
        assert acquired(first) == {0: 1}
        assert (await wire.call(fetch(t, "a", 5))).error_code == ErrorCode.invalid_share_session_epoch
        bad = await wire.call(fetch(t, "a", 1, acks=((0, 0, (9,)),)))
        assert ack_error(bad) == ErrorCode.invalid_request and acquired(bad) == {1: 1}
        not_held = await wire.call(fetch(t, "a", 2, acks=((7, 9, (ACCEPT,)),), max_records=1))
        assert ack_error(not_held) == ErrorCode.invalid_record_state
        # closing the session releases what the member holds: another member gets 0 and 1 again
        closed = await wire.call(fetch(t, "a", -1))
        assert closed.error_code == ErrorCode.none
        # released one by one, they may come back in more than one fetch
        again = acquired(await wire.call(fetch(t, "b", 0, wait_ms=5000)))
        for epoch in range(1, 5):
            if len(again) == 2:
                break
            again |= acquired(await wire.call(fetch(t, "b", epoch, wait_ms=5000)))
        assert again == {0: 2, 1: 2}
        wire.close()

    run(tmp_path, body)


def test_a_share_group_and_a_pop_group_of_the_same_name_share_records(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        t = tid(frontend)
        await produce(wire, 4)
        f = await wire.call(fetch(t, "a", 0, max_records=2))
        assert acquired(f) == {0: 1, 1: 1}
        popped = broker.pop.pop(PopRequest(GROUP, TOPIC, 0, 10, 60_000))
        assert [m.offset for m in popped.messages] == [2, 3], "a RocketMQ POP consumer gets the rest"
        assert broker.pop.ack(GROUP, TOPIC, popped.messages[0].receipt)
        wire.close()

    run(tmp_path, body)


def test_share_group_state_expires_silent_members() -> None:
    groups = ShareGroups(heartbeat_interval_ms=100, session_timeout_ms=1000)
    a, _ = groups.heartbeat("g", "a", 0, ("t",), {"t": 2}, now=0)
    assert a.assignment == {"t": frozenset({0, 1})}
    groups.heartbeat("g", "b", 0, ("t",), {"t": 2}, now=900)
    groups.heartbeat("g", "b", groups.groups["g"].members["b"].epoch, None, {"t": 3}, now=1500)
    assert set(groups.groups["g"].members) == {"b"}, "a was silent past the session timeout"
    assert groups.groups["g"].members["b"].assignment == {"t": frozenset({0, 1, 2})}
