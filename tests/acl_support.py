"""A ferrymq server with RocketMQ ACL on, shared by tests/test_rocketmq_acl_client.py and
compat-tests/test_java_acl.py: accounts, the broker.conf text, signed topic creation; the ACL 2.0 admin codes
signed as mqadmin signs them (tests/test_acl2_server.py, tests/test_acl2_grpc_namesrv.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.acl_sign import sign
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import connect, split_addr
from tests import cluster_helpers

PLAIN_ACL = """
accounts:
  - accessKey: root
    secretKey: root-secret
    admin: true
  - accessKey: writer
    secretKey: writer-secret
    defaultGroupPerm: SUB
    topicPerms:
      - AclT=PUB|SUB
      - AclDenied=SUB
"""


def acl_conf(tmp: Path) -> str:
    """broker.conf text: ACL on, the broker signing its registrations as the admin account."""
    path = tmp / "plain_acl.yml"
    path.write_text(PLAIN_ACL)
    return f"aclEnable=true\naclFile={path}\naccessKey=root\nsecretKey=root-secret\n"


def create_topic_signed(broker_addr: str, namesrv_addr: str, topic: str) -> None:
    async def go() -> RemotingCommand:
        conn = await connect(*split_addr(broker_addr))
        try:
            cmd = RemotingCommand(
                code=RequestCode.UPDATE_AND_CREATE_TOPIC, ext_fields=cluster_helpers.topic_fields(topic, 2)
            )
            sign(cmd, "root", "root-secret")
            return await conn.invoke(cmd)
        finally:
            conn.close()

    resp = asyncio.run(go())
    assert resp.code == ResponseCode.SUCCESS, resp.remark
    cluster_helpers.eventually(
        lambda: bool((r := cluster_helpers.routed(namesrv_addr, topic)) and r.queue_datas),
        10.0,
        "the topic reaching the name server",
    )


@contextmanager
def acl_server(tmp: Path) -> Iterator[FerryServer]:
    """A ``ferrymq serve`` with ACL on and the topics AclT and AclDenied."""
    with FerryServer(tmp / "ferrymq", acl_conf(tmp)) as s:
        create_topic_signed(s.broker_addr, s.namesrv_addr, "AclT")
        create_topic_signed(s.broker_addr, s.namesrv_addr, "AclDenied")
        yield s


#: the ACL 2.0 initAuthenticationUser of tests/test_acl2_server.py and tests/test_acl2_grpc_namesrv.py
ROOT = ("root", "root-pw")


def admin(
    addr: str, code: int, ext: dict[str, str], body: object = None, who: tuple[str, str] = ROOT
) -> RemotingCommand:
    """One signed admin request (as mqadmin with tools.yml sends it): the response."""

    async def go() -> RemotingCommand:
        conn = await connect(*split_addr(addr))
        try:
            cmd = RemotingCommand(
                code=code, ext_fields=dict(ext), body=b"" if body is None else json.dumps(body).encode()
            )
            sign(cmd, *who)
            return await conn.invoke(cmd)
        finally:
            conn.close()

    return asyncio.run(go())
