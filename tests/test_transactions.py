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
