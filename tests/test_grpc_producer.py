"""The unmodified official RocketMQ 5 Python SDK (rocketmq-python-client) producing to ``ferrymq serve``
over gRPC, and what it sent read back by ferrymq's LitePullConsumer and by a Kafka consumer.

One server for the module (its gRPC listener on a free port); each test its own topic.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ferrymq.cli.testing import FerryServer
from tests.cluster_helpers import create_topic, read_topic

rocketmq = pytest.importorskip("rocketmq")
from rocketmq import (  # noqa: E402
    ClientConfiguration,
    Credentials,
    Message,
    Producer,
    TransactionChecker,
    TransactionResolution,
)

logging.getLogger("rocketmq").setLevel(logging.WARNING)

CONF = "transactionTimeOut=500\ntransactionCheckInterval=200\nmaxMessageSize=65536\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerryServer]:
    with FerryServer(Path(tmp_path_factory.mktemp("grpc")), CONF, grpc=True) as srv:
        yield srv


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def topic_on(server: FerryServer, prefix: str, queues: int = 4) -> str:
    topic = uniq(prefix)
    create_topic(server.broker_addr, topic, queues)
    return topic


def producer(server: FerryServer, topic: str, checker: TransactionChecker | None = None) -> Producer:
    config = ClientConfiguration(server.grpc_endpoint, Credentials(), request_timeout=10)
    p = Producer(config, (topic,), checker)
    p.startup()
    return p


def message(topic: str, body: bytes, **fields: object) -> Message:
    msg = Message()
    msg.topic = topic
    msg.body = body
    for name, value in fields.items():
        if name == "keys":
            msg.keys = value
        elif name == "properties":
            for k, v in dict(value).items():  # type: ignore[call-overload]
                msg.add_property(k, v)
        else:
            setattr(msg, name, value)
    return msg


def test_sync_and_async_sends_read_by_rocketmq_and_kafka(server: FerryServer) -> None:
    topic = topic_on(server, "GrpcT")
    p = producer(server, topic)
    try:
        receipt = p.send(message(topic, b"sync", tag="TagA", keys="k1", properties={"color": "red"}))
        receipt_async = p.send_async(message(topic, b"async", tag="TagB")).result(timeout=15)
    finally:
        p.shutdown()
    assert receipt.message_id and receipt_async.message_id
    got = {m.body: m for m in read_topic(server.namesrv_addr, topic, 2)}
    assert set(got) == {b"sync", b"async"}
    m = got[b"sync"]
    assert m.tags == "TagA" and m.keys == "k1" and m.user_properties["color"] == "red"
    assert m.msg_id == receipt.message_id  # the SDK's message id is the UNIQ_KEY
    assert got[b"async"].tags == "TagB"

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=f"127.0.0.1:{server.kafka_port}", group_id=None, consumer_timeout_ms=15000
    )
    try:
        consumer.assign([TopicPartition(topic, q) for q in range(4)])
        consumer.seek_to_beginning()
        records = []
        for record in consumer:
            records.append(record)
            if len(records) == 2:
                break
    finally:
        consumer.close()
    by_value = {r.value: r for r in records}
    assert set(by_value) == {b"sync", b"async"}
    assert by_value[b"sync"].key == b"k1"
    assert ("rocketmq.tags", b"TagA") in by_value[b"sync"].headers
    assert ("color", b"red") in by_value[b"sync"].headers


def test_fifo_message_group_keeps_one_queue_in_order(server: FerryServer) -> None:
    topic = topic_on(server, "GrpcFifo")
    p = producer(server, topic)
    try:
        for i in range(5):
            p.send(message(topic, f"m{i}".encode(), message_group="order-42"))
    finally:
        p.shutdown()
    got = read_topic(server.namesrv_addr, topic, 5)
    assert [m.body for m in got] == [f"m{i}".encode() for i in range(5)]
    assert len({m.queue_id for m in got}) == 1
    assert all(m.properties["__SHARDINGKEY"] == "order-42" for m in got)


def test_delay_by_delivery_timestamp(server: FerryServer) -> None:
    topic = topic_on(server, "GrpcDelay", queues=1)
    p = producer(server, topic)
    try:
        due = int(time.time()) + 2
        p.send(message(topic, b"later", delivery_timestamp=due))
    finally:
        p.shutdown()
    got = read_topic(server.namesrv_addr, topic, 1, timeout=10)
    assert [m.body for m in got] == [b"later"]
    assert time.time() >= due - 0.05  # not delivered before its time (seconds, as the SDK sends it)
    assert int(got[0].properties["TIMER_DELIVER_MS"]) == due * 1000


class CommitAll(TransactionChecker):
    def __init__(self) -> None:
        self.checked: list[bytes] = []

    def check(self, message: Message) -> TransactionResolution:
        self.checked.append(message.body)
        return TransactionResolution.COMMIT


def test_transactions_commit_rollback_and_check(server: FerryServer) -> None:
    topic = topic_on(server, "GrpcTxn", queues=1)
    checker = CommitAll()
    p = producer(server, topic, checker)
    try:
        t1 = p.begin_transaction()
        p.send(message(topic, b"committed"), t1)
        t1.commit()
        t2 = p.begin_transaction()
        p.send(message(topic, b"rolled-back"), t2)
        t2.rollback()
        t3 = p.begin_transaction()
        p.send(message(topic, b"checked"), t3)  # never ended: the broker asks the checker
        got = read_topic(server.namesrv_addr, topic, 2, timeout=15)
    finally:
        p.shutdown()
    assert sorted(m.body for m in got) == [b"checked", b"committed"]
    assert b"checked" in checker.checked and b"committed" not in checker.checked


def test_not_yet_served_rpcs_answer_not_implemented(server: FerryServer) -> None:
    from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
    from ferrymq.gateway.grpc.protocol import service_pb2 as spb
    from ferrymq.gateway.grpc.protocol.service_pb2_grpc import MessagingServiceStub

    with grpc.insecure_channel(server.grpc_endpoint) as channel:
        stub = MessagingServiceStub(channel)
        recall = stub.RecallMessage(spb.RecallMessageRequest(), timeout=5)
        assert recall.status.code == pb.NOT_IMPLEMENTED
        lite = stub.SyncLiteSubscription(spb.SyncLiteSubscriptionRequest(), timeout=5)
        assert lite.status.code == pb.NOT_IMPLEMENTED
        route = stub.QueryRoute(spb.QueryRouteRequest(topic=pb.Resource(name=uniq("Missing"))), timeout=5)
        assert route.status.code == pb.TOPIC_NOT_FOUND


def test_bad_input_is_bounded_and_logged_with_the_peer(server: FerryServer) -> None:
    from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
    from ferrymq.gateway.grpc.protocol import service_pb2 as spb

    topic = topic_on(server, "GrpcBad", queues=1)
    with grpc.insecure_channel(server.grpc_endpoint) as channel:
        raw = channel.unary_unary("/apache.rocketmq.v2.MessagingService/SendMessage")
        with pytest.raises(grpc.RpcError) as malformed:
            raw(b"\xff\xff\xff\xff garbage", timeout=5)
        assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        unknown = channel.unary_unary("/apache.rocketmq.v2.MessagingService/NoSuchMethod")
        with pytest.raises(grpc.RpcError) as missing:
            unknown(b"", timeout=5)
        assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED

        send = channel.unary_unary(
            "/apache.rocketmq.v2.MessagingService/SendMessage",
            request_serializer=spb.SendMessageRequest.SerializeToString,
            response_deserializer=spb.SendMessageResponse.FromString,
        )
        big = spb.SendMessageRequest()
        m = big.messages.add(body=b"x" * 70_000)
        m.topic.name = topic
        m.system_properties.message_id = uuid.uuid4().hex
        m.system_properties.message_type = pb.NORMAL
        assert send(big, timeout=5).status.code == pb.MESSAGE_BODY_TOO_LARGE
        m.body = b"x" * (65536 + 2 * 1024 * 1024)  # past the transport's limit: never read whole
        with pytest.raises(grpc.RpcError) as huge:
            send(big, timeout=5)
        assert huge.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        m.body = b"fine"
        assert send(big, timeout=5).status.code == pb.OK  # the listener is still serving
    log = server.log_path.read_text()
    assert "malformed request" in log and "unknown method" in log and "over maxMessageSize" in log
    assert "from 127.0.0.1:" in log
