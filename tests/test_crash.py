"""kill -9 the broker mid-stream; every acknowledged message must come back exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.message import PROPERTY_UNIQ_KEY, MessageExt
from ferrymq.core.remoting.transport import RemotingError, connect
from tests.remoting_helpers import pull_all, send_v2

QUEUES = 4


async def _send_until_killed(server: FerryServer, topic: str, senders: int, kill_after: int) -> set[str]:
    """Concurrent senders; the server is SIGKILLed once ``kill_after`` sends were acknowledged."""
    host, port = server.broker_addr.split(":")
    acked: set[str] = set()
    killed = asyncio.Event()

    async def sender(n: int) -> None:
        conn = await connect(host, int(port))
        i = 0
        while not killed.is_set():
            key = f"s{n}-m{i}"
            i += 1
            try:
                resp = await conn.invoke(
                    send_v2(topic, f"body-{key}".encode() * 8, i % QUEUES, {PROPERTY_UNIQ_KEY: key}, QUEUES),
                    timeout=10,
                )
            except RemotingError:
                return  # the broker is gone: this send was never acknowledged
            if resp.code == ResponseCode.SUCCESS:
                acked.add(key)
                if len(acked) >= kill_after and not killed.is_set():
                    killed.set()
                    server.kill()

    await asyncio.gather(*(sender(n) for n in range(senders)))
    return acked


@pytest.mark.parametrize("flush", ["SYNC_FLUSH", "ASYNC_FLUSH"])
def test_kill9_mid_stream_loses_and_doubles_nothing(tmp_path: Path, flush: str) -> None:
    # small segments so the stream crosses segment boundaries before the crash
    conf = f"flushDiskType={flush}\nmappedFileSizeCommitLog=262144\nflushIntervalCommitLog=200\n"
    server = FerryServer(tmp_path / "srv", conf)
    server.start()
    try:
        acked = asyncio.run(_send_until_killed(server, "CrashTopic", senders=8, kill_after=3000))
        assert len(acked) >= 3000
        server.start()  # same ports, same data dir
        log = server.log_tail(200)

        async def read() -> list[MessageExt]:
            host, port = server.broker_addr.split(":")
            conn = await connect(host, int(port))
            with contextlib.closing(conn):
                return await pull_all(conn, "CrashTopic", range(QUEUES))

        messages = asyncio.run(read())
        keys = [m.properties[PROPERTY_UNIQ_KEY] for m in messages]
        assert len(keys) == len(set(keys)), "a message appears twice after recovery"
        missing = acked - set(keys)
        assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:5]}"
        assert "recovering" in log

        # the store keeps working after recovery: new sends get the next queue offsets
        async def send_more() -> int:
            host, port = server.broker_addr.split(":")
            conn = await connect(host, int(port))
            with contextlib.closing(conn):
                resp = await conn.invoke(
                    send_v2("CrashTopic", b"after", 0, {PROPERTY_UNIQ_KEY: "after"}, QUEUES)
                )
                assert resp.code == ResponseCode.SUCCESS
                return int(resp.ext_fields["queueOffset"])

        in_queue0 = [m.queue_offset for m in messages if m.queue_id == 0]
        assert in_queue0 == list(range(len(in_queue0))), "queue offsets must stay dense after recovery"
        assert asyncio.run(send_more()) == len(in_queue0)
    finally:
        server.stop()
