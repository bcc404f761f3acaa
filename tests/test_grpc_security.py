"""TLS and ACL on the gRPC listener: the signature the 5.x SDKs put in each call's metadata, the
resources each call needs (sans-IO), then one ``ferrymq serve`` with ``aclEnable`` and
``tls.server.mode=permissive``: the unmodified official Python SDK with credentials (allowed and
refused per topic), and grpcio over TLS and plaintext on the one port, refusals logged with the
client's real address. Enforcing mode (TLS served, plaintext refused):
compat-tests/test_java_grpc_security.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from ferrymq.cli.testing import FerryServer
from ferrymq.core.auth.acl import Operation, ResourceType
from ferrymq.core.broker.remoting_acl import AclRefused
from ferrymq.gateway.grpc.acl import needs, parse_authorization, signature_matches
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.protocol.service_pb2_grpc import MessagingServiceStub
from tests.acl_support import acl_conf, create_topic_signed
from tests.cluster_helpers import eventually
from tests.tls_certs import TlsCerts, make_certs

rocketmq = pytest.importorskip("rocketmq")
from rocketmq import ClientConfiguration, Credentials, Message, Producer  # noqa: E402
from rocketmq.v5.util.signature import Signature  # noqa: E402

logging.getLogger("rocketmq").setLevel(logging.CRITICAL)

DATE = "20261203T110000Z"


def metadata(ak: str, sk: str, date: str = DATE) -> list[tuple[str, str]]:
    """What the SDKs send, signed by the Python SDK's own code."""
    sign = Signature.sign(sk, date)
    authorization = f"MQv2-HMAC-SHA1 Credential={ak}, SignedHeaders=x-mq-date-time, Signature={sign}"
    return [("x-mq-date-time", date), ("authorization", authorization), ("x-mq-client-id", "t@1")]


def test_authorization_header_and_signature_as_the_sdks_send_them() -> None:
    [(_, date), (_, header), _] = metadata("writer", "writer-secret")
    key, sign = parse_authorization(header)
    assert key == "writer" and signature_matches(sign, date, "writer-secret")
    assert not signature_matches(sign, date, "other-secret")
    assert not signature_matches(sign, "20261203T110001Z", "writer-secret")
    assert not signature_matches("not-hex", date, "writer-secret")
    assert parse_authorization("MQv2-HMAC-SHA1 Credential=ak/region/x, Signature=ab")[0] == "ak"
    for bad in ("garbage", "MQv2-HMAC-SHA1 Credential", "MQv2-HMAC-SHA1 Credential=, Signature=00"):
        with pytest.raises(AclRefused):
            parse_authorization(bad)


def test_each_call_needs_what_the_proxy_checks() -> None:
    topic, group = pb.Resource(name="T"), pb.Resource(name="G")
    send = spb.SendMessageRequest(messages=[pb.Message(topic=topic)])
    assert needs("SendMessage", send) == [(ResourceType.TOPIC, "T", Operation.WRITE)]
    with pytest.raises(AclRefused):
        needs("SendMessage", spb.SendMessageRequest())
    receive = spb.ReceiveMessageRequest(group=group, message_queue=pb.MessageQueue(topic=topic))
    both = [(ResourceType.GROUP, "G", Operation.READ), (ResourceType.TOPIC, "T", Operation.READ)]
    assert needs("ReceiveMessage", receive) == both
    assert needs("AckMessage", spb.AckMessageRequest(group=group, topic=topic)) == both
    assert needs("ChangeInvisibleDuration", spb.ChangeInvisibleDurationRequest(group=group)) == both[:1]
    assert needs("Heartbeat", spb.HeartbeatRequest(group=group, client_type=pb.PRODUCER)) == []
    assert needs("Heartbeat", spb.HeartbeatRequest(group=group, client_type=pb.SIMPLE_CONSUMER)) == both[:1]
    retry = spb.EndTransactionRequest(topic=pb.Resource(name="%RETRY%G"))
    assert needs("EndTransaction", retry) == both[:1]  # a group's retry topic is the group
    settings = pb.Settings(publishing=pb.Publishing(topics=[topic]))
    assert needs("Telemetry", spb.TelemetryCommand(settings=settings)) == [
        (ResourceType.TOPIC, "T", Operation.WRITE)
    ]
    sub = pb.Settings(
        subscription=pb.Subscription(group=group, subscriptions=[pb.SubscriptionEntry(topic=topic)])
    )
    assert needs("Telemetry", spb.TelemetryCommand(settings=sub)) == both


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    return make_certs(tmp_path_factory.mktemp("grpc-certs"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, certs: TlsCerts) -> Iterator[FerryServer]:
    tmp = Path(tmp_path_factory.mktemp("grpc-acl"))
    tls = "\n".join(f"{k}={v}" for k, v in certs.broker_conf("permissive").items())
    with FerryServer(tmp / "ferrymq", acl_conf(tmp) + tls + "\n", grpc=True) as srv:
        create_topic_signed(srv.broker_addr, srv.namesrv_addr, "AclT")
        create_topic_signed(srv.broker_addr, srv.namesrv_addr, "AclDenied")
        yield srv


def producer(server: FerryServer, ak: str, sk: str) -> Producer:
    config = ClientConfiguration(server.grpc_endpoint, Credentials(ak, sk), request_timeout=5)
    p = Producer(config, ("AclT",))
    p.startup()
    return p


def message(topic: str, body: bytes) -> Message:
    msg = Message()
    msg.topic = topic
    msg.body = body
    return msg


def test_python_sdk_with_credentials_allowed_and_refused_per_topic(server: FerryServer) -> None:
    p = producer(server, "writer", "writer-secret")
    try:
        assert p.send(message("AclT", b"signed")).message_id
        with pytest.raises(Exception, match=r"No permission for topic:AclDenied"):
            p.send(message("AclDenied", b"refused"))
    finally:
        p.shutdown()
    eventually(
        lambda: (
            "gRPC SendMessage from 127.0.0.1:" in server.log_tail(200)
            and "No permission for topic:AclDenied" in server.log_tail(200)
        ),
        10.0,
        "the refusal logged with the client's own address",
    )


def _route(channel: grpc.Channel, md: list[tuple[str, str]] | None) -> object:
    return MessagingServiceStub(channel).QueryRoute(
        spb.QueryRouteRequest(topic=pb.Resource(name="AclT")), metadata=md, timeout=10
    )


def receive(
    channel: grpc.Channel, md: list[tuple[str, str]], topic: str = "AclT", group: str = "gAclReceive"
) -> list[Any]:
    """One ReceiveMessage call's responses (shared with tests/test_acl2_grpc_namesrv.py)."""
    request = spb.ReceiveMessageRequest(
        group=pb.Resource(name=group),
        message_queue=pb.MessageQueue(topic=pb.Resource(name=topic)),
        filter_expression=pb.FilterExpression(type=pb.TAG, expression="*"),
        batch_size=1,
        invisible_duration=Duration(seconds=30),
        long_polling_timeout=Duration(seconds=1),
    )
    return list(MessagingServiceStub(channel).ReceiveMessage(request, metadata=md, timeout=10))


def test_tls_and_plaintext_on_one_port_signature_checked_on_both(
    server: FerryServer, certs: TlsCerts
) -> None:
    credentials = grpc.ssl_channel_credentials(Path(certs.ca).read_bytes())
    options = [("grpc.ssl_target_name_override", "localhost")]
    with grpc.secure_channel(server.grpc_endpoint, credentials, options) as tls:
        assert _route(tls, metadata("writer", "writer-secret")).status.code == pb.OK  # type: ignore[attr-defined]
        refused = _route(tls, metadata("writer", "wrong-secret")).status  # type: ignore[attr-defined]
        assert (refused.code, refused.message) == (
            pb.UNAUTHORIZED,
            "Check signature failed for accessKey=writer",
        )
    with grpc.insecure_channel(server.grpc_endpoint) as plain:
        assert _route(plain, metadata("writer", "writer-secret")).status.code == pb.OK  # type: ignore[attr-defined]
        publishing = pb.Settings(publishing=pb.Publishing(topics=[pb.Resource(name="AclDenied")]))
        stream = MessagingServiceStub(plain).Telemetry(
            iter([spb.TelemetryCommand(settings=publishing)]),
            metadata=metadata("writer", "writer-secret"),
            timeout=10,
        )
        assert [c.status.code for c in stream] == [pb.UNAUTHORIZED]  # its settings not taken
        unsigned = _route(plain, None).status  # type: ignore[attr-defined]
        assert (unsigned.code, unsigned.message) == (pb.UNAUTHORIZED, "No accessKey is configured")
        # the streaming ReceiveMessage is checked as the unary calls are: a refusal is its one response
        assert [r.status.code for r in receive(plain, metadata("writer", "wrong-secret"))] == [
            pb.UNAUTHORIZED
        ]
        assert pb.UNAUTHORIZED not in [
            r.status.code for r in receive(plain, metadata("writer", "writer-secret"))
        ]
