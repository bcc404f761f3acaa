"""RocketMQ ACL with the unmodified Java client (rocketmq-client 5.3.3, whose AclClientRPCHook signs
every request): a signed producer sends and a signed lite-pull consumer reads, a send to a topic the
account may not write is refused NO_PERMISSION naming the topic, a wrong secret is refused
NO_PERMISSION. One JVM (compat-tests/java AclClients) runs the four scenarios."""

from __future__ import annotations

from collections.abc import Iterator

import java_support as js
import pytest

from ferrymq.cli.testing import FerryServer
from tests.acl_support import acl_server

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerryServer]:
    with acl_server(tmp_path_factory.mktemp("javaacl")) as s:
        yield s


def test_java_acl_client_allowed_denied_and_wrong_signature(server: FerryServer) -> None:
    by = js.run_acl_clients(server.namesrv_addr, "writer", "writer-secret")
    assert by["denied"]["remark"] == "No permission for topic:AclDenied"
    assert by["wrongSignature"]["remark"] == "Check signature failed for accessKey=writer"
