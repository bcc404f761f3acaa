"""RocketMQ transactions: CHECK_IMMUNITY_TIME_IN_SECONDS, ILLEGAL_OPERATION (604) and half messages
older than fileReservedTime, as ``EndTransactionProcessor`` and ``TransactionalMessageServiceImpl``
treat them (issue 11), on an in-process broker over raw remoting requests.

Before: the property was ignored (a producer's late END committed; the first check came after
transactionTimeOut and an immune half blocked the queue behind it) and a half message of any age
was checked.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import decode_stored_message
from ferrymq.core.remoting.transport import RemotingConnection
from tests.remoting_helpers import pull_all
from tests.test_transactions import (
    COMMIT,
    ROLLBACK,
    TOPIC,
    check_answer,
    end_request,
    half_send,
    open_conn,
    producer_heartbeat,
    settle,
    txn_broker,
)

IMMUNITY = "CHECK_IMMUNITY_TIME_IN_SECONDS"


def born_ago(cmd: RemotingCommand, ms: int) -> RemotingCommand:
    cmd.ext_fields["g"] = str(int(time.time() * 1000) - ms)  # bornTimestamp
    return cmd


def test_an_end_after_the_immunity_time_is_illegal_unless_it_answers_a_check(tmp_path: Path) -> None:
    async def run() -> None:
        async with txn_broker(tmp_path, transaction_check_interval=3_600_000) as broker:
            conn = await open_conn(broker)
            late = await conn.invoke(born_ago(half_send(b"late", "I1", **{IMMUNITY: "10"}), 60_000))
            fresh = await conn.invoke(born_ago(half_send(b"fresh", "I2", **{IMMUNITY: "10"}), 1_000))
            resp = await conn.invoke(end_request(late, "I1", COMMIT))
            assert resp.code == ResponseCode.ILLEGAL_OPERATION, (resp.code, resp.remark)
            resp = await conn.invoke(end_request(late, "I1", ROLLBACK))
            assert resp.code == ResponseCode.ILLEGAL_OPERATION, (resp.code, resp.remark)
            # inside the immunity time (10 s, above transactionTimeOut) the producer decides
            assert (await conn.invoke(end_request(fresh, "I2", COMMIT))).code == ResponseCode.SUCCESS
            # the answer to a check is always taken
            answer = end_request(late, "I1", COMMIT, fromTransactionCheck="true")
            assert (await conn.invoke(answer)).code == ResponseCode.SUCCESS
            got = await pull_all(conn, TOPIC, range(2))
            assert sorted(m.body for m in got) == [b"fresh", b"late"]
            conn.close()

    asyncio.run(run())


def test_the_immunity_time_delays_the_first_check_without_blocking_the_queue(tmp_path: Path) -> None:
    """An immune half (1 h) ahead of an ordinary one: checks come for the ordinary one at every
    pass, never for the immune one, and the producer's own decision on the immune one (inside the
    immunity time) is honoured once."""

    async def run() -> None:
        config = {"transaction_time_out": 0, "transaction_check_interval": 20}
        async with txn_broker(tmp_path, **config) as broker:
            checks: asyncio.Queue[RemotingCommand] = asyncio.Queue()

            def handle(cmd: RemotingCommand, _conn: RemotingConnection) -> None:
                if cmd.code == RequestCode.CHECK_TRANSACTION_STATE:
                    checks.put_nowait(cmd)

            conn = await open_conn(broker, handle)
            assert (await conn.invoke(producer_heartbeat("p"))).code == ResponseCode.SUCCESS
            immune = await conn.invoke(half_send(b"immune", "J1", **{IMMUNITY: "3600"}))
            await conn.invoke(half_send(b"ordinary", "J2"))
            for _ in range(3):
                check = await asyncio.wait_for(checks.get(), 5)
                assert check.ext_fields["msgId"] == "J2"
            conn.invoke_oneway(end_request(immune, "J1", ROLLBACK))
            await settle(broker)
            conn.invoke_oneway(check_answer(check, COMMIT))
            await settle(broker)
            passes = broker.transactions.passes
            while broker.transactions.passes < passes + 3:  # three whole passes after the decisions
                await asyncio.sleep(0.02)
            while not checks.empty():
                assert checks.get_nowait().ext_fields["msgId"] == "J2"  # sent before the answer
            got = await pull_all(conn, TOPIC, range(2))
            assert [m.body for m in got] == [b"ordinary"]
            # the immune half's copies carry its first queue offset, and stop once it is decided
            assert not broker.transactions.state.immune
            conn.close()

    asyncio.run(run())


def test_a_half_older_than_file_reserved_time_is_moved_without_a_check(tmp_path: Path) -> None:
    async def run() -> None:
        config: dict[str, Any] = {
            "transaction_time_out": 0,
            "transaction_check_interval": 20,
            "file_reserved_time": 1,
        }
        async with txn_broker(tmp_path, **config) as broker:
            checks: asyncio.Queue[RemotingCommand] = asyncio.Queue()
            conn = await open_conn(broker, lambda cmd, c: checks.put_nowait(cmd))
            await conn.invoke(producer_heartbeat("p"))
            await conn.invoke(born_ago(half_send(b"ancient", "K1"), 2 * 3_600_000))
            await conn.invoke(half_send(b"recent", "K2"))
            check = await asyncio.wait_for(checks.get(), 5)
            assert decode_stored_message(check.body).body == b"recent"
            moved: list[Any] = []
            while not moved:
                moved = await pull_all(conn, "TRANS_CHECK_MAX_TIME_TOPIC", range(1))
                await asyncio.sleep(0.02)
            assert [m.body for m in moved] == [b"ancient"]
            while not checks.empty():
                assert decode_stored_message(checks.get_nowait().body).body == b"recent"
            conn.close()

    asyncio.run(run())
