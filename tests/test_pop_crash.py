"""POP state survives a kill -9 (core/broker/pop/journal.py): after a crash and a restart nothing
acked before the crash is redelivered, and every message popped but not acked comes back (with
reconsume times 1) once its invisible time has passed.

Before: nothing was written, so every pop and ack was forgotten at a restart.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.message import decode_stored_messages
from tests.remoting_helpers import send_v2
from tests.test_consumer_support import broker_conn
from tests.test_pop_remoting import TOPIC, ack_cmd, pop_cmd, receipts

N = 40


def test_kill_9_loses_no_ack_and_no_unacked_message(tmp_path: Path) -> None:
    server = FerryServer(tmp_path).start()
    try:

        async def before() -> None:
            conn = await broker_conn(server)
            for i in range(N):
                resp = await conn.invoke(send_v2(TOPIC, b"m%d" % i, 0, {}, 1))
                assert resp.code == ResponseCode.SUCCESS, resp.remark
            got = []
            while len(got) < N:
                resp = await conn.invoke(pop_cmd(0, n=7, invisible=1500))
                assert resp.code == ResponseCode.SUCCESS, resp.remark
                got.extend(receipts(resp))
            for r, _, _ in got:
                if r.offset % 2 == 0:
                    assert (await conn.invoke(ack_cmd(r))).code == ResponseCode.SUCCESS
            conn.close()

        asyncio.run(before())
        server.kill()
        server.restart()

        async def after() -> None:
            conn = await broker_conn(server)
            back: dict[int, int] = {}
            async with asyncio.timeout(30):
                while len(back) < N // 2:
                    resp = await conn.invoke(pop_cmd(0, invisible=60_000, poll=5000), timeout=15)
                    if resp.code == ResponseCode.SUCCESS:
                        for m in decode_stored_messages(resp.body):
                            assert m.queue_offset not in back, "redelivered twice"
                            back[m.queue_offset] = m.reconsume_times
            assert sorted(back) == list(range(1, N, 2))  # the odd ones, none acked before
            assert set(back.values()) == {1}
            empty = await conn.invoke(pop_cmd(0))
            assert empty.code == ResponseCode.PULL_NOT_FOUND
            conn.close()

        asyncio.run(after())
    finally:
        server.stop()
