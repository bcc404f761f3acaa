"""The gRPC listener's pure parts: message <-> properties, routes, and the vendored protocol."""

from __future__ import annotations

import pytest

from ferrymq.core.remoting.message import MessageExt
from ferrymq.core.remoting.route import (
    PERM_READ,
    PERM_WRITE,
    BrokerData,
    QueueData,
    TopicConfig,
    TopicRouteData,
)
from ferrymq.gateway.grpc import route
from ferrymq.gateway.grpc.mapping import MessageRefused, from_proto, to_proto
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb

NOW = 1_700_000_000_000


def proto(**system: object) -> pb.Message:
    msg = pb.Message(body=b"hello")
    msg.topic.name = "T"
    msg.system_properties.message_id = "01ABCDEF"
    msg.system_properties.message_type = pb.NORMAL
    for name, value in system.items():
        if name == "keys":
            msg.system_properties.keys.extend(value)  # type: ignore[call-overload]
        elif name == "delivery_ms":
            msg.system_properties.delivery_timestamp.FromMilliseconds(value)  # type: ignore[arg-type]
        else:
            setattr(msg.system_properties, name, value)
    return msg


def test_system_fields_become_rocketmq_properties() -> None:
    msg = proto(tag="TagA", keys=["k1", "k2"], born_host="10.0.0.1", trace_context="tc")
    msg.user_properties["color"] = "red"
    out = from_proto(msg, "127.0.0.1", NOW)
    p = out.properties
    assert p["TAGS"] == "TagA" and p["KEYS"] == "k1 k2" and p["UNIQ_KEY"] == "01ABCDEF"
    assert p["color"] == "red" and p["PGROUP"] == "T" and p["__BORNHOST"] == "10.0.0.1"
    assert p["TRACE_CONTEXT"] == "tc" and p["RECONSUME_TIME"] == "0" and out.sys_flag == 0


def test_fifo_delay_and_transaction_types() -> None:
    fifo = from_proto(proto(message_type=pb.FIFO, message_group="g1"), "h", NOW)
    assert fifo.properties["__SHARDINGKEY"] == "g1"
    delay = from_proto(proto(message_type=pb.DELAY, delivery_ms=NOW + 5000), "h", NOW)
    assert delay.properties["TIMER_DELIVER_MS"] == str(NOW + 5000)
    past = from_proto(proto(message_type=pb.DELAY, delivery_ms=NOW - 5000), "h", NOW)
    assert "TIMER_DELIVER_MS" not in past.properties  # already due: delivered at once
    txn = proto(message_type=pb.TRANSACTION)
    txn.system_properties.orphaned_transaction_recovery_duration.FromSeconds(30)
    out = from_proto(txn, "h", NOW)
    assert out.properties["TRAN_MSG"] == "true" and out.properties["CHECK_IMMUNITY_TIME_IN_SECONDS"] == "30"
    assert out.sys_flag & 0x4


@pytest.mark.parametrize(
    ("msg", "code"),
    [
        (proto(message_id=""), pb.ILLEGAL_MESSAGE_ID),
        (proto(tag="a|b"), pb.ILLEGAL_MESSAGE_TAG),
        (proto(keys=[" "]), pb.ILLEGAL_MESSAGE_KEY),
        (proto(message_type=pb.FIFO), pb.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE),
        (proto(message_type=pb.DELAY), pb.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE),
        (proto(message_type=pb.NORMAL, message_group="g"), pb.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE),
        (proto(message_type=pb.FIFO, message_group="g" * 64), pb.ILLEGAL_MESSAGE_GROUP),
        (proto(message_type=pb.LITE), pb.UNSUPPORTED),
    ],
)
def test_invalid_messages_get_the_proxy_codes(msg: pb.Message, code: int) -> None:
    with pytest.raises(MessageRefused) as refused:
        from_proto(msg, "h", NOW)
    assert refused.value.code == code


def test_reserved_and_oversized_user_properties() -> None:
    reserved = proto()
    reserved.user_properties["UNIQ_KEY"] = "x"
    with pytest.raises(MessageRefused) as exc:
        from_proto(reserved, "h", NOW)
    assert exc.value.code == pb.ILLEGAL_MESSAGE_PROPERTY_KEY
    big = proto()
    big.user_properties["k"] = "v" * 20_000
    with pytest.raises(MessageRefused) as exc:
        from_proto(big, "h", NOW)
    assert exc.value.code == pb.MESSAGE_PROPERTIES_TOO_LARGE


def test_stored_message_back_to_proto_with_digest() -> None:
    stored = MessageExt(
        topic="T",
        body=b"hello",
        properties={"TAGS": "A", "KEYS": "k1 k2", "UNIQ_KEY": "01AB", "TRAN_MSG": "true", "color": "red"},
        queue_id=0,
        queue_offset=3,
        commit_log_offset=100,
        sys_flag=0,
        born_timestamp=NOW,
        born_host="10.0.0.1:5000",
        store_timestamp=NOW + 1,
        store_host="10.0.0.2:10911",
        reconsume_times=0,
        flag=0,
        body_crc=0,
        offset_msg_id="X",
        store_size=0,
    )
    out = to_proto(stored, "T")
    sp = out.system_properties
    assert (sp.tag, list(sp.keys), sp.message_id) == ("A", ["k1", "k2"], "01AB")
    assert sp.message_type == pb.TRANSACTION and dict(out.user_properties) == {"color": "red"}
    assert sp.body_digest.type == pb.CRC32 and sp.body_digest.checksum == "3610A686"  # crc32(b"hello")
    assert sp.born_host == "10.0.0.1"


def _own(tc: TopicConfig, broker: object) -> list[route.BrokerQueues]:
    return [route.BrokerQueues(broker, tc.perm, tc.read_queue_nums, tc.write_queue_nums)]


def test_route_splits_queues_as_the_proxy_does() -> None:
    broker = route.broker_message("b", "127.0.0.1", 8081)
    topic = pb.Resource(name="T")
    tc = TopicConfig("T", read_queue_nums=4, write_queue_nums=2, perm=PERM_READ | PERM_WRITE)
    queues = route.query_route(_own(tc, broker), topic, route.accepted_types(tc)).message_queues
    assert [q.permission for q in queues] == [pb.READ, pb.READ, pb.READ_WRITE, pb.READ_WRITE]
    assert [q.id for q in queues] == [0, 1, 2, 3]
    assert list(queues[0].accept_message_types) == route.ALL_TYPES
    assert queues[0].broker.endpoints.addresses[0].port == 8081
    tc.attributes["+message.type"] = "FIFO"
    assert route.accepted_types(tc) == [pb.FIFO]
    assert route.query_route([], topic, route.ALL_TYPES).status.code == pb.TOPIC_NOT_FOUND
    assignment = route.query_assignment(_own(tc, broker), topic, orderly=False)
    assert [a.message_queue.id for a in assignment.assignments] == [-1]
    assert len(route.query_assignment(_own(tc, broker), topic, orderly=True).assignments) == 4
    tc.perm = PERM_WRITE
    assert route.query_assignment(_own(tc, broker), topic, orderly=False).status.code == pb.FORBIDDEN


def test_route_across_broker_groups_names_each_masters_grpc_listener() -> None:
    rw = PERM_READ | PERM_WRITE
    known = TopicRouteData(
        queue_datas=[
            QueueData("broker-b", 2, 2, rw),
            QueueData("broker-a", 1, 1, rw),
            QueueData("broker-c", 1, 1, rw),
        ],
        broker_datas=[
            BrokerData("C", "broker-a", {0: "h:1"}, grpc_addrs={0: "10.0.0.1:8081", 1: "10.0.0.2:8081"}),
            BrokerData("C", "broker-b", {0: "h:2", 1: "h:3"}, grpc_addrs={0: "10.0.0.3:9091"}),
            BrokerData("C", "broker-c", {0: "h:4"}),  # no gRPC listener: left out
        ],
    )
    topic = pb.Resource(name="T")
    groups = route.cluster_queues(known, None, "broker-x", own_wins=True)
    queues = route.query_route(groups, topic, route.ALL_TYPES).message_queues
    seen = [(q.broker.name, q.id, q.broker.endpoints.addresses[0].port) for q in queues]
    assert seen == [("broker-a", 0, 8081), ("broker-b", 0, 9091), ("broker-b", 1, 9091)]
    # a master's own queues come from its topic config and name its own listener
    mine = route.BrokerQueues(route.broker_message("broker-a", "127.0.0.1", 7000), rw, 3, 3)
    groups = route.cluster_queues(known, mine, "broker-a", own_wins=True)
    assert [(g.broker.name, g.read_queue_nums) for g in groups] == [("broker-a", 3), ("broker-b", 2)]
    # a slave's stand in only while its master is unknown; reads only
    slave = route.BrokerQueues(route.broker_message("broker-c", "127.0.0.1", 7001), PERM_READ, 1, 1)
    groups = route.cluster_queues(known, slave, "broker-c", own_wins=False)
    assert [q.permission for q in route.query_route(groups, topic, route.ALL_TYPES).message_queues][
        -1
    ] == pb.READ
    assert (
        route.cluster_queues(known, slave, "broker-a", own_wins=False)[0].broker.endpoints.addresses[0].port
        == 8081
    )
    assignment = route.query_assignment(route.cluster_queues(known, None, "x", own_wins=True), topic, False)
    assert [a.message_queue.broker.name for a in assignment.assignments] == ["broker-a", "broker-b"]


def test_vendored_protocol_is_the_official_clients() -> None:
    """The vendored generated code must stay the installed SDK's, byte for byte (one descriptor
    pool for both in a process); a newer SDK means re-vendoring (protocol/__init__.py)."""
    theirs = pytest.importorskip("rocketmq.grpc_protocol.service_pb2")
    from ferrymq.gateway.grpc.protocol import service_pb2 as ours

    assert ours.DESCRIPTOR.serialized_pb == theirs.DESCRIPTOR.serialized_pb
    assert ours.SendMessageRequest is theirs.SendMessageRequest
