"""RocketMQ ACL 2.0 in process: the UserInfo/AclInfo model, policies as Authorizer bindings (one identity
with Kafka ACLs), the durable store, the request mapping and the broker's check (core/auth/acl2.py,
core/auth/acl2_store.py, core/broker/remoting_acl2.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ferrymq.core.auth.acl import (
    AclBinding,
    Authorizer,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)
from ferrymq.core.auth.acl2 import AuthError, parse_acl, parse_user
from ferrymq.core.auth.acl2_store import Acl2Store
from ferrymq.core.auth.plain_acl import apply_plain_acl
from ferrymq.core.broker.remoting_acl2 import RemotingAcl2, needs_v2
from ferrymq.core.remoting.acl_sign import sign
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.plain_acl import PlainAclFile

HOST = "10.0.0.7"
NOPE = {"a": "g", "b": "nope"}


def acl_info(subject: str, *entries: dict[str, object]) -> dict[str, object]:
    return {"subject": subject, "policies": [{"entries": list(entries)}]}


def entry(resource: str, actions: list[str], decision: str = "Allow", ips: list[str] | None = None) -> dict:
    return {"resource": resource, "actions": actions, "sourceIps": ips or [], "decision": decision}


@pytest.fixture
def store(tmp_path: Path) -> Acl2Store:
    s = Acl2Store(tmp_path / "auth.json", Authorizer())
    s.init_user("root", "root-pw")
    s.create_user(parse_user({"username": "alice", "password": "alice-pw"}))
    s.put_acl(
        parse_acl(
            acl_info(
                "User:alice",
                entry("Topic:orders", ["Pub", "Sub"]),
                entry("Topic:logs-*", ["Pub"]),
                entry("Group:g-*", ["Sub"]),
                entry("Topic:secret", ["All"], "Deny"),
                entry("Topic:from-ip", ["Pub"], ips=["10.0.0.9"]),
            )
        )
    )
    return s


def test_user_info_parses_case_insensitively_and_refuses_blanks() -> None:
    user = parse_user({"username": "bob", "password": "p", "userType": "super", "userStatus": "DISABLE"})
    assert (user.user_type, user.status, user.enabled) == ("Super", "disable", False)
    assert parse_user({"password": "p"}, "carol").to_json() == {
        "username": "carol",
        "password": "p",
        "userType": "Normal",
        "userStatus": "enable",
    }
    for bad in ({"username": "x"}, {"username": "", "password": "p"}, {"password": "p", "userType": "God"}):
        with pytest.raises(AuthError):
            parse_user(bad)


def test_acl_info_resources_actions_and_refusals() -> None:
    acl = parse_acl(acl_info("User:a", entry("Topic:pre*", ["pub", "SUB"]), entry("*", ["Get"])))
    assert acl.to_json()["policies"][0]["entries"][0] == entry("Topic:pre*", ["Pub", "Sub"])
    for bad in (
        acl_info("alice", entry("Topic:t", ["Pub"])),  # not User:<name>
        acl_info("User:a", entry("Namespace:n", ["Pub"])),
        acl_info("User:a", entry("Topic:t", [])),
        acl_info("User:a", entry("Topic:t", ["Fly"])),
        acl_info("User:a", entry("Topic:t", ["Pub"], "Maybe")),
        acl_info("User:a", entry("Topic:t", ["Pub"], ips=["10.0.0.0/8"])),
        {"subject": "User:a", "policies": []},
    ):
        with pytest.raises(AuthError):
            parse_acl(bad)


def test_policies_are_authorizer_bindings(store: Acl2Store) -> None:
    az = store.authorizer
    ok = [
        (Operation.WRITE, ResourceType.TOPIC, "orders"),
        (Operation.READ, ResourceType.TOPIC, "orders"),
        (Operation.DESCRIBE, ResourceType.TOPIC, "orders"),  # Get is implied by Pub/Sub, as in Kafka
        (Operation.WRITE, ResourceType.TOPIC, "logs-app"),  # the prefix
        (Operation.READ, ResourceType.GROUP, "g-1"),
    ]
    refused = [
        (Operation.WRITE, ResourceType.TOPIC, "other"),  # no policy
        (Operation.READ, ResourceType.TOPIC, "logs-app"),  # Pub only
        (Operation.READ, ResourceType.GROUP, "h-1"),
        (Operation.READ, ResourceType.TOPIC, "secret"),  # Deny
        (Operation.WRITE, ResourceType.TOPIC, "from-ip"),  # another source IP
        (Operation.ALTER, ResourceType.CLUSTER, "kafka-cluster"),
    ]
    assert all(az.authorize("User:alice", HOST, *need) for need in ok)
    assert not any(az.authorize("User:alice", HOST, *need) for need in refused)
    assert az.authorize("User:alice", "10.0.0.9", Operation.WRITE, ResourceType.TOPIC, "from-ip")
    assert az.authorize("User:root", HOST, Operation.ALTER, ResourceType.CLUSTER, "kafka-cluster")  # Super


def test_one_identity_kafka_acls_and_acl2_policies_both_apply(store: Acl2Store) -> None:
    az = store.authorizer
    kafka = AclBinding(
        ResourceType.TOPIC, "other", PatternType.LITERAL, "User:alice", "*", Operation.WRITE, Permission.ALLOW
    )
    az.set_bindings("kafka", [kafka])
    assert az.authorize("User:alice", HOST, Operation.WRITE, ResourceType.TOPIC, "other")
    deny = AclBinding(
        ResourceType.TOPIC, "orders", PatternType.LITERAL, "User:alice", "*", Operation.WRITE, Permission.DENY
    )
    az.set_bindings("kafka", [kafka, deny])  # a Kafka Deny wins over the ACL 2.0 Allow
    assert not az.authorize("User:alice", HOST, Operation.WRITE, ResourceType.TOPIC, "orders")


def test_store_is_durable_and_merges_like_rocketmq(store: Acl2Store, tmp_path: Path) -> None:
    store.put_acl(parse_acl(acl_info("User:alice", entry("Topic:orders", ["Sub"]))))  # replaces that entry
    again = Acl2Store(tmp_path / "auth.json", Authorizer())
    assert again.users == store.users
    entries = again.acls["User:alice"].to_json()["policies"][0]["entries"]
    assert entry("Topic:orders", ["Sub"]) in entries and len(entries) == 5
    assert not again.authorizer.authorize("User:alice", HOST, Operation.WRITE, ResourceType.TOPIC, "orders")
    assert (tmp_path / "auth.json").stat().st_mode & 0o077 == 0
    assert json.loads((tmp_path / "auth.json").read_text())["users"][0]["username"] == "alice"
    with pytest.raises(AuthError, match="existed"):
        again.create_user(parse_user({"username": "alice", "password": "x"}))
    with pytest.raises(AuthError, match="not exist"):
        again.put_acl(parse_acl(acl_info("User:nobody", entry("Topic:t", ["Pub"]))))
    again.delete_acl("User:alice", None, "Topic:orders")
    assert len(again.acls["User:alice"].policies[0].entries) == 4
    assert [a.subject for a in again.list_acls(None, "logs")] == ["User:alice"]
    assert again.list_acls(None, "nothing") == []
    again.delete_user("alice")  # its ACL goes with it
    assert again.acls == {} and again.authorizer.bindings("acl2") == []
    assert not again.init_user("root", "changed")  # an existing user is kept


def test_a_disabled_user_loses_its_policies_and_super_rights(store: Acl2Store) -> None:
    store.update_user(parse_user({"userStatus": "disable"}, "alice", store.users["alice"]))
    assert store.users["alice"].password == "alice-pw"
    assert not store.authorizer.authorize("User:alice", HOST, Operation.WRITE, ResourceType.TOPIC, "orders")
    store.update_user(parse_user({"userStatus": "disable"}, "root", store.users["root"]))
    assert "User:root" not in store.authorizer.super_users


def request(code: int, ext: dict[str, str], body: bytes = b"") -> RemotingCommand:
    return RemotingCommand(code=code, ext_fields=dict(ext), body=body)


def test_request_mapping_is_default_authorization_context_builders() -> None:
    send = request(RequestCode.SEND_MESSAGE_V2, {"a": "g", "b": "orders"})
    assert list(needs_v2(send)) == [(ResourceType.TOPIC, "orders", Operation.WRITE)]
    retry = request(RequestCode.SEND_MESSAGE_V2, {"a": "g", "b": "%RETRY%g-1"})
    assert list(needs_v2(retry)) == [(ResourceType.GROUP, "g-1", Operation.READ)]
    pull = request(RequestCode.PULL_MESSAGE, {"topic": "orders", "consumerGroup": "g-1"})
    assert list(needs_v2(pull)) == [
        (ResourceType.TOPIC, "orders", Operation.READ),
        (ResourceType.GROUP, "g-1", Operation.READ),
    ]
    create = request(RequestCode.UPDATE_AND_CREATE_TOPIC, {"topic": "t"})
    assert list(needs_v2(create)) == [(ResourceType.TOPIC, "t", Operation.CREATE)]
    delete = request(RequestCode.DELETE_TOPIC_IN_BROKER, {"topic": "t"})
    assert list(needs_v2(delete)) == [(ResourceType.TOPIC, "t", Operation.DELETE)]


def check(guard: RemotingAcl2, cmd: RemotingCommand) -> tuple[int, str | None] | None:
    refused = guard.check(cmd, f"{HOST}:5555")
    return None if refused is None else (refused.code, refused.remark)


def signed(code: int, ext: dict[str, str], user: str, password: str) -> RemotingCommand:
    cmd = request(code, ext)
    sign(cmd, user, password)
    return cmd


def test_broker_check_authenticates_then_authorizes(store: Acl2Store) -> None:
    guard = RemotingAcl2(store, store.authorizer, authentication=True, authorization=True)
    store.create_user(parse_user({"username": "carol", "password": "c", "userStatus": "disable"}))
    send = {"a": "g", "b": "orders"}
    denied = (ResponseCode.NO_PERMISSION, "User:alice has no permission to access Topic:nope from 10.0.0.7, "
              "no matched policies.")  # fmt: skip
    assert check(guard, signed(RequestCode.SEND_MESSAGE_V2, send, "alice", "alice-pw")) is None
    assert check(guard, signed(RequestCode.SEND_MESSAGE_V2, NOPE, "alice", "alice-pw")) == denied
    assert check(guard, signed(RequestCode.SEND_MESSAGE_V2, send, "alice", "wrong")) == (
        ResponseCode.NO_PERMISSION, "check signature failed.")  # fmt: skip
    assert check(guard, signed(RequestCode.SEND_MESSAGE_V2, send, "carol", "c")) == (
        ResponseCode.NO_PERMISSION, "User:carol is disabled.")  # fmt: skip
    assert check(guard, signed(RequestCode.SEND_MESSAGE_V2, send, "dave", "d")) == (
        ResponseCode.NO_PERMISSION, "User:dave is not found.")  # fmt: skip
    assert check(guard, request(RequestCode.SEND_MESSAGE_V2, send)) == (
        ResponseCode.NO_PERMISSION, "username cannot be null.")  # fmt: skip
    # the admin codes 3001-3010 are for Super users; root skips every policy
    listing = signed(RequestCode.AUTH_LIST_USER, {}, "alice", "alice-pw")
    assert check(guard, listing) == (
        ResponseCode.NO_PERMISSION,
        "User:alice has no permission to access Cluster:kafka-cluster from 10.0.0.7, no matched policies.",
    )
    assert check(guard, signed(RequestCode.AUTH_LIST_USER, {}, "root", "root-pw")) is None
    assert check(guard, signed(RequestCode.SEND_MESSAGE_V2, NOPE, "root", "root-pw")) is None


def test_authentication_only_lets_any_enabled_user_anywhere(store: Acl2Store) -> None:
    guard = RemotingAcl2(store, store.authorizer, authentication=True, authorization=False)
    assert check(guard, signed(RequestCode.SEND_MESSAGE_V2, NOPE, "alice", "alice-pw")) is None
    assert (
        check(guard, signed(RequestCode.AUTH_CREATE_USER, {"username": "x"}, "alice", "alice-pw")) is not None
    )


def test_with_acl_1_0_on_too_plain_acl_accounts_authenticate_under_acl_2_0(
    store: Acl2Store, tmp_path: Path
) -> None:
    path = tmp_path / "plain_acl.yml"
    path.write_text(
        "accounts:\n  - accessKey: legacy\n    secretKey: legacy-secret\n    topicPerms: [orders=PUB]\n"
    )
    plain = PlainAclFile(path)
    apply_plain_acl(store.authorizer, plain.acl)
    guard = RemotingAcl2(store, store.authorizer, authentication=True, authorization=True, plain=plain)
    send = {"a": "g", "b": "orders"}
    assert check(guard, signed(RequestCode.SEND_MESSAGE_V2, send, "legacy", "legacy-secret")) is None
    assert check(guard, signed(RequestCode.SEND_MESSAGE_V2, send, "legacy", "nope")) == (
        ResponseCode.NO_PERMISSION, "check signature failed.")  # fmt: skip
    assert check(guard, signed(RequestCode.SEND_MESSAGE_V2, NOPE, "legacy", "legacy-secret")) is not None
