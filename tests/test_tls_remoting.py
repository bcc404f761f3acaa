"""TLS on the remoting port (RocketMQ's tls.server.mode), with the Python client: permissive serves
TLS and plaintext on one port, enforcing closes plaintext and logs the peer, disabled refuses a TLS
hello, mutual TLS (require) refuses a client without a certificate. Also: a handler that raises
answers SYSTEM_ERROR without the exception's text."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from ferrymq.client import AsyncLitePullConsumer, AsyncProducer, Message, SendStatus
from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig, ConfigError
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.tls import ServerTls
from ferrymq.core.remoting.transport import RemotingError, connect, serve
from ferrymq.namesrv import NameServer
from tests.tls_certs import TlsCerts, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsCerts:
    return make_certs(tmp_path_factory.mktemp("tls"))


@asynccontextmanager
async def cluster(
    tmp_path: Path, certs: TlsCerts, mode: str, auth: str = "none"
) -> AsyncIterator[tuple[str, Broker]]:
    """A name server and a broker, both in ``mode``; yields the name server address."""
    values: dict[str, Any] = {
        "listenPort": 0,
        "listenHost": "127.0.0.1",
        "storePathRootDir": tmp_path / "store",
        "fastListenPort": -1,
        **certs.broker_conf(mode, auth),
    }
    values |= {"tls.enable": "true", "tls.client.trustCertPath": certs.ca}  # registers over TLS
    config = BrokerConfig.build(values)
    ns = NameServer("127.0.0.1", 0, tls=config.server_tls())
    await ns.start()
    config.namesrv_addr = f"127.0.0.1:{ns.port}"
    broker = Broker(config)
    await broker.start()
    try:
        yield f"127.0.0.1:{ns.port}", broker
    finally:
        await broker.stop()
        await ns.stop()


async def round_trip(ns: str, topic: str, ssl_context: Any) -> None:
    async with AsyncProducer(ns, group="pg-tls", ssl_context=ssl_context, send_timeout=5) as producer:
        result = await producer.send(Message(topic, b"over tls"))
        assert result.status is SendStatus.SEND_OK
        queues = await producer.fetch_publish_queues(topic)
    consumer = AsyncLitePullConsumer(ns, group="cg-tls", consume_from="FIRST_OFFSET", ssl_context=ssl_context)
    consumer.assign(queues)
    async with consumer:
        got = []
        while not got:
            batch = await consumer.poll(timeout=5)
            assert batch, "no message within 5 s"
            got += batch
    assert got[0].body == b"over tls"


def test_permissive_serves_tls_and_plaintext_on_one_port(tmp_path: Path, certs: TlsCerts) -> None:
    async def main() -> None:
        async with cluster(tmp_path, certs, "permissive") as (ns, broker):
            broker.topics.create_if_absent("TlsA", 1)
            broker.topics.create_if_absent("PlainA", 1)
            await round_trip(ns, "TlsA", certs.client())
            await round_trip(ns, "PlainA", None)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_enforcing_refuses_plaintext_and_logs_the_peer(
    tmp_path: Path, certs: TlsCerts, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with cluster(tmp_path, certs, "enforcing") as (ns, broker):
            broker.topics.create_if_absent("TlsB", 1)
            await round_trip(ns, "TlsB", certs.client())
            conn = await connect("127.0.0.1", broker.port)
            peer = conn.transport.get_extra_info("sockname")  # type: ignore[union-attr]
            with pytest.raises(RemotingError):
                await conn.invoke(RemotingCommand(code=RequestCode.GET_BROKER_CLUSTER_INFO), timeout=5)
            await asyncio.wait_for(conn.closed.wait(), 5)
            return f"{peer[0]}:{peer[1]}"

    with caplog.at_level(logging.WARNING, logger="ferrymq.remoting"):
        peer = asyncio.run(asyncio.wait_for(main(), 60))
    assert any(peer in r.getMessage() and "enforcing" in r.getMessage() for r in caplog.records)


def test_disabled_refuses_a_tls_client(tmp_path: Path, certs: TlsCerts) -> None:
    async def main() -> None:
        server = await serve(lambda cmd, conn: cmd.response(ResponseCode.SUCCESS), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(RemotingError):
                conn = await connect("127.0.0.1", port, ssl_context=certs.client(), timeout=5)
                await conn.invoke(RemotingCommand(code=RequestCode.GET_BROKER_CLUSTER_INFO), timeout=5)
        finally:
            server.close()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_mutual_tls_requires_a_client_certificate(tmp_path: Path, certs: TlsCerts) -> None:
    async def main() -> None:
        tls = BrokerConfig.build({**certs.broker_conf("enforcing", "require")}).server_tls()
        assert isinstance(tls, ServerTls)
        server = await serve(lambda cmd, conn: cmd.response(ResponseCode.SUCCESS), "127.0.0.1", 0, tls=tls)
        port = server.sockets[0].getsockname()[1]
        ping = RemotingCommand(code=RequestCode.GET_BROKER_CLUSTER_INFO)
        try:
            conn = await connect("127.0.0.1", port, ssl_context=certs.client(with_cert=True))
            assert (await conn.invoke(ping, timeout=5)).code == ResponseCode.SUCCESS
            conn.close()
            with pytest.raises(RemotingError):  # TLS 1.3: the refusal arrives after the handshake
                conn = await connect("127.0.0.1", port, ssl_context=certs.client())
                await conn.invoke(RemotingCommand(code=RequestCode.GET_BROKER_CLUSTER_INFO), timeout=5)
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_tls_mode_needs_certificate_files() -> None:
    with pytest.raises(ConfigError, match=r"tls\.server\.certPath"):
        BrokerConfig.build({"tls.server.mode": "enforcing"})


def test_a_failing_handler_answers_without_the_exception_text(caplog: pytest.LogCaptureFixture) -> None:
    def broken(cmd: RemotingCommand, conn: object) -> RemotingCommand:
        raise ValueError("secret /var/lib/ferrymq/key")

    async def failing(cmd: RemotingCommand, conn: object) -> RemotingCommand:
        raise KeyError("secret-in-async")

    async def main() -> list[str]:
        remarks = []
        for handler in (broken, failing):
            server = await serve(handler, "127.0.0.1", 0)
            conn = await connect("127.0.0.1", server.sockets[0].getsockname()[1])
            resp = await conn.invoke(RemotingCommand(code=RequestCode.GET_BROKER_CLUSTER_INFO), timeout=5)
            assert resp.code == ResponseCode.SYSTEM_ERROR
            remarks.append(resp.remark or "")
            conn.close()
            server.close()
        return remarks

    with caplog.at_level(logging.ERROR, logger="ferrymq.remoting"):
        remarks = asyncio.run(asyncio.wait_for(main(), 30))
    for remark in remarks:
        assert "secret" not in remark and "Error" not in remark, remark
    assert any("secret /var/lib" in (r.exc_text or "") for r in caplog.records)  # logged instead
