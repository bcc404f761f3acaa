"""Bad input on every TLS listener of one broker (remoting with tls.server.mode=enforcing, a Kafka
SSL listener, the HA port with haTlsEnable, the admin API over HTTPS): TLS garbage, a truncated
ClientHello and plaintext are each refused (the connection closed, nothing answered) and logged
with the peer, while a bystander already connected over TLS and new TLS clients keep working."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.transport import connect
from ferrymq.gateway.admin.server import AdminServer
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.listeners import parse_listeners
from tests.remoting_helpers import send_v2
from tests.test_admin_replication import FixedRoutes
from tests.tls_certs import make_certs

TOPIC = "TlsBadInput"
TOKEN = "t0ken"


def client_hello() -> bytes:
    """A real TLS ClientHello, as the first flight of a client."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


HELLO = client_hello()
#: name -> bytes sent before the write side is shut
BAD = {
    "garbage": b"\x16\x03\x01\x00\x40" + bytes(range(64)) * 2,
    "truncated": HELLO[: len(HELLO) // 2],
    "plaintext": b"\x00\x00\x00\x20\x00\x00\x00\x10{}GET / HTTP/1.1\r\n\r\n",
}


async def refused(port: int, data: bytes) -> str:
    """Send ``data``, half-close, and return our address once the server has closed without an
    answer (an answer would be bytes back)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    local = writer.get_extra_info("sockname")
    writer.write(data)
    await writer.drain()
    sock = writer.get_extra_info("socket")
    sock.shutdown(socket.SHUT_WR)
    try:
        got = await asyncio.wait_for(reader.read(), 15)
    except ConnectionResetError:
        got = b""
    writer.close()
    # a TLS server may answer garbage with an alert record (0x15) before closing, never with data
    assert got == b"" or got[0] == 0x15, got[:16]
    return f"{local[0]}:{local[1]}"


def test_each_tls_listener_refuses_bad_input(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    certs = make_certs(tmp_path / "certs")
    conf: dict[str, Any] = {
        "listenPort": 0,
        "listenHost": "127.0.0.1",
        "storePathRootDir": tmp_path / "store",
        **certs.broker_conf("enforcing"),
        "haTlsEnable": True,
        "adminTlsEnable": True,
        "kafkaListeners": "SSL://127.0.0.1:0",
        "kafkaSslCertPath": certs.cert,
        "kafkaSslKeyPath": certs.key,
    }

    async def main() -> list[tuple[str, str]]:
        broker = Broker(BrokerConfig.build(conf))
        await broker.start()
        frontend = KafkaFrontend(
            broker,
            "127.0.0.1",
            0,
            "127.0.0.1",
            listeners=parse_listeners(conf["kafkaListeners"], "127.0.0.1"),
        )
        await frontend.start()
        admin = AdminServer(broker, FixedRoutes(None), "127.0.0.1", 0, token=TOKEN)  # type: ignore[arg-type]
        await admin.start()
        try:
            broker.topics.create_if_absent(TOPIC, 1)
            bystander = await connect("127.0.0.1", broker.port, ssl_context=certs.client())
            assert broker.ha_master is not None
            ports = {
                "remoting": broker.port,
                "kafka": frontend.bound_listeners()[0][2],
                "ha": broker.ha_master.port,
                "admin": admin.port,
            }
            peers = []
            for listener, port in ports.items():
                for kind, data in BAD.items():
                    peers.append((f"{listener}/{kind}", await refused(port, data)))
            resp = await bystander.invoke(send_v2(TOPIC, b"still here", 0), timeout=5)
            assert resp.code == ResponseCode.SUCCESS
            bystander.close()
            # new TLS clients are served on the Kafka and admin listeners too
            reader, writer = await asyncio.open_connection("127.0.0.1", ports["kafka"], ssl=certs.client())
            writer.write(b"\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00")  # ApiVersions v0
            await writer.drain()
            assert len(await reader.readexactly(4)) == 4
            writer.close()
            ca = ssl.create_default_context(cafile=certs.ca)
            async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{admin.port}", verify=ca) as h:
                got = await h.get("/api/topics", headers={"Authorization": f"Bearer {TOKEN}"})
                assert got.status_code == 200
            return peers
        finally:
            await admin.stop()
            await frontend.stop()
            await broker.stop()

    with caplog.at_level(logging.INFO, logger="ferrymq"):
        peers = asyncio.run(asyncio.wait_for(main(), 90))
    messages = [r.getMessage() for r in caplog.records]
    unlogged = [what for what, peer in peers if not any(peer in m for m in messages)]
    assert not unlogged, f"refused without a log line naming the peer: {unlogged}"
