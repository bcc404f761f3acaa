"""/metrics beyond traffic: connections per listener, parked pulls and Kafka fetches, rejected
requests by reason, store flush latency and fsync errors. Each moves when its event happens
(in process: the collector is read directly, a broker and its Kafka frontend serve real sockets)."""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ferrymq.core.broker.broker import Broker
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.transport import RemotingConnection, connect
from ferrymq.gateway.admin.context import AdminContext
from ferrymq.gateway.admin.metrics import registry_for
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.fault_fs import FaultyDisk
from tests.inprocess import kafka_broker
from tests.remoting_helpers import pull, send_v2


def scrape(broker: Broker) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    ctx = AdminContext(broker, cast(Any, None))
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry_for(ctx)).decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def metric(broker: Broker, name: str, **labels: str) -> float:
    return scrape(broker).get((name, frozenset(labels.items())), 0.0)


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """The server sees socket events on its own turn of the loop: wait for the count to follow."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def closed_by_server(port: int, data: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    assert await reader.read() == b""
    writer.close()


def run(tmp_path: Path, body: Callable[[Broker, KafkaFrontend], Any], **config: Any) -> None:
    async def main() -> None:
        async with kafka_broker(tmp_path, "T", 2, **config) as (broker, frontend):
            await asyncio.wait_for(body(broker, frontend), 30)

    asyncio.run(main())


def test_connections_per_listener(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        assert metric(broker, "ferrymq_listener_connections", listener="remoting") == 0
        conn = await connect("127.0.0.1", broker.port)
        kafka = socket.create_connection(("127.0.0.1", frontend.port))
        try:
            await conn.invoke(send_v2("T", b"x", 0, queue_nums=2), timeout=5)
            await until(lambda: metric(broker, "ferrymq_listener_connections", listener="kafka") == 1)
            assert metric(broker, "ferrymq_listener_connections", listener="remoting") == 1
            for listener in ("vip", "ha"):
                assert ("ferrymq_listener_connections", frozenset({("listener", listener)})) in scrape(broker)
        finally:
            conn.close()
            kafka.close()
        await until(lambda: metric(broker, "ferrymq_listener_connections", listener="remoting") == 0)
        await until(lambda: metric(broker, "ferrymq_listener_connections", listener="kafka") == 0)

    run(tmp_path, body)


def test_parked_pulls_and_fetches(tmp_path: Path) -> None:
    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        conn = await connect("127.0.0.1", broker.port)
        try:
            parked = asyncio.ensure_future(conn.invoke(pull("T", 0, 0, suspend_ms=20_000), timeout=30))
            await until(lambda: metric(broker, "ferrymq_parked_requests", kind="pull") == 1)
            fetch = asyncio.ensure_future(frontend.wait_for_data([("T", 1)], 20))
            await until(lambda: metric(broker, "ferrymq_parked_requests", kind="kafka_fetch") == 1)
            r = await conn.invoke(send_v2("T", b"x", 0, queue_nums=2), timeout=5)
            assert r.code == ResponseCode.SUCCESS
            assert (await parked).code == ResponseCode.SUCCESS
            assert metric(broker, "ferrymq_parked_requests", kind="pull") == 0
            await conn.invoke(send_v2("T", b"x", 1, queue_nums=2), timeout=5)
            assert await fetch
            assert metric(broker, "ferrymq_parked_requests", kind="kafka_fetch") == 0
        finally:
            conn.close()

    run(tmp_path, body)


def test_rejected_requests_by_reason(tmp_path: Path) -> None:
    def rejected(broker: Broker, listener: str, reason: str) -> float:
        return metric(broker, "ferrymq_rejected_requests_total", listener=listener, reason=reason)

    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        await closed_by_server(broker.port, b"\x00\x00\x00\x08\xff\xff\xff\xffjunk")
        assert rejected(broker, "remoting", "bad_frame") == 1
        await closed_by_server(broker.port, struct.pack(">i", 0x7FFFFFF0))
        assert rejected(broker, "remoting", "frame_too_big") == 1
        await closed_by_server(frontend.port, struct.pack(">i", 0x7FFFFFF0))
        assert rejected(broker, "kafka", "frame_too_big") == 1
        await closed_by_server(frontend.port, struct.pack(">ih", 2, 999))
        assert rejected(broker, "kafka", "bad_frame") == 1

        await until(lambda: metric(broker, "ferrymq_listener_connections", listener="remoting") == 0)
        conn = await connect("127.0.0.1", broker.port)
        held: list[RemotingConnection] = [conn]
        try:
            first = asyncio.ensure_future(conn.invoke(pull("T", 0, 0, suspend_ms=20_000), timeout=30))
            await until(lambda: metric(broker, "ferrymq_parked_requests", kind="pull") == 1)
            busy = await conn.invoke(pull("T", 1, 0, suspend_ms=20_000), timeout=5)
            assert busy.code == ResponseCode.SYSTEM_BUSY
            assert rejected(broker, "remoting", "parked_pull_cap") == 1
            held.append(await connect("127.0.0.1", broker.port))  # the second of two allowed
            await closed_by_server(broker.port, b"")  # the third is refused
            assert rejected(broker, "remoting", "connection_cap") == 1
            first.cancel()
        finally:
            for c in held:
                c.close()

    run(tmp_path, body, max_suspended_pulls_per_connection=1, server_max_connections=2)


def test_flush_latency_and_fsync_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FaultyDisk().install(monkeypatch)

    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        conn = await connect("127.0.0.1", broker.port)
        try:
            before = metric(broker, "ferrymq_store_flush_duration_seconds_count")
            await conn.invoke(send_v2("T", b"x", 0, queue_nums=2), timeout=5)
            await broker.store.flush()
            assert metric(broker, "ferrymq_store_flush_duration_seconds_count") == before + 1
            assert metric(broker, "ferrymq_store_fsync_errors_total") == 0
            disk.fail["fdatasync"] = errno.EIO
            disk.fail["fsync"] = errno.EIO
            await conn.invoke(send_v2("T", b"x", 0, queue_nums=2), timeout=5)
            await broker.store.flush()
            assert metric(broker, "ferrymq_store_fsync_errors_total") == 1
        finally:
            conn.close()
            disk.fail.clear()

    run(tmp_path, body)


def test_in_flight_cap_and_unknown_kafka_api(tmp_path: Path) -> None:
    def rejected(broker: Broker, listener: str, reason: str) -> float:
        return metric(broker, "ferrymq_rejected_requests_total", listener=listener, reason=reason)

    async def body(broker: Broker, frontend: KafkaFrontend) -> None:
        request = struct.pack(">hhih", 999, 0, 1, -1)  # API key 999 v0, correlation 1, no client id
        await closed_by_server(frontend.port, struct.pack(">i", len(request)) + request)
        assert rejected(broker, "kafka", "unsupported_api") == 1
        conn = await connect("127.0.0.1", broker.port)
        try:
            parked = asyncio.ensure_future(conn.invoke(pull("T", 0, 0, suspend_ms=20_000), timeout=30))
            await until(lambda: rejected(broker, "remoting", "in_flight_cap") == 1)  # reading held back
            other = await connect("127.0.0.1", broker.port)  # this one's requests wait for the pull
            try:
                await other.invoke(send_v2("T", b"x", 0, queue_nums=2), timeout=5)
            finally:
                other.close()
            assert (await parked).code == ResponseCode.SUCCESS
        finally:
            conn.close()

    run(tmp_path, body, server_max_in_flight_requests=1)
