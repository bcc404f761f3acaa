"""RocketMQ ACL 1.0: request signing, plain_acl.yml accounts fed to core's Authorizer, the broker's
per-request check and the name server's registration check (README "RocketMQ ACL")."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ferrymq.core.auth.acl import Authorizer, Operation, ResourceType
from ferrymq.core.auth.plain_acl import apply_plain_acl
from ferrymq.core.broker.remoting_acl import RemotingAcl
from ferrymq.core.remoting.acl_sign import sign, signature, verify
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.heartbeat import ConsumerData, HeartbeatData
from ferrymq.core.remoting.plain_acl import PlainAclFile, address_matches, parse_plain_acl
from ferrymq.core.remoting.subscription import SubscriptionData
from ferrymq.core.remoting.transport import connect
from ferrymq.namesrv.server import NameServer

PLAIN_ACL = """
globalWhiteRemoteAddresses:
  - 10.10.103.*
accounts:
  - accessKey: writer
    secretKey: writer-secret
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - orders=PUB
      - audit=PUB|SUB
    groupPerms:
      - blocked=DENY
  - accessKey: reader
    secretKey: reader-secret
    defaultTopicPerm: SUB
    topicPerms:
      - secret=DENY
      - orders=PUB
  - accessKey: root
    secretKey: root-secret
    admin: true
  - accessKey: office
    secretKey: office-secret
    whiteRemoteAddress: 192.168.1.{5,6}
"""


@pytest.fixture
def acl_file(tmp_path: Path) -> PlainAclFile:
    path = tmp_path / "plain_acl.yml"
    path.write_text(PLAIN_ACL)
    return PlainAclFile(path)


def _send(topic: str, key: str | None, secret: str | None, body: bytes = b"hello") -> RemotingCommand:
    cmd = RemotingCommand(
        code=RequestCode.SEND_MESSAGE_V2, ext_fields={"a": "pg", "b": topic, "c": "TBW102"}, body=body
    )
    if key is not None and secret is not None:
        sign(cmd, key, secret)
    return cmd


def test_signature_is_the_java_signers() -> None:
    # AclSignerTest in apache/rocketmq: HmacSHA1("RocketMQ", "12345678"), base64
    assert signature(b"RocketMQ", "12345678") == "IUc8rrO/0gDch8CjObLQsW2rsiA="


def test_signed_content_is_sorted_values_then_body() -> None:
    cmd = RemotingCommand(code=10, ext_fields={"b": "2", "a": "1"}, body=b"XY")
    sign(cmd, "ak", "sk", security_token="tok")
    # keys AccessKey < SecurityToken < a < b: values only, then the body
    assert cmd.ext_fields["Signature"] == signature(b"aktok12XY", "sk")
    assert verify(cmd, "sk")
    assert not verify(cmd, "other")


def test_a_replayed_signature_verifies_only_on_the_same_request() -> None:
    """No nonce in RocketMQ's signature: an unchanged replay verifies (as on RocketMQ); moved onto
    another topic or body it does not."""
    original = _send("orders", "writer", "writer-secret")
    replay = RemotingCommand(code=original.code, ext_fields=dict(original.ext_fields), body=original.body)
    assert verify(replay, "writer-secret")
    moved = RemotingCommand(
        code=original.code, ext_fields={**original.ext_fields, "b": "audit"}, body=b"hello"
    )
    assert not verify(moved, "writer-secret")
    rebodied = RemotingCommand(code=original.code, ext_fields=dict(original.ext_fields), body=b"other")
    assert not verify(rebodied, "writer-secret")


def test_white_list_patterns() -> None:
    assert address_matches("10.10.103.*", "10.10.103.7")
    assert not address_matches("10.10.103.*", "10.10.104.7")
    assert address_matches("192.168.1.{5,6}", "192.168.1.6")
    assert not address_matches("192.168.1.{5,6}", "192.168.1.7")
    assert address_matches("10.1.1.1-100", "10.1.1.50")
    assert not address_matches("10.1.1.1-100", "10.1.1.150")
    assert address_matches("1.2.3.4,5.6.7.8", "5.6.7.8")
    assert address_matches("*", "::1")
    assert not address_matches("", "1.2.3.4")


def test_one_principal_one_authorizer() -> None:
    """A plain_acl.yml account becomes User:<accessKey> in core's Authorizer, with RocketMQ's meaning."""
    authorizer = Authorizer()
    apply_plain_acl(authorizer, parse_plain_acl(PLAIN_ACL))

    def may(user: str, op: Operation, rtype: ResourceType, name: str) -> bool:
        return authorizer.authorize(f"User:{user}", "127.0.0.1", op, rtype, name)

    assert may("writer", Operation.WRITE, ResourceType.TOPIC, "orders")
    assert not may("writer", Operation.READ, ResourceType.TOPIC, "orders")
    assert may("writer", Operation.READ, ResourceType.TOPIC, "audit")
    assert not may("writer", Operation.WRITE, ResourceType.TOPIC, "elsewhere")  # default DENY
    assert may("writer", Operation.READ, ResourceType.GROUP, "any-group")  # defaultGroupPerm SUB
    assert not may("writer", Operation.READ, ResourceType.GROUP, "blocked")
    # an explicit entry overrides the default: reader may read every topic but write only orders,
    # and read neither secret nor orders
    assert may("reader", Operation.READ, ResourceType.TOPIC, "news")
    assert not may("reader", Operation.READ, ResourceType.TOPIC, "secret")
    assert not may("reader", Operation.READ, ResourceType.TOPIC, "orders")
    assert may("reader", Operation.WRITE, ResourceType.TOPIC, "orders")
    assert "User:root" in authorizer.super_users
    assert may("root", Operation.ALTER, ResourceType.CLUSTER, "kafka-cluster")
    assert not may("stranger", Operation.WRITE, ResourceType.TOPIC, "orders")


def test_broker_check_refuses_with_no_permission(acl_file: PlainAclFile) -> None:
    guard = RemotingAcl(acl_file, Authorizer())
    peer = "127.0.0.1:5555"
    assert guard.check(_send("orders", "writer", "writer-secret"), peer) is None
    cases = {
        "No accessKey is configured": _send("orders", None, None),
        "No acl config for nobody": _send("orders", "nobody", "x"),
        "Check signature failed for accessKey=writer": _send("orders", "writer", "wrong"),
        "No permission for topic:elsewhere": _send("elsewhere", "writer", "writer-secret"),
    }
    for remark, cmd in cases.items():
        refused = guard.check(cmd, peer)
        assert refused is not None and (refused.code, refused.remark) == (ResponseCode.NO_PERMISSION, remark)
    # pull: topic and group; the group's retry topic is the group
    pull = RemotingCommand(
        code=RequestCode.PULL_MESSAGE, ext_fields={"topic": "audit", "consumerGroup": "blocked"}
    )
    sign(pull, "writer", "writer-secret")
    refused = guard.check(pull, peer)
    assert refused is not None and refused.remark == "No permission for group:blocked"
    # heartbeat: every consumer group and subscribed topic
    hb = HeartbeatData("c1", [], [ConsumerData("g1", subscriptions=[SubscriptionData("orders", "*")])])
    beat = RemotingCommand(code=RequestCode.HEART_BEAT, body=hb.encode())
    sign(beat, "writer", "writer-secret")
    refused = guard.check(beat, peer)
    assert refused is not None and refused.remark == "No permission for topic:orders"
    # admin codes: super users only
    create = RemotingCommand(code=RequestCode.UPDATE_AND_CREATE_TOPIC, ext_fields={"topic": "t"})
    sign(create, "writer", "writer-secret")
    refused = guard.check(create, peer)
    assert refused is not None and "Need admin permission for request code=17" in str(refused.remark)
    sign(create, "root", "root-secret")
    assert guard.check(create, peer) is None
    # white lists skip the signature, as in RocketMQ
    assert guard.check(_send("anything", None, None), "10.10.103.9:1") is None
    assert guard.check(_send("anything", "office", "not-checked"), "192.168.1.5:1") is None


def test_acl_file_reload_replaces_the_accounts(acl_file: PlainAclFile) -> None:
    authorizer = Authorizer()
    guard = RemotingAcl(acl_file, authorizer)
    assert guard.check(_send("elsewhere", "writer", "writer-secret"), "127.0.0.1:1") is not None
    acl_file.path.write_text(
        PLAIN_ACL.replace("orders=PUB\n      - audit", "elsewhere=PUB\n      - audit", 1)
    )
    st = acl_file.path.stat()
    os.utime(acl_file.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert acl_file.reload_if_changed()
    assert guard.check(_send("elsewhere", "writer", "writer-secret"), "127.0.0.1:1") is None
    assert guard.check(_send("orders", "writer", "writer-secret"), "127.0.0.1:1") is not None
    # a broken new version keeps the last good one
    acl_file.path.write_text("accounts: [ {accessKey: x} ]")
    assert not acl_file.reload_if_changed()
    assert guard.check(_send("elsewhere", "writer", "writer-secret"), "127.0.0.1:1") is None


def test_name_server_refuses_unsigned_registration(tmp_path: Path) -> None:
    asyncio.run(_name_server_refuses_unsigned_registration(tmp_path))


async def _name_server_refuses_unsigned_registration(tmp_path: Path) -> None:
    path = tmp_path / "plain_acl.yml"
    path.write_text(PLAIN_ACL)
    async with NameServer(host="127.0.0.1", port=0, acl_file=path) as ns:
        conn = await connect("127.0.0.1", ns.port)
        try:

            def register() -> RemotingCommand:
                return RemotingCommand(
                    code=RequestCode.REGISTER_BROKER,
                    ext_fields={
                        "brokerName": "b",
                        "brokerAddr": "127.0.0.1:1",
                        "clusterName": "c",
                        "brokerId": "0",
                        "haServerAddr": "127.0.0.1:2",
                        "compressed": "false",
                        "bodyCrc32": "0",
                    },
                )

            unsigned = await conn.invoke(register())
            assert (unsigned.code, unsigned.remark) == (
                ResponseCode.NO_PERMISSION,
                "No accessKey is configured",
            )
            not_admin = register()
            sign(not_admin, "writer", "writer-secret")
            assert (await conn.invoke(not_admin)).code == ResponseCode.NO_PERMISSION
            forged = register()
            sign(forged, "root", "guess")
            assert (await conn.invoke(forged)).code == ResponseCode.NO_PERMISSION
            assert not ns.routes.broker_addr_table
            signed = register()
            sign(signed, "root", "root-secret")
            assert (await conn.invoke(signed)).code == ResponseCode.SUCCESS
        finally:
            conn.close()


@pytest.mark.parametrize(
    "code",
    [
        RequestCode.BROKER_HEARTBEAT,
        RequestCode.CONTROLLER_REGISTER_BROKER,
        RequestCode.CONTROLLER_ELECT_MASTER,
        RequestCode.CONTROLLER_ALTER_SYNC_STATE_SET,
    ],
)
def test_name_server_guards_the_controllers_writes(acl_file: PlainAclFile, code: RequestCode) -> None:
    """Who may beat for, register, elect or change the in-sync set of a broker is an admin account:
    a forged heartbeat would keep a dead master alive, a forged election pick any master."""
    from ferrymq.namesrv.acl import refusal

    fields = {"clusterName": "c", "brokerName": "b", "brokerId": "1"}
    unsigned = RemotingCommand(code=code, ext_fields=dict(fields))
    assert (refused := refusal(acl_file, unsigned, "127.0.0.1:1")) is not None
    assert refused.code == ResponseCode.NO_PERMISSION
    writer = RemotingCommand(code=code, ext_fields=dict(fields))
    sign(writer, "writer", "writer-secret")
    assert refusal(acl_file, writer, "127.0.0.1:1") is not None
    admin = RemotingCommand(code=code, ext_fields=dict(fields))
    sign(admin, "root", "root-secret")
    assert refusal(acl_file, admin, "127.0.0.1:1") is None
    reads = RemotingCommand(code=RequestCode.CONTROLLER_GET_REPLICA_INFO, ext_fields={"brokerName": "b"})
    assert refusal(acl_file, reads, "127.0.0.1:1") is None  # queries stay open, as route queries


def test_a_replay_does_only_what_its_signer_may(acl_file: PlainAclFile) -> None:
    """A captured signed request replayed to the broker: unchanged it runs again (RocketMQ signs no
    nonce); with a field changed, added or dropped, another body or another account's key it is
    refused; carried over to another request code (the signature covers the values, not the code,
    as on RocketMQ) it is checked against that code's permissions for the signer, so it never does
    more than the signer's account may."""
    guard = RemotingAcl(acl_file, Authorizer())
    peer = "127.0.0.1:1"
    original = _send("orders", "writer", "writer-secret")

    def replay(**changes: str) -> RemotingCommand:
        ext = {**original.ext_fields, **changes}
        return RemotingCommand(code=original.code, ext_fields=ext, body=original.body)

    assert guard.check(replay(), peer) is None
    tampered = [
        replay(b="audit"),
        replay(z="added"),
        RemotingCommand(
            code=original.code,
            ext_fields={k: v for k, v in original.ext_fields.items() if k != "c"},
            body=original.body,
        ),
        RemotingCommand(code=original.code, ext_fields=dict(original.ext_fields), body=b"other"),
        replay(AccessKey="reader"),
    ]
    for cmd in tampered:
        refused = guard.check(cmd, peer)
        assert refused is not None and refused.code == ResponseCode.NO_PERMISSION
        assert refused.remark is not None and refused.remark.startswith("Check signature failed")
    # the same values under an admin code: the signature verifies, the writer is no admin
    recoded = RemotingCommand(
        code=RequestCode.DELETE_TOPIC_IN_BROKER, ext_fields=dict(original.ext_fields), body=original.body
    )
    refused = guard.check(recoded, peer)
    assert refused is not None and refused.code == ResponseCode.NO_PERMISSION
    assert (
        refused.remark
        == f"Need admin permission for request code={recoded.code}, but accessKey=writer is not"
    )
