"""RocketMQ ACL end to end with the Python client: a ``ferrymq serve`` with aclEnable=true (its
broker signing its own registrations, its name server checking them); a client signing as an
account sends and reads, an unsigned client and a wrong secret are refused NO_PERMISSION."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.client import BrokerError, LitePullConsumer, Message, Producer
from ferrymq.core.remoting.codes import ResponseCode
from tests.acl_support import acl_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerryServer]:
    with acl_server(tmp_path_factory.mktemp("rmqacl")) as s:
        yield s


def test_signed_python_client_sends_and_reads(server: FerryServer) -> None:
    with Producer(server.namesrv_addr, group="acl-py", access_key="writer", secret_key="writer-secret") as p:
        assert p.send(Message("AclT", b"py-signed")).ok
        with pytest.raises(BrokerError) as denied:
            p.send(Message("AclDenied", b"no"))
        assert denied.value.code == ResponseCode.NO_PERMISSION
        assert "topic:AclDenied" in str(denied.value.remark)
    consumer = LitePullConsumer(
        server.namesrv_addr,
        group="acl-py-reader",
        consume_from="FIRST_OFFSET",
        access_key="writer",
        secret_key="writer-secret",
    )
    consumer.subscribe("AclT")
    consumer.start()
    try:
        got: list[bytes] = []
        for _ in range(30):
            got += [m.body for m in consumer.poll(timeout=1.0)]
            if b"py-signed" in got:
                break
        assert b"py-signed" in got
    finally:
        consumer.shutdown()


@pytest.mark.parametrize("secret", [None, "wrong"])
def test_unsigned_and_wrongly_signed_clients_are_refused(server: FerryServer, secret: str | None) -> None:
    creds = {} if secret is None else {"access_key": "writer", "secret_key": secret}
    producer = Producer(server.namesrv_addr, group="acl-py-bad", retry_times=0, **creds)
    with producer as p, pytest.raises(BrokerError) as refused:
        p.send(Message("AclT", b"x"))
    assert refused.value.code == ResponseCode.NO_PERMISSION
