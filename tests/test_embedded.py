"""The in-process broker (``ferrymq.embedded()``) and the pytest fixtures over it: started on free
ports on its own loop thread, reachable by the native client and Kafka clients, its helpers see
what was sent, and stopping it leaves no thread, port or temporary directory behind."""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.request
from pathlib import Path

import pytest

import ferrymq
from ferrymq.cli.embedded import EMBEDDED_STORE, EmbeddedBroker, EmbeddedError
from ferrymq.client import Message, Producer


def _port_open(addr: str) -> bool:
    host, port = addr.rsplit(":", 1)
    with socket.socket() as s:
        return s.connect_ex((host, int(port))) == 0


def _embedded_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ferrymq-embedded"]


def test_fixture_serves_native_and_kafka_clients(ferrymq_broker: EmbeddedBroker) -> None:
    kafka = pytest.importorskip("kafka")
    ferrymq_broker.create_topic("orders", queues=2)
    producer = Producer(namesrv_addr=ferrymq_broker.namesrv_addr, group="embedded-p")
    producer.start()
    try:
        producer.send(Message("orders", b"native", keys="n1"))
    finally:
        producer.shutdown()
    kp = kafka.KafkaProducer(bootstrap_servers=ferrymq_broker.kafka_bootstrap)
    kp.send("orders", b"from-kafka", key=b"k1").get(10)
    kp.close()
    got = {m.body: m.keys for m in ferrymq_broker.messages("orders")}
    assert got == {b"native": "n1", b"from-kafka": "k1"}
    assert sorted(ferrymq_broker.bodies("orders")) == [b"from-kafka", b"native"]


def test_topic_helpers(ferrymq_broker: EmbeddedBroker) -> None:
    assert ferrymq_broker.messages("never-created") == []
    ferrymq_broker.create_topic("t", queues=3)
    assert ferrymq_broker.messages("t") == []
    with pytest.raises(ValueError):
        ferrymq_broker.create_topic("bad topic name!")


def test_stop_leaves_nothing_behind() -> None:
    before = len(_embedded_threads())
    broker = ferrymq.embedded()
    with broker:
        data_dir = broker.data_dir
        addrs = [broker.namesrv_addr, broker.broker_addr, broker.kafka_bootstrap]
        assert data_dir is not None and data_dir.exists()
        assert all(_port_open(a) for a in addrs)
    assert not any(_port_open(a) for a in addrs)
    assert not data_dir.exists()  # a temporary directory it made itself
    assert len(_embedded_threads()) == before
    with pytest.raises(EmbeddedError):
        broker.namesrv_addr  # noqa: B018
    broker.stop()  # twice is fine


def test_given_data_dir_is_kept_and_uses_small_segments(tmp_path: Path) -> None:
    with EmbeddedBroker(tmp_path, kafka=False) as broker:
        broker.create_topic("small")
        with pytest.raises(EmbeddedError):
            broker.kafka_bootstrap  # noqa: B018
    segments = list((tmp_path / "store" / "commitlog").iterdir())
    assert segments and all(s.stat().st_size == EMBEDDED_STORE["mappedFileSizeCommitLog"] for s in segments)


def test_admin_api_starts_on_first_use(ferrymq_broker: EmbeddedBroker) -> None:
    ferrymq_broker.create_topic("seen-by-admin")
    with urllib.request.urlopen(f"{ferrymq_broker.admin_url}/api/topics", timeout=30) as resp:
        assert b"seen-by-admin" in resp.read()


def test_async_with() -> None:
    async def main() -> list[bytes]:
        async with ferrymq.embedded(kafka=False) as broker:
            await broker.acreate_topic("a")
            producer = Producer(namesrv_addr=broker.namesrv_addr, group="embedded-async")
            await asyncio.to_thread(producer.start)
            await asyncio.to_thread(producer.send, Message("a", b"x"))
            await asyncio.to_thread(producer.shutdown)
            return [m.body for m in await broker.amessages("a")]

    assert asyncio.run(main()) == [b"x"]


def test_session_fixture_is_shared(
    ferrymq_broker_session: EmbeddedBroker, request: pytest.FixtureRequest
) -> None:
    assert request.getfixturevalue("ferrymq_broker_session") is ferrymq_broker_session
    assert ferrymq_broker_session.running


def test_a_failed_start_raises_its_cause_and_cleans_up() -> None:
    from ferrymq.core.config import ConfigError

    before = len(_embedded_threads())
    broker = EmbeddedBroker(conf={"defaultTopicQueueNums": 0})  # out of range: refused at start
    with pytest.raises(ConfigError):
        broker.start()
    assert len(_embedded_threads()) == before
    assert broker.data_dir is not None and not broker.data_dir.exists()
