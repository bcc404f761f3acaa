"""The group APIs over real sockets: a broker and its Kafka frontend in this process (so group
timers can be short), requests and responses encoded with kio as a client would.

What a client sees: member ids, generations, assignments, heartbeats telling of rebalances,
session expiry, offsets in the broker's one offset store (shared with native groups), listing,
describing and deleting groups, and the one-protocol-per-group rule in both directions.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import itertools
import json
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from kio.index import load_response_from_request
from kio.schema.delete_groups.v2.request import DeleteGroupsRequest
from kio.schema.describe_groups.v5.request import DescribeGroupsRequest
from kio.schema.errors import ErrorCode
from kio.schema.find_coordinator.v0.request import FindCoordinatorRequest as FindCoordinatorV0
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest as FindCoordinatorV4
from kio.schema.heartbeat.v4.request import HeartbeatRequest
from kio.schema.join_group.v2.request import JoinGroupRequest as JoinGroupV2
from kio.schema.join_group.v2.request import JoinGroupRequestProtocol as ProtocolV2
from kio.schema.join_group.v5.request import JoinGroupRequest as JoinGroupV5
from kio.schema.join_group.v5.request import JoinGroupRequestProtocol as ProtocolV5
from kio.schema.leave_group.v3.request import LeaveGroupRequest, MemberIdentity
from kio.schema.list_groups.v4.request import ListGroupsRequest
from kio.schema.offset_commit.v2.request import OffsetCommitRequest as CommitV2
from kio.schema.offset_commit.v2.request import OffsetCommitRequestPartition as CommitPartV2
from kio.schema.offset_commit.v2.request import OffsetCommitRequestTopic as CommitTopicV2
from kio.schema.offset_commit.v8.request import OffsetCommitRequest as CommitV8
from kio.schema.offset_commit.v8.request import OffsetCommitRequestPartition as CommitPartV8
from kio.schema.offset_commit.v8.request import OffsetCommitRequestTopic as CommitTopicV8
from kio.schema.offset_delete.v0.request import (
    OffsetDeleteRequest,
    OffsetDeleteRequestPartition,
    OffsetDeleteRequestTopic,
)
from kio.schema.offset_fetch.v1.request import OffsetFetchRequest as FetchV1
from kio.schema.offset_fetch.v1.request import OffsetFetchRequestTopic as FetchTopicV1
from kio.schema.offset_fetch.v8.request import OffsetFetchRequest as FetchV8
from kio.schema.offset_fetch.v8.request import OffsetFetchRequestGroup as FetchGroupV8
from kio.schema.sync_group.v3.request import SyncGroupRequest, SyncGroupRequestAssignment
from kio.serial import entity_reader, entity_writer

from ferrymq.core.broker.broker import Broker
from ferrymq.core.remoting.transport import connect
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.group.state import GroupConfig
from tests.inprocess import run_kafka_broker
from tests.remoting_helpers import heartbeat as native_heartbeat

TOPIC = "orders"
SESSION = 300  # ms: the coordinator here accepts short sessions so expiry is quick to see


def ms(n: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=n)


class Wire:
    """One Kafka client connection: kio-encoded requests, kio-decoded responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, client_id: str) -> None:
        self.reader, self.writer, self.client_id = reader, writer, client_id
        self.corr = itertools.count(1)

    @classmethod
    async def open(cls, port: int, client_id: str = "wire-test") -> Wire:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, client_id)

    async def call(self, request: Any) -> Any:
        req_type = type(request)
        header_type = req_type.__header_schema__
        header = header_type(
            request_api_key=req_type.__api_key__,
            request_api_version=req_type.__version__,
            correlation_id=next(self.corr),
            client_id=self.client_id,
        )
        buf = io.BytesIO()
        entity_writer(header_type)(buf, header)
        entity_writer(req_type)(buf, request)
        data = buf.getvalue()
        self.writer.write(struct.pack(">i", len(data)) + data)
        (size,) = struct.unpack(">i", await self.reader.readexactly(4))
        body = await self.reader.readexactly(size)
        resp_type = load_response_from_request(req_type)
        resp_header, offset = entity_reader(resp_type.__header_schema__)(body, 0)
        assert resp_header.correlation_id == header.correlation_id
        response, _ = entity_reader(resp_type)(body, offset)
        return response

    def close(self) -> None:
        self.writer.close()


def run(tmp_path: Path, body: Callable[[Broker, KafkaFrontend], Awaitable[None]]) -> None:
    # node 7, and a coordinator that accepts short sessions and forms groups at once
    group_config = GroupConfig(min_session_timeout_ms=100, initial_rebalance_delay_ms=0)
    run_kafka_broker(tmp_path, body, TOPIC, 4, timeout=20, node_id=7, group_config=group_config)


def join_v5(
    member_id: str = "", instance: str | None = None, group: str = "g", session: int = SESSION
) -> Any:
    return JoinGroupV5(
        group_id=group,
        session_timeout=ms(session),
        rebalance_timeout=ms(2_000),
        member_id=member_id,
        group_instance_id=instance,
        protocol_type="consumer",
        protocols=(ProtocolV5(name="range", metadata=b"meta"),),
    )


async def join_member(wire: Wire, group: str = "g") -> str:
    """The first step of a v4+ join: MEMBER_ID_REQUIRED with the id (the second join is the caller's)."""
    r = await wire.call(join_v5(group=group))
    assert r.error_code == ErrorCode.member_id_required
    assert r.member_id.startswith("wire-test-")
    return str(r.member_id)


async def heartbeat(wire: Wire, member_id: str, generation: int, group: str = "g") -> ErrorCode:
    r = await wire.call(
        HeartbeatRequest(
            group_id=group, generation_id=generation, member_id=member_id, group_instance_id=None
        )
    )
    return ErrorCode(r.error_code)


def test_two_members_join_sync_heartbeat_and_leave(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        a, b = await Wire.open(frontend.port), await Wire.open(frontend.port)
        ida, idb = await join_member(a), await join_member(b)
        first = await a.call(join_v5(ida))  # no initial delay here: a forms generation 1 alone
        assert (first.error_code, first.generation_id, first.leader) == (ErrorCode.none, 1, ida)
        b_join = asyncio.ensure_future(b.call(join_v5(idb)))
        # as a client does: a learns of the rebalance from its heartbeat, then rejoins
        while await heartbeat(a, ida, 1) != ErrorCode.rebalance_in_progress:
            await asyncio.sleep(0.01)
        ra = await a.call(join_v5(ida))
        rb = await b_join
        assert ra.error_code == rb.error_code == ErrorCode.none
        gen = ra.generation_id
        assert ra.leader == rb.leader
        leader, follower = (a, b) if ra.leader == ida else (b, a)
        lead_id, follow_id = (ida, idb) if ra.leader == ida else (idb, ida)
        lead_resp = ra if ra.leader == ida else rb
        assert {m.member_id for m in lead_resp.members} == {ida, idb}
        assert all(m.metadata == b"meta" for m in lead_resp.members)

        def sync(
            member_id: str, assignments: tuple[SyncGroupRequestAssignment, ...] = ()
        ) -> SyncGroupRequest:
            return SyncGroupRequest(
                group_id="g",
                generation_id=gen,
                member_id=member_id,
                group_instance_id=None,
                assignments=assignments,
            )

        follower_sync = asyncio.ensure_future(follower.call(sync(follow_id)))
        await asyncio.sleep(0.05)
        assert not follower_sync.done(), "a follower waits for the leader's assignment"
        assignments = (
            SyncGroupRequestAssignment(member_id=lead_id, assignment=b"L"),
            SyncGroupRequestAssignment(member_id=follow_id, assignment=b"F"),
        )
        rl = await leader.call(sync(lead_id, assignments))
        rf = await follower_sync
        assert (rl.error_code, rl.assignment) == (ErrorCode.none, b"L")
        assert (rf.error_code, rf.assignment) == (ErrorCode.none, b"F")
        assert await heartbeat(follower, follow_id, gen) == ErrorCode.none
        assert await heartbeat(follower, follow_id, gen - 1) == ErrorCode.illegal_generation
        assert await heartbeat(follower, "nobody", gen) == ErrorCode.unknown_member_id

        left = await leader.call(
            LeaveGroupRequest(
                group_id="g",
                members=(
                    MemberIdentity(member_id=lead_id, group_instance_id=None),
                    MemberIdentity(member_id="nobody", group_instance_id=None),
                ),
            )
        )
        assert left.error_code == ErrorCode.none
        assert [m.error_code for m in left.members] == [ErrorCode.none, ErrorCode.unknown_member_id]
        assert await heartbeat(follower, follow_id, gen) == ErrorCode.rebalance_in_progress
        a.close()
        b.close()

    run(tmp_path, body)


def test_silent_member_expires_and_group_goes_empty(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        w = await Wire.open(frontend.port)
        mid = await join_member(w)
        r = await w.call(join_v5(mid))
        assert r.generation_id == 1
        await w.call(
            SyncGroupRequest(
                group_id="g", generation_id=1, member_id=mid, group_instance_id=None, assignments=()
            )
        )
        desc = await w.call(DescribeGroupsRequest(groups=("g",), include_authorized_operations=False))
        assert desc.groups[0].group_state == "Stable"
        assert [m.member_id for m in desc.groups[0].members] == [mid]
        assert desc.groups[0].members[0].client_host == "/127.0.0.1"
        # no heartbeat for longer than the session: the member is gone
        while (
            await w.call(DescribeGroupsRequest(groups=("g",), include_authorized_operations=False))
        ).groups[0].group_state != "Empty":
            await asyncio.sleep(0.05)
        assert await heartbeat(w, mid, 1) == ErrorCode.unknown_member_id
        w.close()

    run(tmp_path, body)


def test_offsets_live_in_the_broker_offset_store(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        w = await Wire.open(frontend.port)
        # a simple consumer (generation -1, no member) commits with metadata, flexible v8
        commit = await w.call(
            CommitV8(
                group_id="simple",
                generation_id_or_member_epoch=-1,
                member_id="",
                group_instance_id=None,
                topics=(
                    CommitTopicV8(
                        name=TOPIC,
                        partitions=(
                            CommitPartV8(
                                partition_index=0,
                                committed_offset=42,
                                committed_leader_epoch=-1,
                                committed_metadata="m0",
                            ),
                            CommitPartV8(
                                partition_index=9,
                                committed_offset=1,
                                committed_leader_epoch=-1,
                                committed_metadata="",
                            ),
                        ),
                    ),
                    CommitTopicV8(
                        name="no-such-topic",
                        partitions=(
                            CommitPartV8(
                                partition_index=0,
                                committed_offset=1,
                                committed_leader_epoch=-1,
                                committed_metadata="",
                            ),
                        ),
                    ),
                ),
            )
        )
        errors = [[p.error_code for p in t.partitions] for t in commit.topics]
        assert errors == [
            [ErrorCode.none, ErrorCode.unknown_topic_or_partition],
            [ErrorCode.unknown_topic_or_partition],
        ]
        assert broker.offsets.query("simple", TOPIC, 0) == 42, "the same store native groups use"
        # acknowledged means durable: on disk before the reply, not at the next 5 s flush
        on_disk = json.loads(
            (broker.config.store_path_root_dir / "config" / "consumerOffset.json").read_text()
        )
        assert on_disk["offsetTable"][f"{TOPIC}@simple"]["0"] == 42
        # a native commit shows through OffsetFetch too
        broker.offsets.commit("simple", TOPIC, 2, 7)
        fetched = await w.call(
            FetchV8(
                groups=(
                    FetchGroupV8(group_id="simple", topics=None),
                    FetchGroupV8(group_id="none", topics=None),
                ),
                require_stable=False,
            )
        )
        g0, g1 = fetched.groups
        parts = {p.partition_index: (p.committed_offset, p.metadata) for p in g0.topics[0].partitions}
        assert parts == {0: (42, "m0"), 2: (7, "")}
        assert g1.topics == () and g1.error_code == ErrorCode.none
        v1 = await w.call(
            FetchV1(group_id="simple", topics=(FetchTopicV1(name=TOPIC, partition_indexes=(0, 1)),))
        )
        assert [(p.partition_index, p.committed_offset) for p in v1.topics[0].partitions] == [
            (0, 42),
            (1, -1),
        ]
        # a commit naming a generation of a group that does not exist: rejoin (v2: ILLEGAL_GENERATION)
        stale = await w.call(
            CommitV2(
                group_id="gone",
                generation_id_or_member_epoch=3,
                member_id="m",
                retention_time=ms(-1),
                topics=(
                    CommitTopicV2(
                        name=TOPIC,
                        partitions=(
                            CommitPartV2(partition_index=0, committed_offset=5, committed_metadata=None),
                        ),
                    ),
                ),
            )
        )
        assert stale.topics[0].partitions[0].error_code == ErrorCode.illegal_generation
        assert broker.offsets.query("gone", TOPIC, 0) is None
        # a negative sentinel (kafkajs's resetOffsets commits -2) is kept and read back as Kafka does;
        # -1 means no offset. Before: every negative offset was dropped, so -2 read back as -1
        sentinel = CommitPartV8(
            partition_index=3, committed_offset=-2, committed_leader_epoch=-1, committed_metadata=""
        )
        dropped = CommitPartV8(
            partition_index=0, committed_offset=-1, committed_leader_epoch=-1, committed_metadata=""
        )
        commit = await w.call(
            CommitV8(
                group_id="simple",
                generation_id_or_member_epoch=-1,
                member_id="",
                group_instance_id=None,
                topics=(CommitTopicV8(name=TOPIC, partitions=(sentinel, dropped)),),
            )
        )
        assert [p.error_code for p in commit.topics[0].partitions] == [ErrorCode.none] * 2
        listed = await w.call(
            FetchV8(groups=(FetchGroupV8(group_id="simple", topics=None),), require_stable=False)
        )
        assert {p.partition_index: p.committed_offset for p in listed.groups[0].topics[0].partitions} == {
            2: 7,
            3: -2,
        }
        w.close()

    run(tmp_path, body)


def test_list_describe_delete_groups_and_offsets(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        w = await Wire.open(frontend.port)
        mid = await join_member(w, "live")
        await w.call(join_v5(mid, group="live", session=10_000))
        broker.offsets.commit("offsets-only", TOPIC, 1, 3)
        broker.offsets.commit("live", TOPIC, 1, 3)
        listed = await w.call(ListGroupsRequest(states_filter=()))
        assert {(g.group_id, g.protocol_type, g.group_state) for g in listed.groups} >= {
            ("live", "consumer", "CompletingRebalance"),
            ("offsets-only", "", "Empty"),
        }
        # the admin API's view (the coordinator is its "kafka" group provider)
        admin_view = frontend.coordinator.group_state("live")
        assert admin_view is not None and admin_view.protocol == "kafka"
        assert [m.client_id for m in admin_view.members] == [mid]
        assert "live" in frontend.coordinator.group_names()
        only_empty = await w.call(ListGroupsRequest(states_filter=("Empty",)))
        assert [g.group_id for g in only_empty.groups] == ["offsets-only"]
        desc = await w.call(
            DescribeGroupsRequest(groups=("offsets-only", "unknown"), include_authorized_operations=True)
        )
        assert [(g.group_id, g.group_state) for g in desc.groups] == [
            ("offsets-only", "Empty"),
            ("unknown", "Dead"),
        ]

        deleted = await w.call(DeleteGroupsRequest(groups_names=("offsets-only", "live", "unknown")))
        assert [(r.group_id, r.error_code) for r in deleted.results] == [
            ("offsets-only", ErrorCode.none),
            ("live", ErrorCode.non_empty_group),
            ("unknown", ErrorCode.group_id_not_found),
        ]
        assert "offsets-only" not in broker.offsets.groups()
        # OffsetDelete on the active group: its subscription is unreadable ("meta"), so Kafka's
        # rule applies and a consumer group counts as subscribed to every topic
        od = await w.call(
            OffsetDeleteRequest(
                group_id="live",
                topics=(
                    OffsetDeleteRequestTopic(
                        name=TOPIC, partitions=(OffsetDeleteRequestPartition(partition_index=1),)
                    ),
                ),
            )
        )
        assert od.error_code == ErrorCode.none
        assert od.topics[0].partitions[0].error_code == ErrorCode.group_subscribed_to_topic
        await w.call(
            LeaveGroupRequest(
                group_id="live", members=(MemberIdentity(member_id=mid, group_instance_id=None),)
            )
        )
        od = await w.call(
            OffsetDeleteRequest(
                group_id="live",
                topics=(
                    OffsetDeleteRequestTopic(
                        name=TOPIC, partitions=(OffsetDeleteRequestPartition(partition_index=1),)
                    ),
                ),
            )
        )
        assert od.topics[0].partitions[0].error_code == ErrorCode.none
        assert broker.offsets.query("live", TOPIC, 1) is None
        w.close()

    run(tmp_path, body)


def test_find_coordinator_names_this_node(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        w = await Wire.open(frontend.port)
        r0 = await w.call(FindCoordinatorV0(key="g"))
        assert (r0.error_code, r0.node_id, r0.host, r0.port) == (
            ErrorCode.none,
            7,
            "127.0.0.1",
            frontend.port,
        )
        r4 = await w.call(FindCoordinatorV4(key_type=0, coordinator_keys=("a", "b")))
        assert [(c.key, c.node_id, c.port) for c in r4.coordinators] == [
            ("a", 7, frontend.port),
            ("b", 7, frontend.port),
        ]
        w.close()

    run(tmp_path, body)


def test_a_group_is_active_under_one_protocol_at_a_time(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        w = await Wire.open(frontend.port)
        native = await connect("127.0.0.1", broker.port)
        try:
            # Kafka holds "kg": a native consumer's heartbeat into it is refused, naming the group
            mid = await join_member(w, "kg")
            await w.call(join_v5(mid, group="kg", session=10_000))
            refused = await native.invoke(native_heartbeat("native-1", "kg", TOPIC))
            assert refused.code == 1  # SYSTEM_ERROR
            assert "kg" in (refused.remark or "") and "Kafka" in (refused.remark or "")
            assert broker.clients.consumer_group("kg") is None

            # native consumers hold "ng": a Kafka member cannot join it, nor commit into it
            ok = await native.invoke(native_heartbeat("native-1", "ng", TOPIC))
            assert ok.code == 0
            r = await w.call(
                JoinGroupV2(
                    group_id="ng",
                    session_timeout=ms(10_000),
                    rebalance_timeout=ms(10_000),
                    member_id="",
                    protocol_type="consumer",
                    protocols=(ProtocolV2(name="range", metadata=b""),),
                )
            )
            assert r.error_code == ErrorCode.inconsistent_group_protocol
            listed = await w.call(ListGroupsRequest(states_filter=()))
            # protocol type "": Kafka's admin tools accept it (they drop "rocketmq")
            assert ("ng", "", "Stable") in {
                (g.group_id, g.protocol_type, g.group_state) for g in listed.groups
            }

            # once the Kafka member leaves, natives may take "kg"
            await w.call(
                LeaveGroupRequest(
                    group_id="kg", members=(MemberIdentity(member_id=mid, group_instance_id=None),)
                )
            )
            assert (await native.invoke(native_heartbeat("native-1", "kg", TOPIC))).code == 0
        finally:
            native.close()
            w.close()

    run(tmp_path, body)
