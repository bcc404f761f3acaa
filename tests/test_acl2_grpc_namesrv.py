"""RocketMQ ACL 2.0 on the gRPC listener, as Apache's proxy checks the 5.x SDKs: one embedded broker with
authenticationEnabled and authorizationEnabled on (ACL 1.0 off), users made with the admin codes 3001
and 3006. The official Python client signing as ``alice`` sends where her policy grants and is refused
elsewhere; a wrong password, a disabled user, an unknown user, an unsigned call and a ReceiveMessage
on a topic she may only publish to are refused UNAUTHORIZED (40100) with ACL 2.0's messages, which is
what the proxy's ResponseBuilder answers for both authentication and authorization failures. The name
server beside the broker takes broker registrations signed by a Super user only (ferrymq's own check;
before, it kept checking plain_acl.yml alone, so with ACL 2.0 alone anyone could register a broker)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.protocol.service_pb2_grpc import MessagingServiceStub
from tests.acl_support import ROOT, admin

rocketmq = pytest.importorskip("rocketmq")
from rocketmq import ClientConfiguration, Credentials, Message, Producer  # noqa: E402

from tests.test_grpc_security import metadata, receive  # noqa: E402

logging.getLogger("rocketmq").setLevel(logging.CRITICAL)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    conf = {
        "authenticationEnabled": "true",
        "authorizationEnabled": "true",
        "initAuthenticationUser": json.dumps({"username": ROOT[0], "password": ROOT[1]}),
        "innerClientAuthenticationCredentials": json.dumps({"accessKey": ROOT[0], "secretKey": ROOT[1]}),
    }
    with EmbeddedBroker(tmp_path_factory.mktemp("grpc-acl2"), conf=conf, kafka=False, grpc=True) as b:
        for topic in ("G2T", "G2Denied"):
            b.create_topic(topic, 1)
        for name, state in (("alice", "enable"), ("carol", "disable")):
            user = {"username": name, "password": f"{name}-pw", "userType": "Normal", "userStatus": state}
            resp = admin(b.broker_addr, RequestCode.AUTH_CREATE_USER, {"username": name}, user)
            assert resp.code == ResponseCode.SUCCESS, resp.remark
        entries = [
            {"resource": "Topic:G2T", "actions": ["Pub"], "sourceIps": [], "decision": "Allow"},
            {"resource": "Group:*", "actions": ["Sub"], "sourceIps": [], "decision": "Allow"},
            # her client may route G2Denied (Pub or Sub) but not send to it
            {"resource": "Topic:G2Denied", "actions": ["Sub"], "sourceIps": [], "decision": "Allow"},
        ]
        acl = {"subject": "User:alice", "policies": [{"entries": entries}]}
        resp = admin(b.broker_addr, RequestCode.AUTH_CREATE_ACL, {"subject": "User:alice"}, acl)
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        yield b


def test_python_sdk_sends_where_the_policy_grants_and_is_refused_elsewhere(broker: EmbeddedBroker) -> None:
    config = ClientConfiguration(broker.grpc_endpoint, Credentials("alice", "alice-pw"), request_timeout=5)
    producer = Producer(config, ("G2T",))
    producer.startup()
    try:
        allowed = Message()
        allowed.topic, allowed.body = "G2T", b"granted"
        assert producer.send(allowed).message_id
        denied = Message()
        denied.topic, denied.body = "G2Denied", b"refused"
        with pytest.raises(Exception, match=r"User:alice has no permission to access Topic:G2Denied"):
            producer.send(denied)
    finally:
        producer.shutdown()


def test_wrong_password_disabled_unknown_unsigned_and_receive_refused(broker: EmbeddedBroker) -> None:
    with grpc.insecure_channel(broker.grpc_endpoint) as channel:
        stub = MessagingServiceStub(channel)

        def route(md: list[tuple[str, str]] | None) -> tuple[int, str]:
            got: Any = stub.QueryRoute(
                spb.QueryRouteRequest(topic=pb.Resource(name="G2T")), metadata=md, timeout=10
            )
            return got.status.code, got.status.message

        assert route(metadata("alice", "alice-pw"))[0] == pb.OK
        assert route(metadata("alice", "wrong")) == (pb.UNAUTHORIZED, "check signature failed.")
        assert route(metadata("carol", "carol-pw")) == (pb.UNAUTHORIZED, "User:carol is disabled.")
        assert route(metadata("bob", "bob-pw")) == (pb.UNAUTHORIZED, "User:bob is not found.")
        assert route(None) == (pb.UNAUTHORIZED, "username cannot be null.")
        answers = receive(channel, metadata("alice", "alice-pw"), "G2T", "gAcl2")
        assert [(r.status.code, r.status.message) for r in answers] == [
            (
                pb.UNAUTHORIZED,
                "User:alice has no permission to access Topic:G2T from 127.0.0.1, no matched policies.",
            )
        ]


def test_name_server_takes_registrations_signed_by_a_super_user_only(broker: EmbeddedBroker) -> None:
    fields = {
        "brokerName": "acl2-b",
        "brokerAddr": "127.0.0.1:1",
        "clusterName": "Acl2Cluster",
        "brokerId": "0",
        "haServerAddr": "127.0.0.1:2",
        "compressed": "false",
        "bodyCrc32": "0",
    }

    def register(who: tuple[str, str]) -> tuple[int, str | None]:
        resp = admin(broker.namesrv_addr, RequestCode.REGISTER_BROKER, fields, who=who)
        return resp.code, resp.remark

    refused = ResponseCode.NO_PERMISSION
    assert register(("alice", "alice-pw")) == (
        refused,
        "User:alice has no permission to access Cluster:Acl2Cluster from 127.0.0.1, no matched policies.",
    )
    assert register(("root", "guess")) == (refused, "check signature failed.")
    assert register(("carol", "carol-pw")) == (refused, "User:carol is disabled.")
    assert register(("bob", "bob-pw")) == (refused, "User:bob is not found.")
    assert register(ROOT)[0] == ResponseCode.SUCCESS
    gone = admin(broker.namesrv_addr, RequestCode.UNREGISTER_BROKER, fields)
    assert gone.code == ResponseCode.SUCCESS, gone.remark


def test_an_unsigned_registration_is_refused() -> None:
    from ferrymq.namesrv.acl import user_refusal

    unsigned = RemotingCommand(code=RequestCode.REGISTER_BROKER, ext_fields={"clusterName": "c"})
    refused = user_refusal(lambda name, host: ("pw", True), unsigned, "127.0.0.1:5")
    assert refused is not None and (refused.code, refused.remark) == (
        ResponseCode.NO_PERMISSION,
        "username cannot be null.",
    )
