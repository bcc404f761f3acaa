"""RocketMQ transactional messages on an in-process broker, over raw remoting requests: half
messages hidden until END_TRANSACTION commits them, rollback, validation, the check service
(CHECK_TRANSACTION_STATE to a live producer of the group), op records across a restart."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import (
    decode_offset_msg_id,
    decode_stored_message,
)
from ferrymq.core.remoting.transport import RemotingConnection, connect
from tests.remoting_helpers import pull_all, send_v2

TOPIC = "TxnT"
GROUP = "txn-group"
HALF = "RMQ_SYS_TRANS_HALF_TOPIC"
PREPARED, COMMIT, ROLLBACK = 0x4, 0x8, 0xC


@asynccontextmanager
async def txn_broker(tmp_path: Path, **config: Any) -> AsyncIterator[Broker]:
    values = {"listen_port": 0, "listen_host": "127.0.0.1", "store_path_root_dir": tmp_path / "store"}
    broker = Broker(BrokerConfig(**{**values, **config}))
    await broker.start()
    try:
        broker.topics.create_if_absent(TOPIC, 2)
        yield broker
    finally:
        await broker.stop()


async def open_conn(broker: Broker, handler: Any = None) -> RemotingConnection:
    return await connect("127.0.0.1", broker.port, handler)


def half_send(body: bytes, uniq: str, queue_id: int = 1, group: str = GROUP, **props: str) -> RemotingCommand:
    cmd = send_v2(TOPIC, body, queue_id, {"TRAN_MSG": "true", "PGROUP": group, "UNIQ_KEY": uniq, **props})
    cmd.ext_fields["a"] = group
    cmd.ext_fields["f"] = str(PREPARED)
    return cmd


def end_request(resp: RemotingCommand, uniq: str, decision: int, **over: str) -> RemotingCommand:
    """END_TRANSACTION as DefaultMQProducerImpl.endTransaction builds it from the SEND response."""
    _, _, phys = decode_offset_msg_id(resp.ext_fields["msgId"])
    ext = {
        "producerGroup": GROUP,
        "tranStateTableOffset": resp.ext_fields["queueOffset"],
        "commitLogOffset": str(phys),
        "commitOrRollback": str(decision),
        "fromTransactionCheck": "false",
        "msgId": uniq,
        "transactionId": resp.ext_fields.get("transactionId", uniq),
        "topic": TOPIC,
        "bname": "broker-a",
        **over,
    }
    return RemotingCommand(code=RequestCode.END_TRANSACTION, ext_fields=ext)


async def settle(broker: Broker) -> None:
    """Let the oneway END reach the broker: a request/response round trip after it."""
    conn = await open_conn(broker)
    await conn.invoke(RemotingCommand(code=RequestCode.GET_BROKER_RUNTIME_INFO))
    conn.close()


def test_half_message_hidden_until_commit_and_rollback_never_appears(tmp_path: Path) -> None:
    async def run() -> None:
        async with txn_broker(tmp_path) as broker:
            conn = await open_conn(broker)
            r1 = await conn.invoke(half_send(b"commit-me", "U1"))
            r2 = await conn.invoke(half_send(b"roll-me-back", "U2"))
            assert r1.code == r2.code == ResponseCode.SUCCESS
            assert r1.ext_fields["transactionId"] == "U1" and r1.ext_fields["queueId"] == "1"
            # the offset message id finds the half record in the hidden queue
            _, _, phys = decode_offset_msg_id(r1.ext_fields["msgId"])
            half = decode_stored_message(broker.store.look_message(phys) or b"")
            assert half.topic == HALF and half.queue_id == 0
            assert half.queue_offset == int(r1.ext_fields["queueOffset"])
            assert half.properties["REAL_TOPIC"] == TOPIC and half.properties["REAL_QID"] == "1"
            assert half.properties["__transactionId__"] == "U1"
            assert half.sys_flag & 0xC == 0
            assert await pull_all(conn, TOPIC, range(2)) == []  # invisible before a decision

            conn.invoke_oneway(end_request(r1, "U1", COMMIT))
            conn.invoke_oneway(end_request(r2, "U2", ROLLBACK))
            conn.invoke_oneway(end_request(r1, "U1", COMMIT))  # a repeated decision changes nothing
            await settle(broker)
            got = await pull_all(conn, TOPIC, range(2))
            assert [m.body for m in got] == [b"commit-me"]
            m = got[0]
            assert m.queue_id == 1 and m.sys_flag & 0xC == COMMIT
            assert "REAL_TOPIC" not in m.properties and "TRAN_MSG" not in m.properties
            assert m.properties["PGROUP"] == GROUP and m.msg_id == "U1"
            raw = broker.store.look_message(m.commit_log_offset) or b""
            (prepared_offset,) = struct.unpack_from(">q", raw, 76)  # after RECONSUMETIMES
            assert prepared_offset == phys
            conn.close()

    asyncio.run(run())


def check_answer(check: RemotingCommand, decision: int, msg_id: str | None = None) -> RemotingCommand:
    """The producer's END_TRANSACTION answering a CHECK_TRANSACTION_STATE (fromTransactionCheck)."""
    ext = check.ext_fields
    return RemotingCommand(
        code=RequestCode.END_TRANSACTION,
        ext_fields={
            "producerGroup": GROUP,
            "tranStateTableOffset": ext["tranStateTableOffset"],
            "commitLogOffset": ext["commitLogOffset"],
            "commitOrRollback": str(decision),
            "fromTransactionCheck": "true",
            "msgId": msg_id or ext["msgId"],
            "transactionId": ext["transactionId"],
            "topic": ext["topic"],
        },
    )


def producer_heartbeat(client_id: str, group: str = GROUP) -> RemotingCommand:
    body = {"clientID": client_id, "producerDataSet": [{"groupName": group}], "consumerDataSet": []}
    return RemotingCommand(code=RequestCode.HEART_BEAT, body=orjson.dumps(body))


def test_end_transaction_validation_and_system_topics(tmp_path: Path) -> None:
    async def run() -> None:
        async with txn_broker(tmp_path) as broker:
            conn = await open_conn(broker)
            r = await conn.invoke(half_send(b"x", "V1"))
            for over, remark in [
                ({"producerGroup": "other"}, "producer group"),
                ({"tranStateTableOffset": "7"}, "state table offset"),
                ({"commitLogOffset": "1"}, "Find prepared"),
                ({"commitOrRollback": "5"}, "not 0, 8 or 12"),
                ({"commitLogOffset": "abc"}, "not a number"),
            ]:
                resp = await conn.invoke(end_request(r, "V1", COMMIT, **over))  # asks for an answer
                assert resp.code == ResponseCode.SYSTEM_ERROR and remark in (resp.remark or ""), resp.remark
            assert (await conn.invoke(end_request(r, "V1", 0))).code == ResponseCode.SUCCESS  # UNKNOW: wait
            assert await pull_all(conn, TOPIC, range(2)) == []
            for topic in (HALF, "RMQ_SYS_TRANS_OP_HALF_TOPIC", "TRANS_CHECK_MAX_TIME_TOPIC"):
                resp = await conn.invoke(send_v2(topic, b"sneak", 0))
                assert resp.code == ResponseCode.NO_PERMISSION
            batch = half_send(b"", "B1")
            batch.code = RequestCode.SEND_BATCH_MESSAGE
            assert (await conn.invoke(batch)).code == ResponseCode.MESSAGE_ILLEGAL
            conn.close()

    asyncio.run(run())


def test_reject_transaction_message(tmp_path: Path) -> None:
    async def run() -> None:
        async with txn_broker(tmp_path, reject_transaction_message=True) as broker:
            conn = await open_conn(broker)
            assert (await conn.invoke(half_send(b"x", "R1"))).code == ResponseCode.NO_PERMISSION
            conn.close()

    asyncio.run(run())


def test_check_asks_a_live_producer_and_its_answer_commits(tmp_path: Path) -> None:
    """An undecided half message past transactionTimeOut: CHECK_TRANSACTION_STATE (oneway, v1 body
    with the real topic) goes to a producer of the group, round-robin over the live ones; its
    END (fromTransactionCheck) about the copy commits it once."""

    async def run() -> None:
        async with txn_broker(tmp_path, transaction_time_out=0, transaction_check_interval=50) as broker:
            checks: asyncio.Queue[tuple[str, RemotingCommand]] = asyncio.Queue()

            def on_request(name: str) -> Any:
                def handle(cmd: RemotingCommand, conn: RemotingConnection) -> None:
                    if cmd.code == RequestCode.CHECK_TRANSACTION_STATE:
                        assert cmd.is_oneway
                        checks.put_nowait((name, cmd))

                return handle

            dead = await open_conn(broker, on_request("dead"))
            assert (await dead.invoke(producer_heartbeat("dead"))).code == ResponseCode.SUCCESS
            dead.close()  # a producer that died before deciding
            p1 = await open_conn(broker, on_request("p1"))
            assert (await p1.invoke(producer_heartbeat("p1"))).code == ResponseCode.SUCCESS
            r = await p1.invoke(half_send(b"decide-later", "C1", queue_id=0))
            _, _, first_phys = decode_offset_msg_id(r.ext_fields["msgId"])
            name, check = await asyncio.wait_for(checks.get(), 5)
            assert name == "p1"
            ext = check.ext_fields
            assert ext["topic"] == HALF and ext["msgId"] == "C1" and ext["transactionId"] == "C1"
            assert int(ext["commitLogOffset"]) != first_phys  # about a fresh copy
            msg = decode_stored_message(check.body)
            assert msg.topic == TOPIC and msg.queue_id == 0 and msg.body == b"decide-later"
            assert msg.properties["PGROUP"] == GROUP and msg.properties["TRANSACTION_CHECK_TIMES"] == "1"
            p1.invoke_oneway(check_answer(check, COMMIT, msg.msg_id))
            # the original's late END commits nothing more
            p1.invoke_oneway(end_request(r, "C1", COMMIT))
            await settle(broker)
            got = await pull_all(p1, TOPIC, range(2))
            assert [m.body for m in got] == [b"decide-later"]
            # no further check once decided
            broker.transactions.wake()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(checks.get(), 0.5)
            p1.close()

    asyncio.run(run())


def test_unanswered_checks_end_in_the_check_max_topic(tmp_path: Path) -> None:
    async def run() -> None:
        config = {"transaction_time_out": 0, "transaction_check_interval": 20, "transaction_check_max": 2}
        async with txn_broker(tmp_path, **config) as broker:
            checks: asyncio.Queue[RemotingCommand] = asyncio.Queue()
            conn = await open_conn(broker, lambda cmd, c: checks.put_nowait(cmd))
            await conn.invoke(producer_heartbeat("p"))
            await conn.invoke(half_send(b"nobody-decides", "M1"))
            for _ in range(2):
                await asyncio.wait_for(checks.get(), 5)
            moved: list[Any] = []
            while not moved:
                moved = await pull_all(conn, "TRANS_CHECK_MAX_TIME_TOPIC", range(1))
                await asyncio.sleep(0.02)
            assert [m.body for m in moved] == [b"nobody-decides"]
            assert checks.empty()
            assert await pull_all(conn, TOPIC, range(2)) == []
            conn.close()

    asyncio.run(run())


def test_decisions_survive_a_restart_and_a_lost_op_batch(tmp_path: Path) -> None:
    """A restart reads decisions back from op messages; a commit whose op message was never
    written (a kill -9 inside the batch interval) is found by its UNIQ_KEY and neither checked
    nor stored again."""

    async def run() -> None:
        config = {"transaction_op_batch_interval": 3_600_000, "transaction_time_out": 0}
        async with txn_broker(tmp_path, **config) as broker:
            conn = await open_conn(broker)
            r1 = await conn.invoke(half_send(b"kept", "D1"))
            r2 = await conn.invoke(half_send(b"dropped", "D2"))
            r3 = await conn.invoke(half_send(b"op-lost", "D3"))
            conn.invoke_oneway(end_request(r1, "D1", COMMIT))
            conn.invoke_oneway(end_request(r2, "D2", ROLLBACK))
            await settle(broker)
            broker.transactions.flush_ops(0)
            conn.invoke_oneway(end_request(r3, "D3", COMMIT))
            await settle(broker)
            broker.transactions.state.take_buffer()  # as if killed before the op batch was written
            broker.transactions._running = False  # stop() must not write it either
            conn.close()
        async with txn_broker(tmp_path, **config, transaction_check_interval=20) as broker:
            state = broker.transactions.state
            checks: list[RemotingCommand] = []
            conn = await open_conn(broker, lambda cmd, c: checks.append(cmd))
            await conn.invoke(producer_heartbeat("p"))
            while state.cursor < 3:
                broker.transactions.wake()
                await asyncio.sleep(0.02)
            assert checks == []
            got = await pull_all(conn, TOPIC, range(2))
            assert sorted(m.body for m in got) == [b"kept", b"op-lost"]
            conn.close()

    asyncio.run(run())
