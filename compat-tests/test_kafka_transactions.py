"""Kafka transactions with unmodified clients against ``ferrymq serve``.

The coordinator side (FindCoordinator key_type 1, InitProducerId, AddPartitionsToTxn, EndTxn, the
timeout abort, state across a kill -9) is checked here on the wire. The client scenarios:
- confluent-kafka (librdkafka): a transactional producer commits and aborts; a read_committed
  consumer sees only the committed records, a read_uncommitted one all;
- a zombie producer (same transactional.id, older epoch) is fenced and its open transaction aborted;
- aiokafka (protocol v0 of every transaction API): an aborted and a committed transaction with
  send_offsets_to_transaction, read back read_committed with the group's committed offset.
The Java client's consume-transform-produce loop is in test_kafka_java_transactions.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka_support import create_topic
from kio.index import load_response_from_request
from kio.schema.add_partitions_to_txn.v3.request import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic
from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
from kio.schema.errors import ErrorCode
from kio.schema.find_coordinator.v3.request import FindCoordinatorRequest
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest

from ferrymq.cli.testing import FerryServer
from ferrymq.gateway.kafka.framing import decode_response, encode_request

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, KafkaException, TopicPartition  # noqa: E402
from confluent_kafka import Producer as KafkaProducer  # noqa: E402

pytestmark = [pytest.mark.compat, pytest.mark.timeout(90)]

#: the abort check every 100 ms, so a timed-out transaction is aborted at once
FERRYMQ_CONF = "kafkaTransactionAbortCheckMs=100\n"


def call(server: FerryServer, request: Any) -> Any:
    """One Kafka request on a fresh connection, kio-encoded as a client sends it."""
    host, port = server.kafka_bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(encode_request(request, 1, "txn-test"))
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = sock.recv(65536)
            assert chunk, "the broker closed the connection"
            data += chunk
    return decode_response(data[4:], load_response_from_request(type(request)))[1]


def describe(server: FerryServer, tid: str) -> Any:
    (state,) = call(server, DescribeTransactionsRequest(transactional_ids=(tid,))).transaction_states
    return state


def test_an_ongoing_transaction_survives_a_kill_and_is_aborted_at_its_timeout(
    server_factory: type[FerryServer], tmp_path: Any
) -> None:
    with server_factory(tmp_path / "ferrymq", FERRYMQ_CONF) as server:
        create_topic(server, "txn-kill", 2)
        found = call(server, FindCoordinatorRequest(key="tx-kill", key_type=1))
        assert found.error_code == ErrorCode.none
        assert found.port == int(server.kafka_bootstrap.split(":")[1])
        init = call(
            server,
            InitProducerIdRequest(
                transactional_id="tx-kill", transaction_timeout=datetime.timedelta(seconds=2)
            ),
        )
        assert (init.error_code, init.producer_epoch) == (ErrorCode.none, 0)
        added = call(
            server,
            AddPartitionsToTxnRequest(
                v3_and_below_transactional_id="tx-kill",
                v3_and_below_producer_id=init.producer_id,
                v3_and_below_producer_epoch=0,
                v3_and_below_topics=(AddPartitionsToTxnTopic(name="txn-kill", partitions=(1,)),),
            ),
        )
        assert added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 0
        server.kill()
        server.start()
        state = describe(server, "tx-kill")
        assert (state.error_code, state.producer_id) == (ErrorCode.none, init.producer_id)
        assert state.transaction_state in ("Ongoing", "PrepareAbort", "CompleteAbort")
        assert [(t.topic, t.partitions) for t in state.topics] in ([("txn-kill", (1,))], [])
        deadline = time.monotonic() + 30
        while (state := describe(server, "tx-kill")).transaction_state != "CompleteAbort":
            assert time.monotonic() < deadline, state
            time.sleep(0.1)
        assert state.producer_epoch == 1  # the abort fenced the old producer


@pytest.fixture
def producers(server: FerryServer) -> Iterator[Callable[[str], Any]]:
    """Transactional producers (``transactional.id`` given), closed after the test whatever happened."""
    made: list[Any] = []

    def make(tid: str) -> Any:
        conf = {
            "bootstrap.servers": server.kafka_bootstrap,
            "transactional.id": tid,
            "transaction.timeout.ms": 30_000,
        }
        p = KafkaProducer(conf)
        made.append(p)
        p.init_transactions(20)
        return p

    yield make
    for p in made:
        with contextlib.suppress(KafkaException):  # a fenced producer reports its fatal error again
            p.close()


def read_all(server: FerryServer, topic: str, isolation: str, count: int) -> list[bytes]:
    consumer = Consumer(
        {
            "bootstrap.servers": server.kafka_bootstrap,
            "group.id": f"r-{isolation}",
            "isolation.level": isolation,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        out: list[bytes] = []
        deadline = time.monotonic() + 15
        while len(out) < count and time.monotonic() < deadline:
            for msg in consumer.consume(count - len(out), timeout=0.5):
                assert msg.error() is None, msg.error()
                out.append(msg.value())
        return out
    finally:
        consumer.close()


def test_confluent_commit_and_abort_read_committed_sees_only_the_committed(
    server: FerryServer, producers: Callable[[str], Any]
) -> None:
    topic = "txn-confluent"
    create_topic(server, topic, 1)
    p = producers("tx-confluent")
    for batch, commit in ((b"a", True), (b"b", False), (b"c", True)):
        p.begin_transaction()
        for i in range(3):
            p.produce(topic, batch + str(i).encode(), partition=0)
        p.flush(10)
        if commit:
            p.commit_transaction(20)
        else:
            p.abort_transaction(20)
    assert read_all(server, topic, "read_committed", 6) == [b"a0", b"a1", b"a2", b"c0", b"c1", b"c2"]
    assert len(read_all(server, topic, "read_uncommitted", 9)) == 9


def test_confluent_zombie_is_fenced_and_its_transaction_aborted(
    server: FerryServer, producers: Callable[[str], Any]
) -> None:
    topic = "txn-zombie"
    create_topic(server, topic, 1)
    zombie = producers("tx-zombie")
    zombie.begin_transaction()
    zombie.produce(topic, b"zombie", partition=0)
    zombie.flush(10)
    fresh = producers("tx-zombie")  # fences the zombie, aborting its open transaction
    with pytest.raises(KafkaException) as failed:
        zombie.commit_transaction(20)
    assert failed.value.args[0].fatal()
    fresh.begin_transaction()
    fresh.produce(topic, b"fresh", partition=0)
    fresh.commit_transaction(20)
    assert read_all(server, topic, "read_committed", 1) == [b"fresh"]


def test_aiokafka_transactions_with_send_offsets_and_a_read_committed_consumer(server: FerryServer) -> None:
    aiokafka = pytest.importorskip("aiokafka")
    source, sink, group = "txn-aio-in", "txn-aio-out", "txn-aio-g"
    create_topic(server, source, 1)
    create_topic(server, sink, 1)

    async def body() -> list[bytes]:
        plain = aiokafka.AIOKafkaProducer(bootstrap_servers=server.kafka_bootstrap)
        await plain.start()
        try:
            for i in range(4):
                await plain.send_and_wait(source, f"v{i}".encode(), partition=0)
        finally:
            await plain.stop()
        producer = aiokafka.AIOKafkaProducer(
            bootstrap_servers=server.kafka_bootstrap, transactional_id="tx-aio"
        )
        await producer.start()
        try:
            for value, commit in ((b"a", False), (b"b", True)):
                with contextlib.suppress(_Abort):
                    async with producer.transaction():
                        await producer.send_and_wait(sink, value, partition=0)
                        offsets = {aiokafka.TopicPartition(source, 0): 4}
                        await producer.send_offsets_to_transaction(offsets, group)
                        if not commit:
                            raise _Abort
        finally:
            await producer.stop()
        consumer = aiokafka.AIOKafkaConsumer(
            bootstrap_servers=server.kafka_bootstrap,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            group_id=group,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            tp = aiokafka.TopicPartition(sink, 0)
            consumer.assign([tp])
            consumer.seek(tp, 0)
            got = await consumer.getmany(tp, timeout_ms=5000)
            assert (await consumer.committed(aiokafka.TopicPartition(source, 0))) == 4
            return [m.value for m in got.get(tp, [])]
        finally:
            await consumer.stop()

    assert asyncio.run(body()) == [b"b"]


class _Abort(Exception):
    """Leaves an aiokafka ``transaction()`` block so that it aborts."""


def test_a_kill_mid_transaction_leaves_exactly_one_outcome_for_read_committed_readers(
    server_factory: type[FerryServer], tmp_path: Any
) -> None:
    """kill -9 with one transaction committed and the next still open, its records stored: after the
    restart the open one is aborted at its timeout, the committed one stays, and read_committed
    readers (confluent-kafka, and a record produced after the restart behind the aborted ones) see
    exactly the committed records — never the open transaction's, never a stuck partition."""
    topic = "txn-kill-data"
    with server_factory(tmp_path / "ferrymq", FERRYMQ_CONF) as server:
        create_topic(server, topic, 1)
        p = KafkaProducer(
            {
                "bootstrap.servers": server.kafka_bootstrap,
                "transactional.id": "tx-kill-data",
                "transaction.timeout.ms": 3000,
            }
        )
        try:
            p.init_transactions(20)
            p.begin_transaction()
            p.produce(topic, b"committed", partition=0)
            p.commit_transaction(20)
            p.begin_transaction()
            for i in range(3):
                p.produce(topic, b"open%d" % i, partition=0)
            p.flush(10)
            server.kill()
        finally:
            p.purge()
        server.start()
        plain = KafkaProducer({"bootstrap.servers": server.kafka_bootstrap})
        plain.produce(topic, b"after", partition=0)
        assert plain.flush(20) == 0
        assert read_all(server, topic, "read_committed", 2) == [b"committed", b"after"]
        deadline = time.monotonic() + 30
        while describe(server, "tx-kill-data").transaction_state != "CompleteAbort":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        uncommitted = read_all(server, topic, "read_uncommitted", 5)
        assert uncommitted == [b"committed", b"open0", b"open1", b"open2", b"after"]
