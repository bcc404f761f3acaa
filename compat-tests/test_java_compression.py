"""Compressed bodies between the official Java client (rocketmq-client 5.3.3) and ferrymq.client:
a Java producer compressing with LZ4 or ZSTD (``-Drocketmq.message.compressType``, Java's own
switch) is read by the Python client with the original bodies, and a Python producer with
``compress_type="LZ4"``/``"ZSTD"`` is read by the Java client, which inflates by the sysFlag
codec bits the Python producer set. Against one real ``ferrymq serve`` for the module.
"""

from __future__ import annotations

import time

import java_support as js
import pytest

from ferrymq.client import LitePullConsumer, Message, Producer

SKIP_REASON = js.skip_reason()

pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

BODY_SIZE = 64 * 1024  # over the 4 KiB threshold of both producers


@pytest.fixture(scope="module")
def namesrv(shared_server) -> str:  # type: ignore[no-untyped-def]
    js.build()
    return str(shared_server.namesrv_addr)


@pytest.mark.parametrize("codec", ["LZ4", "ZSTD"])
def test_java_compressed_read_by_python(namesrv: str, codec: str) -> None:
    topic = js.unique_name(f"JavaZ_{codec}")
    sent = js.of_type(
        js.run_java(
            "Produce",
            namesrv,
            topic,
            js.unique_name("pg"),
            "4",
            "--body-size",
            str(BODY_SIZE),
            jvm_args=[f"-Drocketmq.message.compressType={codec}"],
        ),
        "send",
    )
    js.check_sent(sent, 4, mode="sync")
    consumer = LitePullConsumer(
        namesrv_addr=namesrv, group=js.unique_name("pycg"), consume_from="FIRST_OFFSET"
    )
    consumer.subscribe(topic)
    consumer.start()
    got = []
    try:
        deadline = time.monotonic() + 30
        while len(got) < len(sent) and time.monotonic() < deadline:
            got += consumer.poll(timeout=1.0)
    finally:
        consumer.shutdown()
    assert sorted(m.body for m in got) == sorted(bytes.fromhex(s["body"]) for s in sent)
    assert all((m.sys_flag >> 8) & 0x7 == {"LZ4": 1, "ZSTD": 2}[codec] for m in got)


@pytest.mark.parametrize("codec", ["LZ4", "ZSTD"])
def test_python_compressed_read_by_java(namesrv: str, codec: str) -> None:
    topic = js.unique_name(f"PyZ_{codec}")
    bodies = [bytes([65 + i]) * BODY_SIZE for i in range(4)]
    producer = Producer(namesrv_addr=namesrv, group=js.unique_name("pypg"), compress_type=codec)
    producer.start()
    try:
        for body in bodies:
            producer.send(Message(topic, body))
    finally:
        producer.shutdown()
    out = js.read(namesrv, topic, js.unique_name("cg"), len(bodies), timeout_ms=30000, linger_ms=500)
    got = js.of_type(out, "msg")
    assert sorted(bytes.fromhex(m["body"]) for m in got) == sorted(bodies)
