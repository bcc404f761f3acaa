"""Bad input on the gRPC listener, each case while a bystander gRPC client keeps sending and receiving
on its own connection: malformed protobuf bytes on a unary call and on the Telemetry stream, unknown
methods and services, a message over the listener's grpcMaxInboundMessageSize, a Telemetry stream that
never sends its settings, and more hanging ReceiveMessage streams on one connection than
grpcMaxParkedReceivesPerConnection allows. (What tests/test_grpc_producer.py and test_grpc_consumer.py
already cover is not repeated.)

One server for the module, raw stubs (no SDK start-up cost); each connection its own (a local
subchannel pool), so the server sees the flooder and the bystander as different peers.
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.protocol.service_pb2_grpc import MessagingServiceStub
from tests import cluster_helpers
from tests.cluster_helpers import create_topic, eventually

SERVICE = "/apache.rocketmq.v2.MessagingService/"
LIMIT = 256 * 1024
PARKED = 4
CONF = (
    f"grpcMaxInboundMessageSize={LIMIT}\n"
    "grpcTelemetrySettingsTimeoutMillis=500\n"
    f"grpcMaxParkedReceivesPerConnection={PARKED}\n"
    "grpcClientConsumerMinLongPollingTimeoutMillis=100\n"
    "minInvisibleTimeMillsForRecv=1000\n"
)


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def channel(server: FerryServer) -> grpc.Channel:
    """A connection of its own (not shared with the test's other channels)."""
    return grpc.insecure_channel(server.grpc_endpoint, options=[("grpc.use_local_subchannel_pool", 1)])


def create_group(server: FerryServer) -> str:
    group = uniq("BadG")
    cluster_helpers.create_group(server.broker_addr, group)
    return group


def receive_request(group: str, topic: str, poll_ms: int) -> Any:
    request = spb.ReceiveMessageRequest(
        group=pb.Resource(name=group),
        message_queue=pb.MessageQueue(topic=pb.Resource(name=topic), id=-1),
        filter_expression=pb.FilterExpression(type=pb.TAG, expression="*"),
        batch_size=32,
    )
    request.invisible_duration.FromSeconds(10)
    request.long_polling_timeout.FromMilliseconds(poll_ms)
    return request


class Bystander:
    """A well-behaved client on its own connection: each check() sends one message, receives it and
    acks it."""

    def __init__(self, server: FerryServer) -> None:
        self.topic = uniq("Bystander")
        create_topic(server.broker_addr, self.topic, 1)
        self.group = create_group(server)
        self.channel = channel(server)
        self.stub = MessagingServiceStub(self.channel)

    def check(self) -> None:
        body = uuid.uuid4().hex.encode()
        request = spb.SendMessageRequest()
        m = request.messages.add(body=body)
        m.topic.name = self.topic
        m.system_properties.message_id = uuid.uuid4().hex
        m.system_properties.message_type = pb.NORMAL
        assert self.stub.SendMessage(request, timeout=10).status.code == pb.OK
        got = list(self.stub.ReceiveMessage(receive_request(self.group, self.topic, 5_000), timeout=10))
        assert got[0].status.code == pb.OK, got[0].status
        views = [r.message for r in got if r.HasField("message")]
        assert [v.body for v in views] == [body]
        ack = spb.AckMessageRequest(group=pb.Resource(name=self.group), topic=pb.Resource(name=self.topic))
        ack.entries.add(
            message_id=views[0].system_properties.message_id,
            receipt_handle=views[0].system_properties.receipt_handle,
        )
        assert self.stub.AckMessage(ack, timeout=10).status.code == pb.OK


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerryServer]:
    with FerryServer(Path(tmp_path_factory.mktemp("grpcbad")), CONF, grpc=True) as srv:
        yield srv


@pytest.fixture(scope="module")
def bystander(server: FerryServer) -> Iterator[Bystander]:
    b = Bystander(server)
    b.check()
    yield b
    b.channel.close()


class Requests:
    """A client's side of a stream: put() sends, close() ends it."""

    def __init__(self) -> None:
        self.items: queue.Queue[bytes | None] = queue.Queue()

    def put(self, item: bytes) -> None:
        self.items.put(item)

    def close(self) -> None:
        self.items.put(None)

    def __iter__(self) -> Iterator[bytes]:
        while (item := self.items.get()) is not None:
            yield item


def telemetry(ch: grpc.Channel, requests: Requests, client_id: str, timeout: float = 15) -> Any:
    call = ch.stream_stream(SERVICE + "Telemetry", response_deserializer=spb.TelemetryCommand.FromString)
    return call(iter(requests), metadata=[("x-mq-client-id", client_id)], timeout=timeout)


def settings_command(topic: str) -> bytes:
    command = spb.TelemetryCommand()
    command.settings.client_type = pb.PRODUCER
    command.settings.publishing.topics.add(name=topic)
    return bytes(command.SerializeToString())


def test_malformed_protobuf_and_unknown_methods_on_unary_and_streams(
    server: FerryServer, bystander: Bystander
) -> None:
    with channel(server) as ch:
        with pytest.raises(grpc.RpcError) as unary:
            ch.unary_unary(SERVICE + "QueryRoute")(b"\x0a\xff\xff\xff\xff", timeout=10)
        assert unary.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        requests = Requests()
        requests.put(b"\x0a\x05ab")  # a field promising 5 bytes, carrying 2
        stream = telemetry(ch, requests, uniq("garbled"))
        with pytest.raises(grpc.RpcError) as garbled:
            list(stream)
        requests.close()
        assert garbled.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        bystander.check()

        for method in (SERVICE + "NoSuchStream", "/no.such.Service/Call"):
            unknown = ch.stream_stream(method)
            with pytest.raises(grpc.RpcError) as missing:
                list(unknown(iter([b"", b"\x01"]), timeout=10))
            assert missing.value.code() == grpc.StatusCode.UNIMPLEMENTED
    bystander.check()
    log = server.log_path.read_text()
    assert "gRPC Telemetry from 127.0.0.1:" in log and "malformed request" in log
    assert "unknown method /no.such.Service/Call" in log


def test_message_over_the_listener_limit_is_resource_exhausted(
    server: FerryServer, bystander: Bystander
) -> None:
    """grpcMaxInboundMessageSize bounds what the listener reads, whatever maxMessageSize allows."""
    request = spb.SendMessageRequest()
    m = request.messages.add(body=b"x" * (LIMIT + 1024))
    m.topic.name = bystander.topic
    m.system_properties.message_id = uuid.uuid4().hex
    m.system_properties.message_type = pb.NORMAL
    with channel(server) as ch:
        with pytest.raises(grpc.RpcError) as huge:
            MessagingServiceStub(ch).SendMessage(request, timeout=10)
        assert huge.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    bystander.check()


def test_telemetry_without_settings_is_closed(server: FerryServer, bystander: Bystander) -> None:
    with channel(server) as ch:
        good_requests, silent_requests = Requests(), Requests()
        good = telemetry(ch, good_requests, uniq("good"))
        good_requests.put(settings_command(bystander.topic))
        assert next(good).status.code == pb.OK  # the settings reply

        silent = telemetry(ch, silent_requests, uniq("silent"))
        bystander.check()
        answers = list(silent)  # ends by itself: the server closes it
        silent_requests.close()
        assert [a.status.code for a in answers] == [pb.BAD_REQUEST]
        assert "settings" in answers[0].status.message

        good_requests.put(settings_command(bystander.topic))  # the well-behaved stream is still open
        assert next(good).status.code == pb.OK
        good_requests.close()
        assert list(good) == []
    bystander.check()
    log = server.log_path.read_text()
    assert "sent no settings" in log and "at 127.0.0.1:" in log


def test_hanging_receives_are_bounded_per_connection(server: FerryServer, bystander: Bystander) -> None:
    topic = uniq("Hang")
    create_topic(server.broker_addr, topic, 1)
    group = create_group(server)
    flood = 3 * PARKED
    with channel(server) as ch, ThreadPoolExecutor(flood) as pool:
        stub = MessagingServiceStub(ch)
        calls = [stub.ReceiveMessage(receive_request(group, topic, 20_000), timeout=30) for _ in range(flood)]
        futures = [pool.submit(list, call) for call in calls]
        eventually(lambda: sum(f.done() for f in futures) >= flood - PARKED, 15.0, "the refusals")
        refused = [f.result() for f in futures if f.done()]
        assert len(refused) == flood - PARKED  # the others are parked, waiting for a message
        assert {r[0].status.code for r in refused} == {pb.TOO_MANY_REQUESTS}
        bystander.check()  # another connection still receives (and parks) as usual

        for call in calls:
            call.cancel()  # the parked ones end; their places on the connection are free again
        for f in futures:
            f.exception(timeout=15)

        def parks_again() -> bool:
            answer = list(stub.ReceiveMessage(receive_request(group, topic, 200), timeout=10))
            return bool(answer[0].status.code == pb.MESSAGE_NOT_FOUND)

        eventually(parks_again, 15.0, "a parked receive on the flooder's connection")
    bystander.check()
    log = server.log_path.read_text()
    assert "gRPC ReceiveMessage from 127.0.0.1:" in log and "parked receives" in log


def test_parking_counts_per_connection_and_listener() -> None:
    from ferrymq.gateway.grpc.consume import Parking

    parking = Parking(per_connection=2, total=3)
    assert parking.enter("a:1") is None and parking.enter("a:1") is None
    assert "grpcMaxParkedReceivesPerConnection" in str(parking.enter("a:1"))
    assert parking.enter("b:2") is None
    assert "listener" in str(parking.enter("c:3"))  # the listener's bound, before c's own
    parking.leave("a:1")
    assert parking.enter("c:3") is None
    for peer in ("a:1", "b:2", "c:3"):
        parking.leave(peer)
    assert parking.counts == {} and parking.parked == 0
