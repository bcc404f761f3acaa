"""RocketMQ ACL 2.0 end to end in one embedded broker (authenticationEnabled and authorizationEnabled on):
the initAuthenticationUser ``root`` creates users and ACLs with the admin codes 3001-3010 signed as
mqadmin signs them; the Python client signing as ``alice`` (the same AclClientRPCHook signature) sends
where her policy allows and is refused NO_PERMISSION elsewhere; a disabled user, a wrong signature and a
normal user calling the admin codes are refused. One identity: alice is also a Kafka SCRAM user, and the
same ACL 2.0 policy governs her Kafka produce, while a Kafka ACL on User:alice opens a topic to her
RocketMQ producer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaError

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.cli.main import main as ferrymq_main
from ferrymq.client import BrokerError, Message, Producer
from ferrymq.core.auth.acl import AclBinding, Operation, PatternType, Permission, ResourceType
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from tests.acl_support import ROOT, admin


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedBroker, int]]:
    data: Path = tmp_path_factory.mktemp("acl2")
    with pytest.raises(SystemExit) as done:  # alice's Kafka SCRAM credentials
        ferrymq_main(["kafka-user", "--store", str(data / "store"), "alice", "--password", "alice-kafka"])
    assert done.value.code == 0
    conf = {
        "authenticationEnabled": "true",
        "authorizationEnabled": "true",
        "initAuthenticationUser": json.dumps({"username": ROOT[0], "password": ROOT[1]}),
        "innerClientAuthenticationCredentials": json.dumps({"accessKey": ROOT[0], "secretKey": ROOT[1]}),
        "kafkaListeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "kafkaAuthorizerEnable": "true",
    }
    with EmbeddedBroker(data, conf=conf) as b:
        for topic in ("Acl2T", "Acl2Denied", "KafkaT"):
            b.create_topic(topic, 1)
        addr = b.broker_addr
        for name, status in (("alice", "enable"), ("carol", "disable")):
            user = {"username": name, "password": f"{name}-pw", "userType": "Normal", "userStatus": status}
            resp = admin(addr, RequestCode.AUTH_CREATE_USER, {"username": name}, user)
            assert resp.code == ResponseCode.SUCCESS, resp.remark
        acl = {
            "subject": "User:alice",
            "policies": [
                {
                    "entries": [
                        {"resource": "Topic:Acl2T", "actions": ["Pub"], "sourceIps": [], "decision": "Allow"},
                        {"resource": "Group:*", "actions": ["Sub"], "sourceIps": [], "decision": "Allow"},
                    ]
                }
            ],
        }
        resp = admin(addr, RequestCode.AUTH_CREATE_ACL, {"subject": "User:alice"}, acl)
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        kafka = b._require().kafka
        assert kafka is not None
        yield b, kafka.listener_ports()["SASL_PLAINTEXT"]


def test_admin_codes_list_what_was_made_and_refuse_normal_users(broker: tuple[EmbeddedBroker, int]) -> None:
    addr = broker[0].broker_addr
    users = json.loads(bytes(admin(addr, RequestCode.AUTH_LIST_USER, {}).body))
    kinds = {u["username"]: u["userType"] for u in users}
    assert kinds == {"alice": "Normal", "carol": "Normal", "root": "Super"}
    got = json.loads(bytes(admin(addr, RequestCode.AUTH_GET_ACL, {"subject": "User:alice"}).body))
    assert got["policies"][0]["entries"][0]["resource"] == "Topic:Acl2T"
    refused = admin(addr, RequestCode.AUTH_LIST_USER, {}, who=("alice", "alice-pw"))
    assert refused.code == ResponseCode.NO_PERMISSION
    assert refused.remark is not None and "User:alice has no permission" in refused.remark


def test_python_client_allowed_denied_disabled_wrong_signature(broker: tuple[EmbeddedBroker, int]) -> None:
    namesrv = broker[0].namesrv_addr

    def send(topic: str, user: str, password: str) -> tuple[int, str | None] | None:
        with Producer(namesrv, group="acl2-py", retry_times=0, access_key=user, secret_key=password) as p:
            try:
                assert p.send(Message(topic, b"acl2")).ok
            except BrokerError as exc:
                return exc.code, exc.remark
        return None

    assert send("Acl2T", "alice", "alice-pw") is None
    code, remark = send("Acl2Denied", "alice", "alice-pw") or (0, None)
    assert code == ResponseCode.NO_PERMISSION
    assert remark is not None and remark.startswith("User:alice has no permission to access Topic:Acl2Denied")
    assert send("Acl2T", "carol", "carol-pw") == (ResponseCode.NO_PERMISSION, "User:carol is disabled.")
    assert send("Acl2T", "alice", "wrong") == (ResponseCode.NO_PERMISSION, "check signature failed.")


def test_one_identity_for_kafka_and_rocketmq(broker: tuple[EmbeddedBroker, int]) -> None:
    b, port = broker
    producer = KafkaProducer(
        bootstrap_servers=f"127.0.0.1:{port}",
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_plain_username="alice",
        sasl_plain_password="alice-kafka",
        max_block_ms=5000,
    )
    try:
        producer.send("Acl2T", b"kafka-under-acl2", partition=0).get(timeout=10)  # the ACL 2.0 Pub
        with pytest.raises(KafkaError):
            producer.send("Acl2Denied", b"no", partition=0).get(timeout=10)
    finally:
        producer.close()
    topic, literal = (ResourceType.TOPIC, "KafkaT"), PatternType.LITERAL
    grant = AclBinding(*topic, literal, "User:alice", "*", Operation.WRITE, Permission.ALLOW)
    b._require().broker.security.acls.create([grant])  # what Kafka's CreateAcls stores
    with Producer(b.namesrv_addr, group="acl2-k", access_key="alice", secret_key="alice-pw") as p:
        assert p.send(Message("KafkaT", b"rocketmq-under-kafka-acl")).ok


def test_a_broker_without_any_acl_refuses_the_user_admin_codes(tmp_path: Path) -> None:
    """Else anyone could make themselves a Super user, and with it a Kafka super user."""
    with EmbeddedBroker(tmp_path, kafka=False) as b:
        user = {"username": "mallory", "password": "x", "userType": "Super"}
        resp = admin(b.broker_addr, RequestCode.AUTH_CREATE_USER, {"username": "mallory"}, user)
        assert resp.code == ResponseCode.NO_PERMISSION
        assert b._require().broker.acl2_store.users == {}
