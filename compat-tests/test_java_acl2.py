"""RocketMQ ACL 2.0 with RocketMQ 5.3.3's own tools and client, unmodified: a ``ferrymq serve`` with
authenticationEnabled and authorizationEnabled, its Super user ``root`` from initAuthenticationUser.
mqadmin (signing as root from its conf/tools.yml, one JVM) creates the user ``writer`` and its ACL and
lists them; then the Java client's AclClientRPCHook signing as writer (compat-tests/java AclClients, one
JVM) sends to the topic its policy allows, reads it back, is refused NO_PERMISSION on the other topic
and with a wrong password. (Disabled users, updates and deletes: tests/test_acl2_server.py and
tests/test_acl2.py; each mqadmin command here may cost 3 s in the Java client's own shutdown.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import java_support as js
import pytest
import tools_support as ts

from ferrymq.cli.testing import FerryServer
from tests.acl_support import create_topic_signed

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

ROOT = {"username": "root", "password": "root-secret"}  # what tests.acl_support signs topic creation with
INNER = {"accessKey": "root", "secretKey": "root-secret"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerryServer]:
    tmp = tmp_path_factory.mktemp("javaacl2")
    conf = (
        "authenticationEnabled=true\nauthorizationEnabled=true\n"
        f"initAuthenticationUser={json.dumps(ROOT)}\n"
        f"innerClientAuthenticationCredentials={json.dumps(INNER)}\n"
    )
    with FerryServer(tmp / "ferrymq", conf) as s:
        create_topic_signed(s.broker_addr, s.namesrv_addr, "AclT")
        create_topic_signed(s.broker_addr, s.namesrv_addr, "AclDenied")
        yield s


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ts.ToolSession]:
    home: Path = tmp_path_factory.mktemp("mqadmin-acl2")
    (home / "conf").mkdir()
    (home / "conf" / "tools.yml").write_text("accessKey: root\nsecretKey: root-secret\n")
    with ts.ToolSession(home, jvm_args=[f"-Drocketmq.home.dir={home}"]) as session:
        yield session


def test_mqadmin_manages_users_and_acls_the_java_client_obeys(
    server: FerryServer, tools: ts.ToolSession
) -> None:
    b = server.broker_addr
    made = tools.mqadmin(
        "createUser",
        "-n",
        server.namesrv_addr,
        "-b",
        b,
        "-u",
        "writer",
        "-p",
        "writer-secret",
        "-t",
        "Normal",
    )
    assert f"create user to {b} success." in made.text, made.text
    acl = tools.mqadmin(
        "createAcl",
        "-n",
        server.namesrv_addr,
        "-b",
        b,
        "-s",
        "User:writer",
        "-r",
        "Topic:AclT,Group:acl-*",
        "-a",
        "Pub,Sub",
        "-d",
        "Allow",
    )
    assert "success" in acl.text, acl.text
    acls = tools.mqadmin("listAcl", "-n", server.namesrv_addr, "-b", b).text
    assert "User:writer" in acls and "Topic:AclT" in acls and "Group:acl-*" in acls, acls

    by = js.run_acl_clients(server.namesrv_addr, "writer", "writer-secret")
    assert by["denied"]["remark"].startswith("User:writer has no permission to access Topic:AclDenied from ")
    assert by["wrongSignature"]["remark"] == "check signature failed."
