"""Broker groups mixing ferrymq and unmodified Apache RocketMQ 5.3.3 brokers (from Maven jars,
bench/rocketmq_ref.py), replicating over RocketMQ's classic HA protocol:

* an Apache slave follows a ferrymq master: same queue offsets; it is never sent a Kafka batch
  entry (its dispatcher would stop there for good), so its queues hold everything before one;
  with the master gone, the unmodified Java consumer reads every message from the Apache slave;
* a ferrymq slave follows an Apache master, and with the master gone the Java consumer reads
  every message from the ferrymq slave.

Both sides use the same mappedFileSizeCommitLog (a group must). One JVM broker per test, plus
the Java client tools of compat-tests/java.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import java_support as js
import pytest

from ferrymq.cli.testing import FerryBroker, FerryNameServer
from ferrymq.core.remoting.codes import RequestCode
from tests.cluster_helpers import create_topic, eventually, invoke, max_offset, routed

sys.path.insert(0, str(js.REPO_ROOT / "bench"))
import rocketmq_ref as ref

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

SEGMENT = 128 * 1024 * 1024  # bench/rocketmq_ref.py's mappedFileSizeCommitLog
QUEUES = 4


@pytest.fixture(scope="module", autouse=True)
def jars() -> None:
    js.build()
    ref.build_classpaths()


def offsets(addr: str, topic: str) -> list[int]:
    return [max_offset(addr, topic, q) for q in range(QUEUES)]


def knows_topic(addr: str, topic: str) -> bool:
    """The broker's topic table (GET_ALL_TOPIC_CONFIG) holds ``topic``."""
    code, body, _ = invoke(addr, RequestCode.GET_ALL_TOPIC_CONFIG, {})
    return code == 0 and f'"{topic}"'.encode() in body


def msg_ids(results: list[dict[str, Any]]) -> set[str]:
    return {r["msgId"] for r in results}


@pytest.fixture
def ferry_master(tmp_path: Path) -> Iterator[tuple[FerryNameServer, FerryBroker]]:
    ns = FerryNameServer(tmp_path / "ns")
    # Java slaves pull topic configs from the master's VIP port, listenPort-2: a free port triple
    port = ref.free_broker_port()
    conf = {"listenPort": str(port), "mappedFileSizeCommitLog": str(SEGMENT)}
    master = FerryBroker(tmp_path / "master", ns.addr, "broker-fm", kafka=True, conf=conf)
    try:
        yield ns, master
    finally:
        master.stop()
        ns.stop()


#: the Apache slave's own topic-table copy runs 60 s after it starts (BrokerController's fixed slave
#: sync), too long for make test: there the topic is created on the slave by UPDATE_AND_CREATE_TOPIC,
#: and compat-tests/test_tools_mqadmin.py checks that Java decodes the tables that sync reads; make soak
#: (FERRYMQ_SOAK_TESTS=1) waits for the sync as well. Not a skip: CI allows no skipped compat test.
TOPIC_FROM = ["admin", "slave-sync"] if os.environ.get("FERRYMQ_SOAK_TESTS") == "1" else ["admin"]


@pytest.mark.parametrize("topic_from", TOPIC_FROM)
def test_an_apache_slave_follows_a_ferrymq_master(
    ferry_master: tuple[FerryNameServer, FerryBroker], tmp_path: Path, topic_from: str
) -> None:
    ns, master = ferry_master
    topic = js.unique_name("ApacheSlave")
    create_topic(master.addr, topic, QUEUES)
    eventually(lambda: routed(ns.addr, topic) is not None, 30, "the topic routed")
    sent = js.of_type(js.produce(ns.addr, topic, js.unique_name("pg"), 24), "send")
    js.check_sent(sent, 24, mode="sync")
    before = offsets(master.addr, topic)
    # a Kafka batch, then more native messages: an Apache slave must stop before the batch
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=master.kafka_bootstrap)
    producer.send(topic, b"a kafka record", partition=0).get(timeout=30)
    producer.close()
    later = js.of_type(js.produce(ns.addr, topic, js.unique_name("pg"), 8), "send")
    js.check_sent(later, 8, mode="sync")

    slave = ref.start_apache_broker(
        tmp_path / "apache-slave",
        ns.addr,
        {
            "brokerName": "broker-fm",
            "brokerId": 1,
            "brokerRole": "SLAVE",
            "slaveReadEnable": "true",
            "mappedFileSizeCommitLog": SEGMENT,
        },
    )
    try:
        # Apache's HA client reports its offset only every 5 s, after its first registration
        eventually(lambda: offsets(slave.addr, topic) == before, 90, "the Apache slave replicated")
        log = (master.log_path).read_text(errors="replace")
        assert "REFUSED" in log and "Kafka record batch" in log
        # while it is connected, Kafka produce is refused: nothing it cannot read is written
        from kafka.errors import PolicyViolationError

        refused = KafkaProducer(bootstrap_servers=master.kafka_bootstrap, retries=0)
        with pytest.raises(PolicyViolationError):
            refused.send(topic, b"refused", partition=1).get(timeout=30)
        refused.close()
        # without the topic an Apache slave refuses pulls; it copies its master's topics 60 s after it
        # starts (BrokerController's slave sync), or an operator creates it there
        if topic_from == "admin":
            create_topic(slave.addr, topic, QUEUES)
            assert knows_topic(slave.addr, topic)
        else:
            eventually(lambda: knows_topic(slave.addr, topic), 90, "the Apache slave copied the topic")
        master.kill()
        # the unmodified Java consumer, master gone, reads what the slave holds: all of `sent`
        got = js.of_type(js.read(ns.addr, topic, js.unique_name("cg"), len(sent), linger_ms=1000), "msg")
        assert msg_ids(sent) <= msg_ids(got)
        assert {m["brokerName"] for m in got} == {"broker-fm"}
    finally:
        slave.stop()


def test_a_ferrymq_slave_follows_an_apache_master(tmp_path: Path) -> None:
    rq = ref.start_rocketmq(tmp_path / "apache")
    slave = FerryBroker(
        tmp_path / "ferry-slave",
        rq.namesrv_addr,
        ref.BROKER_NAME,
        conf={
            "brokerRole": "SLAVE",
            "brokerId": "1",
            "mappedFileSizeCommitLog": str(SEGMENT),
            "slaveReadEnable": "true",
            "slaveSyncInterval": "1000",
        },
    )
    try:
        topic = js.unique_name("FerrySlave")
        create_topic(rq.broker_addr, topic, QUEUES)
        eventually(lambda: routed(rq.namesrv_addr, topic) is not None, 60, "the Apache master routed it")
        sent = js.of_type(js.produce(rq.namesrv_addr, topic, js.unique_name("pg"), 32), "send")
        js.check_sent(sent, 32, mode="sync")
        want = offsets(rq.broker_addr, topic)
        eventually(lambda: offsets(slave.addr, topic) == want, 60, "the ferrymq slave replicated")
        eventually(lambda: knows_topic(slave.addr, topic), 30, "the ferrymq slave copied the topic")
        assert rq.broker is not None
        ref._stop_process(rq.broker, 10)  # the Apache master is gone
        rq.broker = None
        got = js.of_type(js.read(rq.namesrv_addr, topic, js.unique_name("cg"), 32, linger_ms=1000), "msg")
        js.check_roundtrip(sent, got)
    finally:
        slave.stop()
        rq.stop()
