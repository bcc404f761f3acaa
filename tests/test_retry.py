"""Retries and dead letters on a real ``ferrymq serve``: CONSUMER_SEND_MSG_BACK moves a failed
message to %RETRY%<group> with a growing reconsume count, then to %DLQ%<group> after the group's
retryMaxTimes; sends straight to a retry topic follow the same rule; a pending retry survives a
broker crash; the group config (code 200) survives it too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from tests.test_consumer_support import (
    SMALL_LOG,
    broker_conn,
    now_ms,
    send,
    send_back,
    update_group,
    wait_messages,
)

LEVELS = "messageDelayLevel=1s 1s 1s 2s\n"


def test_send_back_retries_then_dead_letters(tmp_path: Path) -> None:
    with FerryServer(tmp_path, LEVELS) as server:

        async def run() -> None:
            conn = await broker_conn(server)
            assert (await update_group(conn, "g1", retryMaxTimes=2)).code == ResponseCode.SUCCESS
            assert (
                await send(conn, "RetryT", b"payload", {"KEYS": "k1", "UNIQ_KEY": "U1"})
            ).code == ResponseCode.SUCCESS
            [original] = await wait_messages(conn, "RetryT", 1)

            # first failure: into %RETRY%g1 after the delay of level 3 + reconsumeTimes = 3 (1 s)
            sent = now_ms()
            assert (await send_back(conn, original, "g1")).code == ResponseCode.SUCCESS
            [r1] = await wait_messages(conn, "%RETRY%g1", 1)
            assert r1.body == b"payload" and r1.reconsume_times == 1
            assert r1.store_timestamp >= sent + 1000
            assert r1.properties["RETRY_TOPIC"] == "RetryT"
            assert r1.properties["ORIGIN_MESSAGE_ID"] == original.offset_msg_id
            assert r1.properties["UNIQ_KEY"] == "U1" and r1.properties["KEYS"] == "k1"
            assert "DELAY" not in r1.properties

            # second failure with an explicit level beyond the highest: capped to level 4 (2 s)
            sent = now_ms()
            assert (await send_back(conn, r1, "g1", delay_level=7)).code == ResponseCode.SUCCESS
            [r2] = await wait_messages(conn, "%RETRY%g1", 1, offset=1)
            assert r2.reconsume_times == 2 and r2.store_timestamp >= sent + 2000
            assert r2.properties["ORIGIN_MESSAGE_ID"] == original.offset_msg_id

            # reconsumeTimes (2) reached retryMaxTimes (2): dead letter, at once
            assert (await send_back(conn, r2, "g1")).code == ResponseCode.SUCCESS
            [dead] = await wait_messages(conn, "%DLQ%g1", 1, timeout=2)
            assert dead.body == b"payload" and dead.reconsume_times == 3
            assert dead.properties["RETRY_TOPIC"] == "RetryT"

            # the header's maxReconsumeTimes wins over the group's; delayLevel -1 goes straight to DLQ
            assert (await send_back(conn, original, "g1", maxReconsumeTimes="0")).code == ResponseCode.SUCCESS
            assert (await send_back(conn, original, "g1", delay_level=-1)).code == ResponseCode.SUCCESS
            more = await wait_messages(conn, "%DLQ%g1", 2, offset=1, timeout=2)
            assert [m.reconsume_times for m in more] == [1, 1]

            # bad requests get errors and change nothing
            resp = await send_back(conn, original, "g1", offset="123456789")
            assert resp.code == ResponseCode.SYSTEM_ERROR and "look message by offset failed" in (
                resp.remark or ""
            )
            resp = await conn.invoke(
                RemotingCommand(code=RequestCode.CONSUMER_SEND_MSG_BACK, ext_fields={"group": "g1"})
            )
            assert resp.code == ResponseCode.SYSTEM_ERROR and "offset" in (resp.remark or "")
            assert not await wait_messages(conn, "%DLQ%g1", 1, offset=3, timeout=1)
            conn.close()

        asyncio.run(run())


def test_sends_to_a_retry_topic_follow_the_dead_letter_rule(tmp_path: Path) -> None:
    with FerryServer(tmp_path, LEVELS) as server:

        async def run() -> None:
            conn = await broker_conn(server)
            assert (await update_group(conn, "g2", retryMaxTimes=2)).code == ResponseCode.SUCCESS
            # the Java client's fallback: a send to %RETRY%g2 with reconsumeTimes and a DELAY level
            resp = await send(conn, "%RETRY%g2", b"again", {"DELAY": "1"}, j="1")
            assert resp.code == ResponseCode.SUCCESS
            resp = await send(conn, "%RETRY%g2", b"too-often", {"DELAY": "1"}, j="3")
            assert resp.code == ResponseCode.SUCCESS
            [retry] = await wait_messages(conn, "%RETRY%g2", 1)
            assert retry.body == b"again"
            [dead] = await wait_messages(conn, "%DLQ%g2", 1, timeout=2)
            assert dead.body == b"too-often" and "DELAY" not in dead.properties

            # a group holding orderly locks gives up at once (the orderly consumer's give-up path)
            body = b'{"consumerGroup":"g3","clientId":"c1","onlyThisBroker":false,"mqSet":[]}'
            body = body.replace(b"[]", b'[{"topic":"T","brokerName":"broker-a","queueId":0}]')
            assert (
                await conn.invoke(RemotingCommand(code=RequestCode.LOCK_BATCH_MQ, body=body))
            ).code == ResponseCode.SUCCESS
            assert (
                await send(conn, "%RETRY%g3", b"orderly", {"DELAY": "1"}, j="0")
            ).code == ResponseCode.SUCCESS
            [dead] = await wait_messages(conn, "%DLQ%g3", 1, timeout=2)
            assert dead.body == b"orderly"
            conn.close()

        asyncio.run(run())


def test_pending_retry_and_group_config_survive_a_crash(tmp_path: Path) -> None:
    server = FerryServer(tmp_path, "messageDelayLevel=1s 1s 3s\n" + SMALL_LOG).start()
    try:

        async def before() -> int:
            conn = await broker_conn(server)
            assert (await update_group(conn, "g4", retryMaxTimes=0)).code == ResponseCode.SUCCESS
            assert (await update_group(conn, "g5", retryMaxTimes=5)).code == ResponseCode.SUCCESS
            assert (await send(conn, "CrashRetry", b"m")).code == ResponseCode.SUCCESS
            [msg] = await wait_messages(conn, "CrashRetry", 1)
            sent = now_ms()
            assert (await send_back(conn, msg, "g5")).code == ResponseCode.SUCCESS  # level 3: due in 3 s
            conn.close()
            return sent

        sent = asyncio.run(before())
        server.kill()
        server.start()

        async def after() -> None:
            conn = await broker_conn(server)
            [retry] = await wait_messages(conn, "%RETRY%g5", 1)
            assert retry.body == b"m" and retry.reconsume_times == 1
            assert retry.store_timestamp >= sent + 3000
            # g4's retryMaxTimes=0 was persisted: its first failure is a dead letter
            assert (await send_back(conn, retry, "g4")).code == ResponseCode.SUCCESS
            [dead] = await wait_messages(conn, "%DLQ%g4", 1, timeout=2)
            assert dead.body == b"m"
            conn.close()

        asyncio.run(after())
    finally:
        server.stop()
