"""Bounded work per request, in-process (issue 10, items 5 and 8): a pull's count, bytes and scan
budget, parked long polls per connection, a registration loop that survives a failure, and JSON
headers whose integers do not fit the protocol's int32 fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ferrymq.client import _api
from ferrymq.client.message import MessageQueue
from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.frame import encode_frame_bytes
from ferrymq.core.remoting.message import decode_stored_messages
from ferrymq.core.remoting.transport import RemotingConnection, connect
from tests.remoting_helpers import pull, send_v2

TOPIC = "PullLimitTopic"


@contextlib.asynccontextmanager
async def broker(tmp_path: Path, **config: Any) -> AsyncIterator[tuple[Broker, RemotingConnection]]:
    """A started broker with no name server, and a client connection to it."""
    values = {"listen_port": 0, "listen_host": "127.0.0.1", "store_path_root_dir": tmp_path / "store"}
    b = Broker(BrokerConfig(**{**values, **config}))
    await b.start()
    try:
        conn = await connect("127.0.0.1", b.port)
        with contextlib.closing(conn):
            yield b, conn
    finally:
        await b.stop()


async def store(conn: RemotingConnection, bodies: list[bytes], tags: str | None = None) -> None:
    for body in bodies:
        props = {"TAGS": tags} if tags else None
        resp = await conn.invoke(send_v2(TOPIC, body, 0, props, 1))
        assert resp.code == ResponseCode.SUCCESS, resp.remark


def test_pull_count_and_bytes_are_capped_and_one_message_always_comes(tmp_path: Path) -> None:
    async def main() -> None:
        async with broker(
            tmp_path, max_transfer_count_on_message_in_memory=5, max_transfer_bytes_on_message_in_memory=3000
        ) as (_, conn):
            await store(conn, [b"s" * 100] * 10 + [b"L" * 10_000] + [b"s" * 100])
            resp = await conn.invoke(pull(TOPIC, 0, 0, max_nums=1000))
            assert len(decode_stored_messages(resp.body)) == 5  # the count cap, not 1000
            size = decode_stored_messages(resp.body)[0].store_size  # of one small message
            resp = await conn.invoke(pull(TOPIC, 0, 8, max_nums=1000))
            # 2 small ones fit in 3000 bytes, the large one does not: it waits for the next pull
            assert [len(m.body) for m in decode_stored_messages(resp.body)] == [100, 100]
            assert resp.ext_fields["nextBeginOffset"] == "10"
            resp = await conn.invoke(pull(TOPIC, 0, 10, max_nums=1000))
            # alone it exceeds the cap and still comes: a queue never stalls on a large message
            assert [len(m.body) for m in decode_stored_messages(resp.body)] == [10_000]
            assert resp.ext_fields["nextBeginOffset"] == "11"
            # the client's maxMsgBytes is honoured below the broker's cap
            small = pull(TOPIC, 0, 0, max_nums=1000)
            small.ext_fields["maxMsgBytes"] = str(2 * size + size // 2)
            resp = await conn.invoke(small)
            assert len(decode_stored_messages(resp.body)) == 2

    asyncio.run(asyncio.wait_for(main(), 30))


def test_huge_max_msg_nums_with_a_filter_scans_a_bounded_step(tmp_path: Path) -> None:
    async def main() -> None:
        async with broker(tmp_path, max_filter_message_count=100) as (b, conn):
            await store(conn, [b"x"] * 1000, tags="TagA")
            resp = await conn.invoke(pull(TOPIC, 0, 0, max_nums=2**31 - 1, expression="TagB"))
            assert resp.code == ResponseCode.PULL_RETRY_IMMEDIATELY
            assert resp.ext_fields["nextBeginOffset"] == "100"  # one budget of units, not the queue
            got = b.store.get_messages(TOPIC, 0, 0, 10**9, tag_codes=frozenset({1}))
            assert got.next_begin_offset == 100

    asyncio.run(asyncio.wait_for(main(), 60))


def test_parked_long_polls_per_connection_are_capped(tmp_path: Path) -> None:
    async def main() -> None:
        async with broker(tmp_path, max_suspended_pulls_per_connection=4) as (b, conn):
            await store(conn, [b"first"])
            polls = [
                asyncio.ensure_future(conn.invoke(pull(TOPIC, 0, 1, suspend_ms=20_000), 30)) for _ in range(6)
            ]
            pending = set(polls)
            while len(pending) > 4:  # the refusals come at once; the held ones wait for a message
                _, pending = await asyncio.wait(pending, timeout=5, return_when=asyncio.FIRST_COMPLETED)
            busy = [p for p in polls if p.done()]
            assert len(busy) == 2
            for p in busy:
                assert p.result().code == ResponseCode.SYSTEM_BUSY
                assert "flow control" in (p.result().remark or "")
            # another connection has its own allowance
            other = await connect("127.0.0.1", b.port)
            with contextlib.closing(other):
                theirs = asyncio.ensure_future(other.invoke(pull(TOPIC, 0, 1, suspend_ms=20_000), 30))
                await store(conn, [b"second"])
                held = await asyncio.gather(*[p for p in polls if p not in busy], theirs)
            assert all(r.code == ResponseCode.SUCCESS for r in held)
            # the parked ones were released: the connection may park again
            again = await conn.invoke(pull(TOPIC, 0, 2, suspend_ms=50), 5)
            assert again.code == ResponseCode.PULL_NOT_FOUND

    asyncio.run(asyncio.wait_for(main(), 30))


def test_client_pulls_always_send_a_size_limit_below_the_frame() -> None:
    sent: list[RemotingCommand] = []

    class Remote:
        async def invoke(self, addr: str, cmd: RemotingCommand, timeout: float) -> RemotingCommand:
            sent.append(cmd)
            return cmd.response(ResponseCode.PULL_NOT_FOUND, ext_fields={"nextBeginOffset": "0"})

    mq = MessageQueue("T", "broker-a", 0)
    kw = dict(group="g", mq=mq, offset=0, max_nums=32, sys_flag=0, subscription="*", sub_version=0)
    asyncio.run(_api.pull_message(Remote(), "b:1", suspend_timeout_ms=0, timeout=1, **kw))  # type: ignore[arg-type]
    assert 0 < int(sent[0].ext_fields["maxMsgBytes"]) < 16 * 1024 * 1024


def test_registration_loop_survives_an_unexpected_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with broker(tmp_path, register_name_server_period=100) as (b, _):
            registrar = b.registrar
            assert registrar is not None
            calls = 0
            second = asyncio.Event()
            real = registrar.register_all

            async def flaky() -> None:
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise RuntimeError("injected registration failure")
                second.set()
                await real()

            registrar.register_all = flaky  # type: ignore[method-assign]
            registrar.kick()
            await asyncio.wait_for(second.wait(), 5)

    with caplog.at_level(logging.ERROR, logger="ferrymq.broker.register"):
        asyncio.run(asyncio.wait_for(main(), 30))
    assert any(r.exc_info and "injected" in str(r.exc_info[1]) for r in caplog.records)


# ---- JSON headers with integers beyond the protocol's int32 fields --------------------------------


def _json_frame(header: bytes) -> bytes:
    return struct.pack(">ii", 4 + len(header), len(header)) + header


def test_big_integer_headers_on_the_wire(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An opaque no reply can carry closes the connection, logged with the peer, after the good
    frame before it is answered; a huge number in an extField gets an error reply."""

    async def main() -> None:
        async with broker(tmp_path) as (b, conn):
            await store(conn, [b"kept"])
            loop = asyncio.get_running_loop()
            sock = socket.create_connection(("127.0.0.1", b.port))
            sock.setblocking(False)
            with sock:
                good = encode_frame_bytes(RemotingCommand(code=9999, opaque=11))
                bad = _json_frame(b'{"code":9999,"opaque":1180591620717411303424,"flag":0,"version":1}')
                await loop.sock_sendall(sock, good + bad)
                data = b""
                while chunk := await asyncio.wait_for(loop.sock_recv(sock, 65536), 5):
                    data += chunk
                assert b'"opaque":11' in data  # answered, then closed
                peer = "{}:{}".format(*sock.getsockname())
            assert any(peer in r.getMessage() and "closing" in r.getMessage() for r in caplog.records)
            ext: dict[str, object] = {**pull(TOPIC, 0, 0).ext_fields, "queueId": 2**70}
            raw = json.dumps({"code": 11, "opaque": 5, "flag": 0, "version": 1, "extFields": ext}).encode()
            sock = socket.create_connection(("127.0.0.1", b.port))
            sock.setblocking(False)
            with sock:
                await loop.sock_sendall(sock, _json_frame(raw))
                reply = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
            assert b'"code":1' in reply and b"queueId" in reply  # SYSTEM_ERROR naming the field
            # the server is fine: the stored message reads back
            resp = await conn.invoke(pull(TOPIC, 0, 0))
            assert [m.body for m in decode_stored_messages(resp.body)] == [b"kept"]

    with caplog.at_level(logging.WARNING, logger="ferrymq.remoting"):
        asyncio.run(asyncio.wait_for(main(), 30))
