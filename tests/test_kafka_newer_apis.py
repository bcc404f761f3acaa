"""The APIs Kafka 3.8-4.x clients call, over the wire as a client sends them (kio requests).

Before this change: topic ids only in Metadata; Fetch v13+, DescribeTopicPartitions, DescribeLogDirs,
DescribeProducers, ElectLeaders, partition reassignments, DescribeQuorum and telemetry were not served
(clients saw the key missing), and InitProducerId with a transactional id had no "transactions off" answer.
"""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path

from kio.schema.alter_partition_reassignments.v0.request import (
    AlterPartitionReassignmentsRequest,
    ReassignablePartition,
    ReassignableTopic,
)
from kio.schema.describe_cluster.v1.request import DescribeClusterRequest
from kio.schema.describe_log_dirs.v4.request import DescribableLogDirTopic, DescribeLogDirsRequest
from kio.schema.describe_producers.v0.request import DescribeProducersRequest, TopicRequest
from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest, PartitionData, TopicData
from kio.schema.describe_topic_partitions.v0.request import Cursor, DescribeTopicPartitionsRequest
from kio.schema.describe_topic_partitions.v0.request import TopicRequest as DtpTopic
from kio.schema.elect_leaders.v2.request import ElectLeadersRequest, TopicPartitions
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v16.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.get_telemetry_subscriptions.v0.request import GetTelemetrySubscriptionsRequest
from kio.schema.init_producer_id.v5.request import InitProducerIdRequest
from kio.schema.list_partition_reassignments.v0.request import ListPartitionReassignmentsRequest
from kio.schema.metadata.v13.request import MetadataRequest, MetadataRequestTopic
from kio.schema.push_telemetry.v0.request import PushTelemetryRequest

from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.topic_ids import TopicIdIndex, topic_id
from tests.inprocess import kafka_broker
from tests.test_kafka_fetch_sessions import session_fetch
from tests.test_kafka_frontend import TOPIC, Wire, batch, ms, produced, records_of, run

SECOND = datetime.timedelta(seconds=1)


def fetch_by_id(tid: uuid.UUID, offset: int = 0, session_id: int = 0, epoch: int = -1) -> FetchRequest:
    part = FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20, log_start_offset=-1)
    return FetchRequest(
        max_wait=ms(0),
        min_bytes=0,
        max_bytes=1 << 20,
        isolation_level=0,
        session_id=session_id,
        session_epoch=epoch,
        topics=(FetchTopic(topic_id=tid, partitions=(part,)),),
        forgotten_topics_data=(),
        rack_id="",
    )


async def topic_id_of(wire: Wire, name: str) -> uuid.UUID:
    r = await wire.call(
        MetadataRequest(
            topics=(MetadataRequestTopic(name=name, topic_id=None),),
            allow_auto_topic_creation=False,
            include_topic_authorized_operations=False,
        )
    )
    return r.topics[0].topic_id


def test_fetch_by_topic_id_unknown_ids_and_sessions_keep_their_naming(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        assert (await produced(wire, batch(3)))[0] == ErrorCode.none
        tid = await topic_id_of(wire, TOPIC)
        assert tid != uuid.UUID(int=0)
        r = await wire.call(fetch_by_id(tid))
        assert r.responses[0].topic_id == tid
        part = r.responses[0].partitions[0]
        assert part.error_code == ErrorCode.none and len(records_of(part.records)) == 3
        r = await wire.call(fetch_by_id(uuid.uuid4()))
        assert r.responses[0].partitions[0].error_code == ErrorCode.unknown_topic_id
        # a session made by id: an incremental fetch by name (v12) on it is FETCH_SESSION_TOPIC_ID_ERROR
        r = await wire.call(fetch_by_id(tid, offset=3, epoch=0))
        assert r.session_id != 0
        r12 = await wire.call(session_fetch(r.session_id, 1, {}))
        assert r12.error_code == ErrorCode.fetch_session_topic_id_error
        wire.close()

    run(tmp_path, body)


def test_topic_ids_survive_a_restart(tmp_path: Path) -> None:
    import asyncio

    async def main() -> list[uuid.UUID]:
        ids = []
        for _ in range(2):
            async with kafka_broker(tmp_path, TOPIC, 2) as (_, frontend):
                wire = await Wire.open(frontend.port)
                ids.append(await topic_id_of(wire, TOPIC))
                wire.close()
        return ids

    first, second = asyncio.run(main())
    assert first == second != uuid.UUID(int=0)


def test_describe_topic_partitions_pages_with_a_cursor(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        broker.topics.create_if_absent("other", 3)
        wire = await Wire.open(frontend.port)
        tid = await topic_id_of(wire, TOPIC)
        wanted = (DtpTopic(name=TOPIC), DtpTopic(name="other"), DtpTopic(name="nope"))
        r = await wire.call(DescribeTopicPartitionsRequest(topics=wanted, response_partition_limit=2))
        # names in order: "kt" < "nope" < "other"; two partitions answered, "kt"'s
        assert [(t.name, len(t.partitions)) for t in r.topics] == [(TOPIC, 2)]
        assert r.topics[0].topic_id == tid
        assert r.topics[0].partitions[0].eligible_leader_replicas == ()  # a list, never null (Java reads it)
        assert (r.next_cursor.topic_name, r.next_cursor.partition_index) == ("nope", 0)
        cursor = Cursor(topic_name="other", partition_index=1)
        r = await wire.call(
            DescribeTopicPartitionsRequest(topics=wanted, response_partition_limit=5, cursor=cursor)
        )
        assert [(t.name, [p.partition_index for p in t.partitions]) for t in r.topics] == [("other", [1, 2])]
        assert r.next_cursor is None
        r = await wire.call(DescribeTopicPartitionsRequest(topics=wanted[:1], response_partition_limit=5))
        r2 = await wire.call(
            DescribeTopicPartitionsRequest(topics=(DtpTopic(name="nope"),), response_partition_limit=5)
        )
        assert r2.topics[0].error_code == ErrorCode.unknown_topic_or_partition
        bad = Cursor(topic_name="zzz", partition_index=0)
        r = await wire.call(DescribeTopicPartitionsRequest(topics=wanted[:1], cursor=bad))
        assert r.topics[0].error_code == ErrorCode.invalid_request
        wire.close()

    run(tmp_path, body)


def test_describe_log_dirs_names_the_store_and_each_partitions_bytes(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        one = batch(3)
        await produced(wire, one)
        await produced(wire, batch(2, first=3))
        r = await wire.call(
            DescribeLogDirsRequest(topics=(DescribableLogDirTopic(topic=TOPIC, partitions=(0, 1)),))
        )
        result = r.results[0]
        assert result.log_dir == str((tmp_path / "store").resolve()) and result.total_bytes > 0
        sizes = {p.partition_index: p.partition_size for p in result.topics[0].partitions}
        # two batch entries, each counted once (not once per record), framing included
        assert sizes[1] == 0 and sizes[0] > 2 * len(one) - 20 and sizes[0] < 2 * len(one) + 1000
        before = sizes[0]
        await produced(wire, batch(1, first=5))
        r = await wire.call(DescribeLogDirsRequest(topics=None))
        grown = {
            p.partition_index: p.partition_size
            for t in r.results[0].topics
            for p in t.partitions
            if t.name == TOPIC
        }
        assert grown[0] > before
        wire.close()

    run(tmp_path, body)


def test_describe_producers_lists_an_idempotent_producer(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        init = await wire.call(
            InitProducerIdRequest(
                transactional_id=None, transaction_timeout=SECOND, producer_id=-1, producer_epoch=-1
            )
        )
        await produced(wire, batch(4, pid=init.producer_id, epoch=0, seq=0))
        r = await wire.call(
            DescribeProducersRequest(topics=(TopicRequest(name=TOPIC, partition_indexes=(0, 1, 9)),))
        )
        parts = {p.partition_index: p for p in r.topics[0].partitions}
        (active,) = parts[0].active_producers
        assert (active.producer_id, active.producer_epoch, active.last_sequence) == (init.producer_id, 0, 3)
        assert active.current_txn_start_offset == -1
        assert parts[1].active_producers == () and parts[9].error_code == ErrorCode.unknown_topic_or_partition
        wire.close()

    run(tmp_path, body)


def test_leaders_and_replicas_do_not_move_and_say_why(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        r = await wire.call(
            ElectLeadersRequest(
                election_type=0,
                topic_partitions=(TopicPartitions(topic=TOPIC, partitions=(0, 7)),),
                timeout=SECOND,
            )
        )
        codes = {p.partition_id: p.error_code for p in r.replica_election_results[0].partition_result}
        assert codes == {0: ErrorCode.election_not_needed, 7: ErrorCode.unknown_topic_or_partition}
        node = frontend.cluster.node_id
        moves = (
            ReassignablePartition(partition_index=0, replicas=(node,)),
            ReassignablePartition(partition_index=1, replicas=(node, node + 1)),
            ReassignablePartition(partition_index=1, replicas=None),
        )
        r = await wire.call(
            AlterPartitionReassignmentsRequest(
                timeout=SECOND, topics=(ReassignableTopic(name=TOPIC, partitions=moves),)
            )
        )
        got = [(p.error_code, bool(p.error_message)) for p in r.responses[0].partitions]
        assert got == [
            (ErrorCode.none, False),
            (ErrorCode.invalid_replica_assignment, True),
            (ErrorCode.no_reassignment_in_progress, True),
        ]
        r = await wire.call(ListPartitionReassignmentsRequest(timeout=SECOND, topics=None))
        assert r.error_code == ErrorCode.none and r.topics == ()
        wire.close()

    run(tmp_path, body)


def test_describe_quorum_and_telemetry(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        q = DescribeQuorumRequest(
            topics=(
                TopicData(topic_name="__cluster_metadata", partitions=(PartitionData(partition_index=0),)),
            )
        )
        r = await wire.call(q)
        assert r.error_code == ErrorCode.none
        assert r.topics[0].partitions[0].error_code == ErrorCode.not_leader_or_follower
        sub = await wire.call(GetTelemetrySubscriptionsRequest(client_instance_id=uuid.UUID(int=0)))
        assert sub.error_code == ErrorCode.none and sub.requested_metrics == ()
        assert sub.client_instance_id != uuid.UUID(int=0)
        push = PushTelemetryRequest(
            client_instance_id=sub.client_instance_id,
            subscription_id=sub.subscription_id,
            terminating=True,
            compression_type=0,
            metrics=b"",
        )
        assert (await wire.call(push)).error_code == ErrorCode.none
        wire.close()

    run(tmp_path, body)


def test_init_producer_id_with_a_transactional_id_while_transactions_are_off(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        r = await wire.call(
            InitProducerIdRequest(
                transactional_id="tx", transaction_timeout=SECOND, producer_id=-1, producer_epoch=-1
            )
        )
        # the feature is checked before permissions, as Kafka's transactional APIs check the version first
        assert (r.error_code, r.producer_id) == (ErrorCode.unsupported_version, -1)
        wire.close()

    run(tmp_path, body, kafka_transactions_enable=False, kafka_authorizer_enable=True)


def test_metadata_by_topic_id_with_an_empty_name_as_the_java_client_sends_it(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        tid = await topic_id_of(wire, TOPIC)
        for name in ("", None):
            r = await wire.call(
                MetadataRequest(
                    topics=(MetadataRequestTopic(name=name, topic_id=tid),),
                    allow_auto_topic_creation=False,
                    include_topic_authorized_operations=False,
                )
            )
            got = r.topics[0]
            assert (got.error_code, got.name, got.topic_id) == (ErrorCode.none, TOPIC, tid)
        wire.close()

    run(tmp_path, body)


def test_metadata_and_describe_cluster_name_the_broker_rack(tmp_path: Path) -> None:
    """brokerRack (Kafka's broker.rack) reaches clients, whose rack-aware assignors read it."""

    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        broker.config.broker_rack = "rack-a"
        r = await wire.call(
            MetadataRequest(
                topics=(), allow_auto_topic_creation=False, include_topic_authorized_operations=False
            )
        )
        assert [b.rack for b in r.brokers] == ["rack-a"]
        d = await wire.call(
            DescribeClusterRequest(include_cluster_authorized_operations=False, endpoint_type=1)
        )
        assert [b.rack for b in d.brokers] == ["rack-a"]
        assert frontend.cluster.partition_racks(TOPIC)[0] == frozenset({"rack-a"})
        # another broker group's rack is its zone as the name servers report it
        frontend.cluster._learn_peer("other-group", "127.0.0.1:19092", "rack-b")
        assert {n.rack for n in frontend.cluster.nodes()} == {"rack-a", "rack-b"}
        wire.close()

    run(tmp_path, body)


def test_the_topic_id_index_rebuilds_only_when_the_topic_table_changed() -> None:
    index = TopicIdIndex("C")
    names = ["a"]
    assert index.name_of(topic_id("C", "a"), names, 1) == "a"
    names.append("b")  # the table changed but its version was not bumped: an unknown id costs no rebuild
    assert index.name_of(topic_id("C", "b"), names, 1) is None
    assert index.name_of(topic_id("C", "b"), names, 2) == "b"
    assert index.name_of(uuid.UUID(int=0), names, 3) is None and topic_id("C", "a") != topic_id("D", "a")
