"""The unmodified official RocketMQ 5 Python SDK (rocketmq-python-client) consuming from ``ferrymq serve``
over gRPC: SimpleConsumer receive, ack, change invisible duration, redelivery, dead-lettering, FIFO
groups, messages crossing from remoting/Kafka, and bad input answered with the proper v2 Code.

One server for the module (groups are not auto-created, so each test makes its own; short
invisible durations and long polls are allowed by the module's config); each test its own topic.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from tests import cluster_helpers
from tests.cluster_helpers import create_topic, eventually, invoke, read_topic

rocketmq = pytest.importorskip("rocketmq")
from rocketmq import (  # noqa: E402
    ClientConfiguration,
    Credentials,
    FilterExpression,
    Message,
    Producer,
    SimpleConsumer,
)

from ferrymq.gateway.grpc.protocol import definition_pb2 as pb  # noqa: E402
from ferrymq.gateway.grpc.protocol import service_pb2 as spb  # noqa: E402
from ferrymq.gateway.grpc.protocol.service_pb2_grpc import MessagingServiceStub  # noqa: E402

logging.getLogger("rocketmq").setLevel(logging.CRITICAL)

CONF = (
    "autoCreateSubscriptionGroup=false\n"
    "minInvisibleTimeMillsForRecv=1000\n"
    "grpcClientConsumerMinLongPollingTimeoutMillis=100\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerryServer]:
    with FerryServer(Path(tmp_path_factory.mktemp("grpcc")), CONF, grpc=True) as srv:
        yield srv


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_group(server: FerryServer, **fields: Any) -> str:
    group = uniq("GrpcG")
    cluster_helpers.create_group(server.broker_addr, group, **fields)
    return group


def config(server: FerryServer) -> ClientConfiguration:
    return ClientConfiguration(server.grpc_endpoint, Credentials(), request_timeout=10)


def send_grpc(server: FerryServer, topic: str, messages: list[dict[str, Any]]) -> None:
    p = Producer(config(server), (topic,))
    p.startup()
    try:
        for fields in messages:
            msg = Message()
            msg.topic = topic
            for name, value in fields.items():
                if name == "properties":
                    for k, v in value.items():
                        msg.add_property(k, v)
                else:
                    setattr(msg, name, value)
            p.send(msg)
    finally:
        p.shutdown()


def consumer(
    server: FerryServer, group: str, topic: str, expression: str = "*", wait: int = 2
) -> SimpleConsumer:
    c = SimpleConsumer(config(server), group, {topic: FilterExpression(expression)}, await_duration=wait)
    c.startup()
    return c


def receive_until(
    c: SimpleConsumer, done: Callable[[list[Any]], bool], invisible: int, timeout: float = 15.0
) -> list[Any]:
    """Receive (each call a long poll) until ``done(got)`` holds or the deadline passes."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while not done(got) and time.monotonic() < deadline:
        got += c.receive(32, invisible)
    return got


def test_receive_ack_change_invisible_and_redelivery(server: FerryServer) -> None:
    topic = uniq("GrpcRecv")
    create_topic(server.broker_addr, topic, 2)
    group = create_group(server)
    send_grpc(
        server,
        topic,
        [
            {"body": b"a", "tag": "TagA", "keys": "ka", "properties": {"color": "red"}},
            {"body": b"b", "tag": "TagA"},
            {"body": b"c", "tag": "TagA"},
            {"body": b"skipped", "tag": "TagB"},
        ],
    )
    c = consumer(server, group, topic, "TagA")
    try:
        first = receive_until(c, lambda got: len(got) >= 3, invisible=2)
        by_body = {m.body: m for m in first}
        assert set(by_body) == {b"a", b"b", b"c"}  # TagB filtered out
        a = by_body[b"a"]
        assert a.tag == "TagA" and a.keys == {"ka"} and a.properties["color"] == "red"
        assert all(m.delivery_attempt == 1 and m.receipt_handle for m in first)
        c.ack(a)
        c.change_invisible_duration(by_body[b"b"], 60)  # b stays invisible well past c's redelivery
        stale = by_body[b"c"].receipt_handle
        again = receive_until(c, lambda got: len(got) >= 1, invisible=5)
        assert [m.body for m in again] == [b"c"]  # not a (acked), not b (changed)
        assert again[0].delivery_attempt == 2
        c.ack(again[0])
        c.ack(by_body[b"b"])  # the receipt handle the change answered
        by_body[b"c"].receipt_handle = stale
        with pytest.raises(Exception, match="INVALID_RECEIPT_HANDLE"):
            c.ack(by_body[b"c"])
    finally:
        c.shutdown()


def test_sql92_filter(server: FerryServer) -> None:
    from rocketmq.grpc_protocol import FilterType

    topic = uniq("GrpcSql")
    create_topic(server.broker_addr, topic, 1)
    group = create_group(server)
    send_grpc(
        server,
        topic,
        [{"body": b"blue", "properties": {"n": "1"}}, {"body": b"red", "properties": {"n": "7"}}],
    )
    c = SimpleConsumer(
        config(server), group, {topic: FilterExpression("n > 5", FilterType.SQL)}, await_duration=2
    )
    c.startup()
    try:
        got = receive_until(c, lambda got: len(got) >= 1, invisible=5)
        assert [m.body for m in got] == [b"red"]
        c.ack(got[0])
    finally:
        c.shutdown()


def test_never_acked_is_redelivered_then_dead_lettered(server: FerryServer) -> None:
    topic = uniq("GrpcDlq")
    create_topic(server.broker_addr, topic, 1)
    group = create_group(server, retryMaxTimes=1)
    send_grpc(server, topic, [{"body": b"poison"}, {"body": b"given-up"}])
    c = consumer(server, group, topic)
    try:
        got = receive_until(c, lambda got: len(got) >= 2, invisible=1)
        given_up = next(m for m in got if m.body == b"given-up")
        with grpc.insecure_channel(server.grpc_endpoint) as channel:
            forward = MessagingServiceStub(channel).ForwardMessageToDeadLetterQueue(
                spb.ForwardMessageToDeadLetterQueueRequest(
                    group=pb.Resource(name=group),
                    topic=pb.Resource(name=topic),
                    receipt_handle=given_up.receipt_handle,
                    message_id=given_up.message_id,
                ),
                timeout=5,
            )
        assert forward.status.code == pb.OK
        again = receive_until(c, lambda got: len(got) >= 1, invisible=1)
        assert [(m.body, m.delivery_attempt) for m in again] == [(b"poison", 2)]
    finally:
        c.shutdown()
    dead = read_topic(server.namesrv_addr, f"%DLQ%{group}", 2)  # poison after retryMaxTimes 1
    assert sorted(m.body for m in dead) == [b"given-up", b"poison"]


def test_fifo_group_is_delivered_in_order_one_batch_at_a_time(server: FerryServer) -> None:
    topic = uniq("GrpcFifoC")
    create_topic(server.broker_addr, topic, 2)
    group = create_group(server, consumeMessageOrderly=True)
    send_grpc(server, topic, [{"body": f"m{i}".encode(), "message_group": "order-7"} for i in range(4)])
    c = consumer(server, group, topic, wait=1)
    try:
        order: list[bytes] = []
        deadline = time.monotonic() + 15
        while len(order) < 4 and time.monotonic() < deadline:
            batch = c.receive(2, 5)
            order += [m.body for m in batch]
            if len(order) < 4 and batch:
                assert c.receive(2, 5) == []  # the group's next messages wait for this batch's acks
            for m in batch:
                c.ack(m)
        assert order == [b"m0", b"m1", b"m2", b"m3"]
    finally:
        c.shutdown()


def test_remoting_and_kafka_messages_received_over_grpc_and_back(server: FerryServer) -> None:
    from kafka import KafkaProducer

    from ferrymq.client import Message as RemotingMessage
    from ferrymq.client import Producer as RemotingProducer

    topic = uniq("GrpcX")
    create_topic(server.broker_addr, topic, 1)
    group = create_group(server)
    with RemotingProducer(server.namesrv_addr, group="pg-grpcx") as p:
        p.send(RemotingMessage(topic, b"from-remoting", tags="TagR", keys="kr", properties={"p": "1"}))
    kp = KafkaProducer(bootstrap_servers=f"127.0.0.1:{server.kafka_port}")
    kp.send(topic, value=b"from-kafka", key=b"kk", headers=[("h", b"2")]).get(timeout=15)
    kp.close()
    c = consumer(server, group, topic)
    try:
        got = {m.body: m for m in receive_until(c, lambda got: len(got) >= 2, invisible=5)}
        for m in got.values():
            c.ack(m)
    finally:
        c.shutdown()
    assert set(got) == {b"from-remoting", b"from-kafka"}
    r = got[b"from-remoting"]
    assert r.tag == "TagR" and r.keys == {"kr"} and r.properties["p"] == "1"
    k = got[b"from-kafka"]
    assert k.keys == {"kk"} and k.properties["h"] == "2"
    # ...and what the gRPC producer sent, read by a remoting consumer of another group
    send_grpc(server, topic, [{"body": b"from-grpc", "tag": "TagG"}])
    read = {m.body: m for m in read_topic(server.namesrv_addr, topic, 3)}
    assert read[b"from-grpc"].tags == "TagG"


def _receive(
    stub: MessagingServiceStub, group: str, topic: str, timeout: float = 5, **fields: Any
) -> list[Any]:
    request = spb.ReceiveMessageRequest(
        group=pb.Resource(name=group),
        message_queue=pb.MessageQueue(topic=pb.Resource(name=topic), id=-1),
        batch_size=fields.pop("batch_size", 1),
        **fields,
    )
    if not request.HasField("invisible_duration"):
        request.invisible_duration.FromSeconds(5)
    return list(stub.ReceiveMessage(request, timeout=timeout))


def test_bad_input_gets_the_proper_code_and_hanging_receives_are_bounded(server: FerryServer) -> None:
    topic = uniq("GrpcBadC")
    create_topic(server.broker_addr, topic, 1)
    group = create_group(server)
    with grpc.insecure_channel(server.grpc_endpoint) as channel:
        stub = MessagingServiceStub(channel)

        def code_of(responses: list[Any]) -> int:
            assert responses[-1].HasField("delivery_timestamp")
            return int(responses[0].status.code)

        assert code_of(_receive(stub, group, uniq("NoTopic"))) == pb.TOPIC_NOT_FOUND
        assert code_of(_receive(stub, uniq("NoGroup"), topic)) == pb.CONSUMER_GROUP_NOT_FOUND
        assert code_of(_receive(stub, "bad group!", topic)) == pb.ILLEGAL_CONSUMER_GROUP
        short = spb.ReceiveMessageRequest().invisible_duration
        short.FromMilliseconds(10)
        assert code_of(_receive(stub, group, topic, invisible_duration=short)) == pb.ILLEGAL_INVISIBLE_TIME
        sql = pb.FilterExpression(type=pb.SQL, expression="a >")
        assert code_of(_receive(stub, group, topic, filter_expression=sql)) == pb.ILLEGAL_FILTER_EXPRESSION

        # a receive asking to poll a minute is answered before its deadline, empty
        long_poll = spb.ReceiveMessageRequest().long_polling_timeout
        long_poll.FromSeconds(60)
        assert code_of(_receive(stub, group, topic, timeout=1.5, long_polling_timeout=long_poll)) == (
            pb.MESSAGE_NOT_FOUND
        )
        assert code_of(_receive(stub, group, topic, timeout=0.25)) == pb.ILLEGAL_POLLING_TIME

        ack = stub.AckMessage(
            spb.AckMessageRequest(
                group=pb.Resource(name=group),
                topic=pb.Resource(name=topic),
                entries=[spb.AckMessageEntry(message_id="x", receipt_handle="bogus")],
            ),
            timeout=5,
        )
        assert ack.status.code == pb.INVALID_RECEIPT_HANDLE
        assert [e.status.code for e in ack.entries] == [pb.INVALID_RECEIPT_HANDLE]
        change = spb.ChangeInvisibleDurationRequest(
            group=pb.Resource(name=group), topic=pb.Resource(name=topic), receipt_handle="1 2 3"
        )
        change.invisible_duration.FromSeconds(5)
        assert stub.ChangeInvisibleDuration(change, timeout=5).status.code == pb.INVALID_RECEIPT_HANDLE
        send_grpc(server, topic, [{"body": b"still-served"}])
        ok = _receive(stub, group, topic, long_polling_timeout=long_poll)
        assert ok[0].status.code == pb.OK and ok[1].message.body == b"still-served"
    log = server.log_path.read_text()
    assert "gRPC ReceiveMessage from 127.0.0.1:" in log and "receipt handle parse failed" in log


def test_pull_and_offsets_for_the_pull_consumer(server: FerryServer) -> None:
    """PullMessage/UpdateOffset/GetOffset/QueryOffset (the Python SDK 5.1.2 has no PullConsumer:
    raw stubs)."""
    topic = uniq("GrpcPull")
    create_topic(server.broker_addr, topic, 1)
    group = create_group(server)
    send_grpc(
        server, topic, [{"body": b"p0", "tag": "A"}, {"body": b"p1", "tag": "B"}, {"body": b"p2", "tag": "A"}]
    )
    mq = pb.MessageQueue(topic=pb.Resource(name=topic), id=0)
    g = pb.Resource(name=group)
    with grpc.insecure_channel(server.grpc_endpoint) as channel:
        stub = MessagingServiceStub(channel)
        end = stub.QueryOffset(
            spb.QueryOffsetRequest(message_queue=mq, query_offset_policy=pb.END), timeout=5
        )
        assert (end.status.code, end.offset) == (pb.OK, 3)
        first = stub.QueryOffset(spb.QueryOffsetRequest(message_queue=mq, query_offset_policy=pb.BEGINNING))
        assert first.offset == 0
        assert stub.GetOffset(spb.GetOffsetRequest(group=g, message_queue=mq), timeout=5).status.code == (
            pb.OFFSET_NOT_FOUND
        )

        def pull(offset: int, expression: str = "*", poll_ms: int = 100) -> tuple[int, list[bytes], int]:
            request = spb.PullMessageRequest(
                group=g,
                message_queue=mq,
                offset=offset,
                batch_size=10,
                filter_expression=pb.FilterExpression(type=pb.TAG, expression=expression),
            )
            request.long_polling_timeout.FromMilliseconds(poll_ms)
            out = list(stub.PullMessage(request, timeout=5))
            return out[0].status.code, [r.message.body for r in out[1:-1]], out[-1].next_offset

        assert pull(0) == (pb.OK, [b"p0", b"p1", b"p2"], 3)
        assert pull(0, "A") == (pb.OK, [b"p0", b"p2"], 3)
        assert pull(3) == (pb.MESSAGE_NOT_FOUND, [], 3)  # a short long poll, nothing new
        assert pull(99)[0] == pb.ILLEGAL_OFFSET and pull(99)[2] == 3
        with ThreadPoolExecutor(1) as pool:  # a long-polling pull is answered by the next arrival
            waiting = pool.submit(pull, 3, "*", 4000)
            send_grpc(server, topic, [{"body": b"p3"}])
            assert waiting.result(timeout=10) == (pb.OK, [b"p3"], 4)
        update = stub.UpdateOffset(spb.UpdateOffsetRequest(group=g, message_queue=mq, offset=2), timeout=5)
        assert update.status.code == pb.OK
        got = stub.GetOffset(spb.GetOffsetRequest(group=g, message_queue=mq), timeout=5)
        assert (got.status.code, got.offset) == (pb.OK, 2)
        bad_queue = pb.MessageQueue(topic=pb.Resource(name=topic), id=7)
        assert stub.GetOffset(spb.GetOffsetRequest(group=g, message_queue=bad_queue)).status.code == (
            pb.BAD_REQUEST
        )


def test_a_grpc_consumer_is_listed_by_consumer_connection_while_it_runs(server: FerryServer) -> None:
    """Its Telemetry settings register it as the proxy does: mqadmin consumerConnection sees it."""
    topic, group = uniq("GrpcConn"), create_group(server)
    create_topic(server.broker_addr, topic, 1)

    def connections() -> tuple[int, bytes]:
        code, body, _ = invoke(
            server.broker_addr, RequestCode.GET_CONSUMER_CONNECTION_LIST, {"consumerGroup": group}
        )
        return code, body

    c = consumer(server, group, topic, "TagA || TagB")
    try:  # the SDK writes its settings after startup returns
        eventually(lambda: connections()[0] == ResponseCode.SUCCESS, what="the consumer listed")
        listed = json.loads(connections()[1])
        assert [conn["clientId"] for conn in listed["connectionSet"]] == [c.client_id]
        assert listed["connectionSet"][0]["language"] == "PYTHON"
        assert listed["consumeType"] == "CONSUME_ACTIVELY"
        assert listed["subscriptionTable"][topic]["subString"] == "TagA || TagB"
    finally:
        c.shutdown()
    eventually(lambda: connections()[0] == ResponseCode.CONSUMER_NOT_ONLINE, what="the consumer gone")
