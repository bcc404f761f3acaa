"""The Python TransactionProducer (blocking and asyncio) against a real ``ferrymq serve``: commit,
rollback, UNKNOW settled by the broker's check, a check answered by another producer of the group
after the first died undecided, and a DELAY level that starts counting at the commit."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from ferrymq.cli.testing import FerryServer
from ferrymq.client import (
    AsyncTransactionProducer,
    LitePullConsumer,
    LocalTransactionState,
    Message,
    MessageExt,
    TransactionProducer,
)

FERRYMQ_CONF = "transactionTimeOut=500\ntransactionCheckInterval=200\nmessageDelayLevel=1s 2s\n"
COMMIT, ROLLBACK, UNKNOW = (
    LocalTransactionState.COMMIT_MESSAGE,
    LocalTransactionState.ROLLBACK_MESSAGE,
    LocalTransactionState.UNKNOW,
)


class Ledger:
    """A listener whose local transactions are a dict: body -> state (UNKNOW until settled)."""

    def __init__(self, first: dict[bytes, LocalTransactionState]) -> None:
        self.first = first
        self.settled: dict[bytes, LocalTransactionState] = {}
        self.checked = threading.Event()

    def execute_local_transaction(self, msg: Message, arg: Any) -> LocalTransactionState:
        assert arg == "arg"
        return self.first[msg.body]

    def check_local_transaction(self, msg: MessageExt) -> LocalTransactionState:
        self.checked.set()
        return self.settled.get(msg.body, UNKNOW)


def read_all(server: FerryServer, topic: str, count: int, timeout: float = 15.0) -> list[MessageExt]:
    consumer = LitePullConsumer(server.namesrv_addr, group=f"reader-{topic}", consume_from="FIRST_OFFSET")
    consumer.subscribe(topic, "*")
    consumer.start()
    try:
        got: list[MessageExt] = []
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            got.extend(consumer.poll(timeout=0.5))
        got.extend(consumer.poll(timeout=1.0))  # nothing more arrives
        return got
    finally:
        consumer.shutdown()


def test_commit_rollback_and_unknown_settled_by_check(shared_server: FerryServer) -> None:
    ledger = Ledger({b"commit": COMMIT, b"rollback": ROLLBACK, b"unknown": UNKNOW, b"boom": UNKNOW})
    with TransactionProducer(shared_server.namesrv_addr, group="py-txn", listener=ledger) as producer:
        states = {}
        for body in (b"commit", b"rollback", b"unknown"):
            result = producer.send_message_in_transaction(Message("PyTxn", body, tags="t"), "arg")
            assert result.send_result.ok
            states[body] = result.local_transaction_state
        assert states == {b"commit": COMMIT, b"rollback": ROLLBACK, b"unknown": UNKNOW}
        assert ledger.checked.wait(10)  # the broker asks about b"unknown"
        ledger.settled[b"unknown"] = COMMIT
        got = read_all(shared_server, "PyTxn", 2)
    assert sorted(m.body for m in got) == [b"commit", b"unknown"]
    assert all(m.tags == "t" and "TRAN_MSG" not in m.properties for m in got)


def test_async_producer_and_a_check_answered_by_another_producer(shared_server: FerryServer) -> None:
    async def run() -> None:
        async def undecided(msg: Message, arg: Any) -> LocalTransactionState:
            return UNKNOW

        async def committed(msg: MessageExt) -> LocalTransactionState:
            return COMMIT

        class Dies:
            execute_local_transaction = staticmethod(undecided)

            @staticmethod
            def check_local_transaction(msg: MessageExt) -> LocalTransactionState:
                raise AssertionError("a dead producer was asked")

        class Survivor:
            execute_local_transaction = staticmethod(undecided)
            check_local_transaction = staticmethod(committed)

        ns = shared_server.namesrv_addr
        survivor = AsyncTransactionProducer(ns, "py-txn-async", listener=Survivor())
        await survivor.start()
        await survivor.send(Message("PyTxnAsync", b"route-and-heartbeat"))  # it knows the broker now
        dying = AsyncTransactionProducer(ns, "py-txn-async", listener=Dies())
        await dying.start()
        result = await dying.send_message_in_transaction(Message("PyTxnAsync", b"orphan"), "arg")
        assert result.local_transaction_state is UNKNOW
        await dying.shutdown()
        got = await asyncio.to_thread(read_all, shared_server, "PyTxnAsync", 2)
        await survivor.shutdown()
        assert sorted(m.body for m in got) == [b"orphan", b"route-and-heartbeat"]

    asyncio.run(run())


def test_delay_level_counts_from_the_commit(shared_server: FerryServer) -> None:
    ledger = Ledger({b"delayed-commit": COMMIT, b"delayed-rollback": ROLLBACK})
    with TransactionProducer(shared_server.namesrv_addr, group="py-txn-delay", listener=ledger) as producer:
        for body in (b"delayed-commit", b"delayed-rollback"):
            producer.send_message_in_transaction(
                Message("PyTxnDelay", body, properties={"DELAY": "1"}), "arg"
            )
        committed_at = int(time.time() * 1000)
        got = read_all(shared_server, "PyTxnDelay", 1)
    assert [m.body for m in got] == [b"delayed-commit"]
    assert got[0].store_timestamp >= committed_at + 1000 - 50
