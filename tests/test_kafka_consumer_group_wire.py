"""KIP-848 consumer groups over real sockets (a broker and its Kafka frontend in this process):
ConsumerGroupHeartbeat and ConsumerGroupDescribe as a client sees them, the feature a Kafka 4
client checks, offsets with member epochs, listing and describing, and the one-protocol rule."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path
from typing import Any

from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.consumer_group_describe.v1.request import ConsumerGroupDescribeRequest
from kio.schema.consumer_group_heartbeat.v1.request import ConsumerGroupHeartbeatRequest
from kio.schema.consumer_group_heartbeat.v1.request import TopicPartitions as OwnedPartitions
from kio.schema.describe_groups.v5.request import DescribeGroupsRequest
from kio.schema.describe_groups.v6.request import DescribeGroupsRequest as DescribeGroupsV6
from kio.schema.errors import ErrorCode
from kio.schema.heartbeat.v4.request import HeartbeatRequest
from kio.schema.list_groups.v5.request import ListGroupsRequest
from kio.schema.offset_commit.v9.request import OffsetCommitRequest as CommitV9
from kio.schema.offset_commit.v9.request import OffsetCommitRequestPartition as CommitPartV9
from kio.schema.offset_commit.v9.request import OffsetCommitRequestTopic as CommitTopicV9
from kio.schema.offset_fetch.v9.request import OffsetFetchRequest as FetchV9
from kio.schema.offset_fetch.v9.request import OffsetFetchRequestGroup as FetchGroupV9
from kio.schema.offset_fetch.v9.request import OffsetFetchRequestTopics as FetchTopicsV9
from kio.schema.sync_group.v5.request import SyncGroupRequest, SyncGroupRequestAssignment

from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.group.consumer_protocol import assigned_partitions, encode_assignment
from tests.test_kafka_group_wire import TOPIC, Wire, join_member, join_v5, run


def ms(n: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=n)


def hb(
    member: str, epoch: int, group: str = "cg", owned: Any = None, **kw: Any
) -> ConsumerGroupHeartbeatRequest:
    if epoch == 0:
        kw.setdefault("rebalance_timeout", ms(5_000))
        kw.setdefault("subscribed_topic_names", (TOPIC,))
        owned = () if owned is None else owned
    return ConsumerGroupHeartbeatRequest(
        group_id=group, member_id=member, member_epoch=epoch, topic_partitions=owned, **kw
    )


def test_api_versions_advertises_the_consumer_protocol_and_group_version(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        r = await wire.call(ApiVersionsRequest(client_software_name="test", client_software_version="1"))
        keys = {k.api_key: (k.min_version, k.max_version) for k in r.api_keys}
        assert keys[68] == (0, 1) and keys[69] == (0, 1)
        finalized = {f.name: f.max_version_level for f in r.finalized_features}
        assert finalized == {"group.version": 1, "share.version": 1}
        assert r.finalized_features_epoch >= 0
        wire.close()

    run(tmp_path, body)


def test_members_share_partitions_with_epochs_offsets_and_describe(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        a = await wire.call(hb("a", 0))
        assert a.error_code == ErrorCode.none and a.member_id == "a" and a.member_epoch >= 1
        assert a.heartbeat_interval.total_seconds() > 0
        (tp,) = a.assignment.topic_partitions
        assert sorted(tp.partitions) == [0, 1, 2, 3]
        tid = tp.topic_id
        b = await wire.call(hb("b", 0))
        assert b.member_epoch > a.member_epoch and b.assignment.topic_partitions == ()
        # a is told to revoke half; b gets them only after a acknowledges
        r = await wire.call(
            hb("a", a.member_epoch, owned=(OwnedPartitions(topic_id=tid, partitions=(0, 1, 2, 3)),))
        )
        kept = tuple(r.assignment.topic_partitions[0].partitions)
        assert len(kept) == 2 and r.member_epoch == a.member_epoch
        r = await wire.call(hb("a", a.member_epoch, owned=(OwnedPartitions(topic_id=tid, partitions=kept),)))
        epoch_a = r.member_epoch
        assert epoch_a == b.member_epoch
        r = await wire.call(hb("b", b.member_epoch, owned=()))
        assert sorted(r.assignment.topic_partitions[0].partitions) == sorted({0, 1, 2, 3} - set(kept))
        assert (await wire.call(hb("a", epoch_a + 5))).error_code == ErrorCode.fenced_member_epoch
        assert (await wire.call(hb("zz", 3))).error_code == ErrorCode.unknown_member_id

        d = await wire.call(
            ConsumerGroupDescribeRequest(group_ids=("cg", "nope"), include_authorized_operations=False)
        )
        cg, nope = d.groups
        assert (
            cg.error_code == ErrorCode.none and cg.group_state == "Stable" and cg.assignor_name == "uniform"
        )
        assert {m.member_id: m.member_epoch for m in cg.members} == {"a": epoch_a, "b": epoch_a}
        assert cg.members[0].assignment.topic_partitions[0].topic_name == TOPIC
        assert nope.error_code == ErrorCode.group_id_not_found

        # OffsetCommit v9: the generation is the member epoch
        def commit(epoch: int) -> CommitV9:
            part = CommitPartV9(partition_index=kept[0], committed_offset=5, committed_metadata=None)
            return CommitV9(
                group_id="cg",
                generation_id_or_member_epoch=epoch,
                member_id="a",
                group_instance_id=None,
                topics=(CommitTopicV9(name=TOPIC, partitions=(part,)),),
            )

        ok = await wire.call(commit(epoch_a))
        assert ok.topics[0].partitions[0].error_code == ErrorCode.none
        stale = await wire.call(commit(epoch_a + 1))
        assert stale.topics[0].partitions[0].error_code == ErrorCode.stale_member_epoch

        def fetch(epoch: int) -> FetchV9:
            topics = (FetchTopicsV9(name=TOPIC, partition_indexes=(kept[0],)),)
            group = FetchGroupV9(group_id="cg", member_id="a", member_epoch=epoch, topics=topics)
            return FetchV9(groups=(group,), require_stable=False)

        f = await wire.call(fetch(epoch_a))
        assert f.groups[0].topics[0].partitions[0].committed_offset == 5
        assert (await wire.call(fetch(epoch_a + 1))).groups[0].error_code == ErrorCode.stale_member_epoch

        listed = await wire.call(ListGroupsRequest(states_filter=(), types_filter=("consumer",)))
        assert [(g.group_id, g.group_type, g.group_state) for g in listed.groups] == [
            ("cg", "consumer", "Stable")
        ]
        described = await wire.call(
            DescribeGroupsRequest(groups=("cg",), include_authorized_operations=False)
        )
        assert described.groups[0].group_state == "Dead"  # as Kafka 4 answers DescribeGroups < v6

        # a leaves: b gets everything
        left = await wire.call(hb("a", -1))
        assert left.error_code == ErrorCode.none and left.member_epoch == -1
        r = await wire.call(
            hb(
                "b",
                epoch_a,
                owned=(OwnedPartitions(topic_id=tid, partitions=tuple(sorted({0, 1, 2, 3} - set(kept)))),),
            )
        )
        assert sorted(r.assignment.topic_partitions[0].partitions) == [0, 1, 2, 3]
        wire.close()

    run(tmp_path, body)


def test_groups_of_both_protocols_upgrade_and_convert(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        # a classic group of another protocol type (Kafka Connect's) cannot become a consumer group
        member = await join_member(wire, "connect")
        joined = await wire.call(
            dataclasses.replace(join_v5(member, group="connect"), protocol_type="connect")
        )
        assert joined.error_code == ErrorCode.none
        r = await wire.call(hb("x", 0, group="connect"))
        assert r.error_code == ErrorCode.group_id_not_found
        assert r.error_message == "Group connect is not a consumer group."
        # a classic consumer group with a member is upgraded by a consumer-protocol member ...
        member = await join_member(wire, "mixed")
        joined = await wire.call(join_v5(member, group="mixed"))
        assert joined.error_code == ErrorCode.none
        n = await wire.call(hb("n", 0, group="mixed"))
        assert n.error_code == ErrorCode.none
        listed = await wire.call(ListGroupsRequest(states_filter=(), types_filter=("consumer",)))
        assert "mixed" in [g.group_id for g in listed.groups]
        # ... and the classic member stays in it: told to rejoin, it rejoins at the member epoch
        beat = await wire.call(
            HeartbeatRequest(
                group_id="mixed", generation_id=joined.generation_id, member_id=member, group_instance_id=None
            )
        )
        assert beat.error_code == ErrorCode.rebalance_in_progress
        rejoined = await wire.call(join_v5(member, group="mixed"))
        assert rejoined.error_code == ErrorCode.none and rejoined.generation_id > joined.generation_id
        d = await wire.call(
            ConsumerGroupDescribeRequest(group_ids=("mixed",), include_authorized_operations=False)
        )
        assert sorted(m.member_type for m in d.groups[0].members) == [0, 1]  # classic, consumer
        # an empty consumer group converts to a classic one
        assert (await wire.call(hb("a", 0))).error_code == ErrorCode.none
        assert (await wire.call(hb("a", -1))).error_code == ErrorCode.none
        first = await wire.call(join_v5(group="cg"))
        assert first.error_code == ErrorCode.member_id_required
        wire.close()

    run(tmp_path, body)


def test_last_consumer_protocol_member_leaving_downgrades_the_group_to_classic(tmp_path: Path) -> None:
    """KIP-848 downgrade (group.consumer.migration.policy bidirectional): the classic member
    carries on in a classic group, rejoins as its leader, and owns every partition; the offsets
    committed while it was a consumer group stay. Under ``upgrade`` the group stays a consumer group."""

    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        for group, policy in (("down", "bidirectional"), ("stays", "upgrade")):
            frontend.coordinator.migration_policy = policy
            k = await join_member(wire, group)
            joined = await wire.call(join_v5(k, group=group))
            everything = encode_assignment({TOPIC: frozenset(range(4))})
            sync = SyncGroupRequest(
                group_id=group,
                generation_id=joined.generation_id,
                member_id=k,
                group_instance_id=None,
                protocol_type="consumer",
                protocol_name="range",
                assignments=(SyncGroupRequestAssignment(member_id=k, assignment=everything),),
            )
            assert (await wire.call(sync)).error_code == ErrorCode.none
            n = await wire.call(hb("n", 0, group=group))  # the upgrade
            assert n.error_code == ErrorCode.none
            rejoined = await wire.call(join_v5(k, group=group))
            epoch = rejoined.generation_id
            part = CommitPartV9(partition_index=0, committed_offset=7, committed_metadata=None)
            commit = CommitV9(
                group_id=group,
                generation_id_or_member_epoch=epoch,
                member_id=k,
                group_instance_id=None,
                topics=(CommitTopicV9(name=TOPIC, partitions=(part,)),),
            )
            assert (await wire.call(commit)).topics[0].partitions[0].error_code == ErrorCode.none
            assert (await wire.call(hb("n", -1, group=group))).error_code == ErrorCode.none
            listed = await wire.call(ListGroupsRequest(states_filter=(), types_filter=()))
            types = {g.group_id: g.group_type for g in listed.groups}
            if policy == "upgrade":
                assert types[group] == "consumer"
                continue
            assert types[group] == "classic"
            described = await wire.call(
                DescribeGroupsRequest(groups=(group,), include_authorized_operations=False)
            )
            assert described.groups[0].group_state == "PreparingRebalance"
            beat = HeartbeatRequest(group_id=group, generation_id=epoch, member_id=k, group_instance_id=None)
            assert (await wire.call(beat)).error_code == ErrorCode.rebalance_in_progress
            again = await wire.call(join_v5(k, group=group))
            assert again.error_code == ErrorCode.none and again.leader == k
            assert again.generation_id == epoch + 1
            sync = dataclasses.replace(sync, generation_id=again.generation_id)
            synced = await wire.call(sync)
            assert assigned_partitions(synced.assignment) == {TOPIC: [0, 1, 2, 3]}
            beat = dataclasses.replace(beat, generation_id=again.generation_id)
            assert (await wire.call(beat)).error_code == ErrorCode.none
            topics = (FetchTopicsV9(name=TOPIC, partition_indexes=(0,)),)
            fetch = FetchV9(
                groups=(FetchGroupV9(group_id=group, member_id=None, member_epoch=-1, topics=topics),),
                require_stable=False,
            )
            assert (await wire.call(fetch)).groups[0].topics[0].partitions[0].committed_offset == 7
        wire.close()

    run(tmp_path, body)


def test_describe_groups_v6_names_why_a_group_is_not_described(tmp_path: Path) -> None:
    """KIP-1043 (Kafka 4.0): DescribeGroups v6 answers GROUP_ID_NOT_FOUND with Kafka's message for
    an unknown group and for a consumer-protocol group (not a classic group)."""

    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        wire = await Wire.open(frontend.port)
        assert (await wire.call(hb("a", 0))).error_code == ErrorCode.none
        r = await wire.call(DescribeGroupsV6(groups=("cg", "nope"), include_authorized_operations=False))
        got = [(g.group_id, g.error_code, g.error_message, g.group_state) for g in r.groups]
        assert got == [
            ("cg", ErrorCode.group_id_not_found, "Group cg is not a classic group.", "Dead"),
            ("nope", ErrorCode.group_id_not_found, "Group nope not found.", "Dead"),
        ]
        wire.close()

    run(tmp_path, body)
