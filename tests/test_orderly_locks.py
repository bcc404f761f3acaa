"""LOCK_BATCH_MQ / UNLOCK_BATCH_MQ on a real ``ferrymq serve``: one holder per queue, renewals,
release, expiry after rebalanceLockMaxLiveTime, and garbage bodies refused without harm."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import RemotingConnection
from tests.test_consumer_support import broker_conn


def _mqs(*ids: int) -> list[dict[str, object]]:
    return [{"topic": "OrderT", "brokerName": "broker-a", "queueId": i} for i in ids]


async def _lock(
    conn: RemotingConnection, client: str, *ids: int, code: int = RequestCode.LOCK_BATCH_MQ
) -> set[int]:
    body = {"consumerGroup": "og", "clientId": client, "onlyThisBroker": False, "mqSet": _mqs(*ids)}
    resp = await conn.invoke(RemotingCommand(code=code, body=json.dumps(body).encode()))
    assert resp.code == ResponseCode.SUCCESS, resp.remark
    if code != RequestCode.LOCK_BATCH_MQ:
        return set()
    return {mq["queueId"] for mq in json.loads(resp.body)["lockOKMQSet"]}


def test_queue_locks_have_one_holder_and_expire(tmp_path: Path) -> None:
    with FerryServer(tmp_path, "rebalanceLockMaxLiveTime=800\n") as server:

        async def run() -> None:
            a = await broker_conn(server)
            b = await broker_conn(server)
            assert await _lock(a, "client-a", 0, 1, 2) == {0, 1, 2}
            assert await _lock(b, "client-b", 1, 2, 3) == {3}  # 1 and 2 are a's
            assert await _lock(a, "client-a", 0, 1, 2) == {0, 1, 2}  # renewal
            await _lock(a, "client-a", 1, code=RequestCode.UNLOCK_BATCH_MQ)  # a releases queue 1
            await _lock(b, "client-b", 2, code=RequestCode.UNLOCK_BATCH_MQ)  # not b's to release: ignored
            assert await _lock(b, "client-b", 1, 2) == {1}

            # garbage is refused with an error; the connection and the locks stay
            bad = await b.invoke(RemotingCommand(code=RequestCode.LOCK_BATCH_MQ, body=b"{not json"))
            assert bad.code == ResponseCode.SYSTEM_ERROR
            bad = await b.invoke(
                RemotingCommand(code=RequestCode.LOCK_BATCH_MQ, body=b'{"consumerGroup":"og"}')
            )
            assert bad.code == ResponseCode.SYSTEM_ERROR
            assert await _lock(b, "client-b", 1, 3) == {1, 3}

            # a's locks expire when not renewed; b takes them over
            start = time.monotonic()
            while await _lock(b, "client-b", 0, 2) != {0, 2}:
                assert time.monotonic() - start < 5, "locks did not expire"
                await asyncio.sleep(0.1)
            assert time.monotonic() - start > 0.5  # not before rebalanceLockMaxLiveTime
            assert await _lock(a, "client-a", 0) == set()
            a.close()
            b.close()

        asyncio.run(run())
