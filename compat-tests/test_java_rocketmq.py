"""The official Apache RocketMQ Java client (rocketmq-client 5.3.3, unmodified) against ferrymq.

Each test starts a real ``ferrymq serve`` (the shared ``ferrymq_server`` fixture of the root
conftest.py) and runs the scenario programs of compat-tests/java through java_support: sync, async,
oneway, batch and ordered sends; lite-pull reads in subscribe and assign+seek modes with body, tags,
keys and user properties compared byte for byte; tag filtering; and the cross-language cases with
the Python client (skipped until ``ferrymq.client`` provides Producer/LitePullConsumer/Message).

The same tests run against real Apache RocketMQ from Maven jars (bench/rocketmq_ref.py) with
``FERRYMQ_COMPAT_TARGET=rocketmq``, which is how the Java side is kept known-good:

    FERRYMQ_COMPAT_TARGET=rocketmq .venv/bin/python -m pytest -q compat-tests/test_java_rocketmq.py

Without java or mvn every test is skipped, with the reason shown in the summary (-ra).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import java_support as js
import pytest

TARGET = os.environ.get("FERRYMQ_COMPAT_TARGET", "ferrymq").strip().lower()
SKIP_REASON = js.skip_reason()

pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]


@pytest.fixture(scope="module")
def java_built() -> None:
    """Build compat-tests/java once (a no-op after `make java`)."""
    js.build()


@pytest.fixture(scope="module")
def rocketmq_reference() -> Iterator[Any]:
    """Apache RocketMQ from Maven jars, shared by the module (only with FERRYMQ_COMPAT_TARGET=rocketmq)."""
    ref = js.rocketmq_reference().start_rocketmq()
    try:
        yield ref
    finally:
        ref.stop()


@pytest.fixture
def namesrv(request: pytest.FixtureRequest, java_built: None) -> str:
    """The name server address of the server under test."""
    if TARGET == "rocketmq":
        return str(request.getfixturevalue("rocketmq_reference").namesrv_addr)
    if TARGET != "ferrymq":
        raise pytest.UsageError(f"FERRYMQ_COMPAT_TARGET must be ferrymq or rocketmq, not {TARGET!r}")
    return str(request.getfixturevalue("ferrymq_server").namesrv_addr)


# ---------------------------------------------------------------------------------------------
# Java producer -> Java lite-pull consumer
# ---------------------------------------------------------------------------------------------


def test_sync_send_read_back(namesrv: str) -> None:
    js.scenario_roundtrip(namesrv, "sync")


def test_async_send_read_back(namesrv: str) -> None:
    js.scenario_roundtrip(namesrv, "async")


def test_oneway_send_read_back(namesrv: str) -> None:
    js.scenario_roundtrip(namesrv, "oneway")


def test_batch_send_read_back(namesrv: str) -> None:
    js.scenario_roundtrip(namesrv, "batch", batch_size=8)


def test_ordered_send_keeps_order_per_key(namesrv: str) -> None:
    js.scenario_ordered(namesrv)


def test_assign_and_seek(namesrv: str) -> None:
    js.scenario_assign_seek(namesrv)


def test_tag_filter(namesrv: str) -> None:
    js.scenario_tag_filter(namesrv)


def test_large_body_is_compressed_and_read_back(namesrv: str) -> None:
    """Bodies over 4 KiB are zlib-compressed by the producer (sysFlag bit 0); the reader inflates them."""
    topic = js.unique_name("Java_large")
    sent = js.of_type(js.produce(namesrv, topic, js.unique_name("pg"), 4, body_size=64 * 1024), "send")
    js.check_sent(sent, 4, mode="sync")
    got = js.of_type(js.read(namesrv, topic, js.unique_name("cg"), 4, linger_ms=500), "msg")
    js.check_roundtrip(sent, got)
    assert all(len(bytes.fromhex(m["body"])) == 64 * 1024 for m in got)


def test_committed_offsets_resume_the_group(namesrv: str) -> None:
    """A second reader in the same group (subscribe mode, auto commit) gets only what came after."""
    topic, group = js.unique_name("Java_resume"), js.unique_name("cg")
    first = js.of_type(js.produce(namesrv, topic, js.unique_name("pg"), 8, run_id="first"), "send")
    js.check_roundtrip(first, js.of_type(js.read(namesrv, topic, group, 8, linger_ms=500), "msg"))
    second = js.of_type(js.produce(namesrv, topic, js.unique_name("pg"), 8, run_id="second"), "send")
    got = js.of_type(js.read(namesrv, topic, group, 8, linger_ms=1500), "msg")
    js.check_roundtrip(second, got)


# ---------------------------------------------------------------------------------------------
# Cross-language: the ferrymq Python client with the Java client
# ---------------------------------------------------------------------------------------------


def _python_client() -> tuple[Any, Any, Any]:
    try:
        from ferrymq.client import LitePullConsumer, Message, Producer
    except ImportError as e:
        pytest.skip(f"ferrymq.client (Producer, LitePullConsumer, Message) is not available yet: {e}")
    return Producer, LitePullConsumer, Message


def _keys_text(keys: Any) -> str:
    if keys is None:
        return ""
    if isinstance(keys, str):
        return keys
    return " ".join(str(k) for k in keys)


def test_java_sent_read_by_python(namesrv: str) -> None:
    _, LitePullConsumer, _ = _python_client()
    topic = js.unique_name("Java2Py")
    sent = js.of_type(js.produce(namesrv, topic, js.unique_name("pg"), 10, tags="TagA,TagB"), "send")
    js.check_sent(sent, 10, mode="sync")

    consumer = LitePullConsumer(namesrv_addr=namesrv, group=js.unique_name("pycg"))
    consumer.subscribe(topic, "*")
    consumer.start()
    got: list[Any] = []
    try:
        deadline = time.monotonic() + 30.0
        while len(got) < len(sent) and time.monotonic() < deadline:
            got.extend(consumer.poll(timeout=1.0))
        end = time.monotonic() + 1.0  # anything beyond the ten would be a duplicate
        while time.monotonic() < end:
            got.extend(consumer.poll(timeout=0.5))
    finally:
        consumer.shutdown()

    by_position = {(m.queue_id, m.queue_offset): m for m in got}
    assert len(by_position) == len(got), "duplicate deliveries"
    assert sorted(by_position) == sorted((s["queueId"], s["queueOffset"]) for s in sent)
    for s in sent:
        m = by_position[(s["queueId"], s["queueOffset"])]
        assert bytes(m.body) == bytes.fromhex(s["body"])
        assert m.tags == s["tags"]
        assert _keys_text(m.keys) == s["keys"]
        for name, value in s["properties"].items():
            assert m.properties.get(name) == value, (name, m.properties)
        assert m.msg_id == s["msgId"], (
            f"MessageExt.msg_id {m.msg_id!r} should be the producer's UNIQ_KEY {s['msgId']!r}, as Java's "
            f"MessageClientExt.getMsgId(); properties: {m.properties!r}"
        )
        if hasattr(m, "offset_msg_id"):
            assert m.offset_msg_id == s["offsetMsgId"]


def test_python_sent_read_by_java(namesrv: str) -> None:
    Producer, _, Message = _python_client()
    topic = js.unique_name("Py2Java")
    producer = Producer(namesrv_addr=namesrv, group=js.unique_name("pypg"))
    producer.start()
    sent: list[dict[str, Any]] = []
    try:
        for i in range(10):
            body = f"python|{i}".encode() + js.BINARY_TAIL
            props = {"idx": str(i), "lang": "python", "uni": js.NON_ASCII_VALUE}
            tags = "TagA" if i % 2 == 0 else "TagB"
            keys = f"py-key-{i}"
            result = producer.send(Message(topic, body, tags=tags, keys=keys, properties=props))
            sent.append(
                {
                    "body": body.hex(),
                    "tags": tags,
                    "keys": keys,
                    "properties": props,
                    "msgId": getattr(result, "msg_id", None),
                }
            )
    finally:
        producer.shutdown()

    out = js.read(namesrv, topic, js.unique_name("cg"), len(sent), timeout_ms=30000, linger_ms=1000)
    got = js.of_type(out, "msg")
    by_body = {m["body"]: m for m in got}
    assert len(by_body) == len(got) == len(sent), f"{len(got)} messages read for {len(sent)} sent"
    for s in sent:
        m = by_body.get(s["body"])
        assert m is not None, f"message {s['body']} not read by Java"
        assert m["topic"] == topic
        assert m["tags"] == s["tags"]
        assert m["keys"] == s["keys"]
        assert m["properties"] == s["properties"], (
            f"user properties seen by Java {m['properties']!r} != sent {s['properties']!r} "
            f"(system properties: {m['sysProperties']!r})"
        )
        assert js.is_message_id(m["msgId"]) and js.is_message_id(m["offsetMsgId"])
        if s["msgId"] is not None:
            assert m["msgId"] == s["msgId"], f"Java getMsgId() {m['msgId']!r}: {m['sysProperties']!r}"
            assert m["sysProperties"].get("UNIQ_KEY") == s["msgId"]
