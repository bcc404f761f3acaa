"""ferrymq.client against a real ``ferrymq serve`` process (name server + broker) on free ports.

Every test gets its own server in a temp dir (the shared ``ferrymq_server`` / ``server_factory``
fixtures of conftest.py), and stops it afterwards.

The same scenarios run against Apache RocketMQ (name server + broker from Maven jars, started
once for the module by bench/rocketmq_ref.py) with ``FERRYMQ_COMPAT_TARGET=rocketmq``, the switch
compat-tests use; tests that need a specially configured ferrymq broker are skipped there::

    FERRYMQ_COMPAT_TARGET=rocketmq .venv/bin/python -m pytest -q tests/test_client_integration.py
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.client import (
    AsyncLitePullConsumer,
    AsyncProducer,
    BrokerError,
    ClientError,
    LitePullConsumer,
    Message,
    MessageExt,
    MessageQueue,
    Producer,
    SelectMessageQueueByHash,
    SendStatus,
    ValidationError,
    queue_of,
)
from ferrymq.client._remote import RemotingClient, request
from ferrymq.client.route import RouteManager
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.message import decode_offset_msg_id
from ferrymq.core.remoting.route import TopicRouteData
from ferrymq.core.remoting.transport import connect, split_addr
from tests.cluster_helpers import eventually

TARGET = os.environ.get("FERRYMQ_COMPAT_TARGET", "ferrymq").strip().lower()


class Server(Protocol):
    @property
    def namesrv_addr(self) -> str: ...


@pytest.fixture(scope="module")
def apache_rocketmq() -> Iterator[Any]:
    """Apache RocketMQ from Maven jars, shared by the module (FERRYMQ_COMPAT_TARGET=rocketmq)."""
    try:
        from bench.rocketmq_ref import start_rocketmq
    except ImportError as exc:
        pytest.skip(f"bench/rocketmq_ref.py is not available: {exc}")
    try:
        ref = start_rocketmq()
    except Exception as exc:  # no java, no jars, no network for Maven: say why, do not fail
        pytest.skip(f"cannot start Apache RocketMQ: {exc}")
    try:
        yield ref
    finally:
        ref.stop()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Server:
    """The server under test: a fresh ``ferrymq serve``, or the module's Apache RocketMQ."""
    if TARGET == "rocketmq":
        ref: Server = request.getfixturevalue("apache_rocketmq")
        return ref
    if TARGET != "ferrymq":
        raise pytest.UsageError(f"FERRYMQ_COMPAT_TARGET must be ferrymq or rocketmq, not {TARGET!r}")
    ferry: Server = request.getfixturevalue("ferrymq_server")
    return ferry


def uniq(prefix: str) -> str:
    """A topic or group name of its own, as a shared Apache RocketMQ outlives one test."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def drain(consumer: LitePullConsumer, want: int, timeout: float = 10.0) -> list[MessageExt]:
    """Poll until ``want`` messages arrived (each poll waits on the consumer's arrival event)."""
    got: list[MessageExt] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got += consumer.poll(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
    return got


def dead_addr() -> str:
    """An address nothing listens on: a port bound and released by us."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"127.0.0.1:{port}"


def query_route(namesrv_addr: str, topic: str) -> TopicRouteData | None:
    async def go() -> TopicRouteData | None:
        host, port = split_addr(namesrv_addr)
        conn = await connect(host, port)
        try:
            resp = await conn.invoke(request(RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic}))
        finally:
            conn.close()
        if resp.code == ResponseCode.TOPIC_NOT_EXIST:
            return None
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        return TopicRouteData.from_json_bytes(resp.body)

    return asyncio.run(go())


# ---- send every way, pull everything back ------------------------------------------------------------


def test_send_sync_async_oneway_batch_orderly_then_pull_back(server: Server) -> None:
    ns = server.namesrv_addr
    topic = uniq("ClientRoundTrip")
    big = bytes(range(256)) * 40  # 10 KiB: compressed on the wire, inflated by the consumer
    with Producer(ns, group=uniq("pg-roundtrip")) as producer:
        sync = producer.send(
            Message(topic, b"sync", tags="TagA", keys=["k1", "k2"], properties={"color": "red"})
        )
        fut = producer.send_async(Message(topic, b"async", tags="TagB", properties={"n": "1"}))
        async_result = fut.result(timeout=10)
        producer.send_oneway(Message(topic, b"oneway", tags="TagA"))
        batch = producer.send_batch(
            [Message(topic, f"batch-{i}".encode(), tags="TagC", keys=f"bk{i}") for i in range(3)]
        )
        orderly = [
            producer.send_orderly(
                Message(topic, f"order-{i}".encode()), SelectMessageQueueByHash(), "order-42"
            )
            for i in range(3)
        ]
        large = producer.send(Message(topic, big, tags="Big"))

    for r in [sync, async_result, batch, *orderly, large]:
        assert r.status is SendStatus.SEND_OK
        assert r.queue.topic == topic and r.queue.broker_name == "broker-a"
    assert len(batch.msg_id.split(",")) == 3 and len(batch.offset_msg_id.split(",")) == 3
    assert len({r.queue for r in orderly}) == 1
    assert [r.queue_offset for r in orderly] == [orderly[0].queue_offset + i for i in range(3)]

    consumer = LitePullConsumer(ns, group=uniq("cg-roundtrip"), consume_from="FIRST_OFFSET")
    consumer.subscribe(topic, "*")
    consumer.start()
    try:
        assert len(consumer.assignment()) == 4
        got = drain(consumer, 10)
        assert consumer.poll(timeout=0.2) == []
    finally:
        consumer.shutdown()

    by_body = {m.body: m for m in got}
    assert len(got) == 10 and len(by_body) == 10
    m = by_body[b"sync"]
    assert (m.topic, m.tags, m.keys, m.user_properties) == (topic, "TagA", "k1 k2", {"color": "red"})
    assert m.msg_id == sync.msg_id and m.offset_msg_id == sync.offset_msg_id
    assert (m.queue_id, m.queue_offset) == (sync.queue.queue_id, sync.queue_offset)
    assert queue_of(m) == sync.queue
    assert decode_offset_msg_id(m.offset_msg_id)[2] == m.commit_log_offset
    assert m.born_timestamp > 0 and m.store_timestamp >= m.born_timestamp and m.reconsume_times == 0
    assert by_body[b"async"].msg_id == async_result.msg_id
    assert by_body[b"async"].user_properties == {"n": "1"}
    assert by_body[b"oneway"].tags == "TagA"
    batch_ids = zip(batch.msg_id.split(","), batch.offset_msg_id.split(","), strict=True)
    for i, (uniq_id, off_id) in enumerate(batch_ids):
        bm = by_body[f"batch-{i}".encode()]
        assert (bm.msg_id, bm.offset_msg_id, bm.keys, bm.tags) == (uniq_id, off_id, f"bk{i}", "TagC")
        assert queue_of(bm) == batch.queue and bm.queue_offset == batch.queue_offset + i
    for i, r in enumerate(orderly):
        om = by_body[f"order-{i}".encode()]
        assert queue_of(om) == r.queue and om.queue_offset == r.queue_offset and om.tags is None
    assert by_body[big].msg_id == large.msg_id
    # per queue: offsets strictly increasing, no gaps
    per_queue: dict[int, list[int]] = {}
    for msg in got:
        per_queue.setdefault(msg.queue_id, []).append(msg.queue_offset)
    for offsets in per_queue.values():
        assert offsets == list(range(len(offsets)))


def test_async_api(server: Server) -> None:
    ns = server.namesrv_addr
    topic = uniq("ClientAsync")

    async def main() -> None:
        async with AsyncProducer(ns, group=uniq("pg-async")) as producer:
            results = await asyncio.gather(
                *(producer.send(Message(topic, f"m{i}".encode(), tags="T")) for i in range(20))
            )
            queues = await producer.fetch_publish_queues(topic)
        assert all(r.status is SendStatus.SEND_OK for r in results)
        consumer = AsyncLitePullConsumer(ns, group=uniq("cg-async"), consume_from="FIRST_OFFSET")
        consumer.assign(queues)
        async with consumer:
            got: list[MessageExt] = []
            while len(got) < 20:
                batch = await consumer.poll(timeout=5)
                assert batch, "no messages within 5 s"
                got += batch
            assert sorted(m.body for m in got) == sorted(f"m{i}".encode() for i in range(20))
            assert {m.msg_id for m in got} == {r.msg_id for r in results}

    asyncio.run(asyncio.wait_for(main(), 30))


# ---- filtering ---------------------------------------------------------------------------------------


def test_tag_filtering_with_client_side_recheck(server: Server) -> None:
    ns = server.namesrv_addr
    topic = uniq("ClientTags")
    tags = ["TagA", "TagB", "TagC", None, "Aa", "BB"]  # "Aa" and "BB" share Java's hashCode (2112)
    with Producer(ns, group=uniq("pg-tags")) as producer:
        for round_ in range(3):
            for tag in tags:
                producer.send(Message(topic, f"{tag}-{round_}".encode(), tags=tag))

    consumer = LitePullConsumer(ns, group=uniq("cg-tags"), consume_from="FIRST_OFFSET", auto_commit=False)
    consumer.subscribe(topic, "TagA || Aa")
    consumer.start()
    try:
        got = drain(consumer, 6)
        assert consumer.poll(timeout=0.3) == []
        assert sorted(m.body for m in got) == sorted(
            f"{t}-{r}".encode() for t in ("TagA", "Aa") for r in range(3)
        )
        # the consumed offsets moved past the filtered messages too
        queues = consumer.assignment()

        def all_consumed() -> bool:
            consumer.poll(timeout=0.05)
            consumer.commit()
            return all(consumer.committed(q) == consumer.max_offset(q) for q in queues)

        eventually(all_consumed, what="consumed offsets at the end of every queue")
    finally:
        consumer.shutdown()

    everything = LitePullConsumer(ns, group=uniq("cg-tags-all"), consume_from="FIRST_OFFSET")
    everything.subscribe(topic, "*")
    with everything:
        assert len(drain(everything, 18)) == 18


# ---- offsets -----------------------------------------------------------------------------------------


def test_seek_commit_and_resume_across_consumer_restart(server: Server) -> None:
    ns = server.namesrv_addr
    topic, group = uniq("ClientOffsets"), uniq("cg-offsets")
    with Producer(ns, group=uniq("pg-offsets")) as producer:
        results = [
            producer.send_orderly(Message(topic, f"m{i}".encode()), SelectMessageQueueByHash(), 7)
            for i in range(20)
        ]
    mq = results[0].queue
    assert [r.queue for r in results] == [mq] * 20 and results[-1].queue_offset == 19

    def consumer(auto_commit: bool) -> LitePullConsumer:
        c = LitePullConsumer(ns, group=group, pull_batch_size=4, auto_commit=auto_commit)
        c.assign([mq])
        return c.start()

    first = consumer(auto_commit=False)
    try:
        assert first.committed(mq) is None
        got = drain(first, 8)
        assert [m.queue_offset for m in got] == list(range(8))
        first.commit()
        assert first.committed(mq) == 8
    finally:
        first.shutdown()

    second = consumer(auto_commit=False)
    try:
        assert second.committed(mq) == 8  # from the broker
        assert [m.queue_offset for m in drain(second, 4)] == [8, 9, 10, 11]
        second.seek(mq, 2)
        assert [m.queue_offset for m in drain(second, 4)] == [2, 3, 4, 5]
        with pytest.raises(ValidationError, match="Seek offset illegal"):
            second.seek(mq, 21)
        with pytest.raises(ClientError, match="not in assigned list"):
            second.seek(MessageQueue(topic, "broker-a", (mq.queue_id + 1) % 4), 0)
        second.seek_to_end(mq)
        assert second.poll(timeout=0.3) == []
        second.commit({mq: 15})
        assert second.committed(mq) == 15
        second.commit({mq: 8})
    finally:
        second.shutdown()  # auto_commit off: nothing more is written

    third = consumer(auto_commit=True)
    try:
        assert [m.queue_offset for m in drain(third, 4)] == [8, 9, 10, 11]
    finally:
        third.shutdown()  # auto_commit: writes 12

    fourth = consumer(auto_commit=True)
    try:
        assert fourth.committed(mq) == 12
        assert [m.queue_offset for m in drain(fourth, 8)] == list(range(12, 20))
    finally:
        fourth.shutdown()


def test_subscribed_group_resumes_after_restart(server: Server) -> None:
    ns = server.namesrv_addr
    topic, group = uniq("ClientResume"), uniq("cg-resume")
    with Producer(ns, group=uniq("pg-resume")) as producer:
        for i in range(10):
            producer.send(Message(topic, f"old-{i}".encode()))
        c1 = LitePullConsumer(ns, group=group, consume_from="FIRST_OFFSET")
        c1.subscribe(topic)
        with c1.start():
            assert len(drain(c1, 10)) == 10
        producer.send(Message(topic, b"new"))
    c2 = LitePullConsumer(ns, group=group, consume_from="FIRST_OFFSET")
    c2.subscribe(topic)
    with c2.start():
        got = drain(c2, 1)
        assert [m.body for m in got] == [b"new"]
        assert c2.poll(timeout=0.3) == []


# ---- routes and name servers -------------------------------------------------------------------------


def test_unknown_topic_is_auto_created_via_tbw102(server: Server) -> None:
    ns = server.namesrv_addr
    topic = uniq("ClientAutoCreated")
    assert query_route(ns, topic) is None
    with Producer(ns, group=uniq("pg-auto")) as producer:
        result = producer.send(Message(topic, b"first"))
        assert result.status is SendStatus.SEND_OK and result.queue.topic == topic
        eventually(lambda: query_route(ns, topic) is not None, what="route of the auto-created topic")
        route = query_route(ns, topic)
        assert route is not None and [q.write_queue_nums for q in route.queue_datas] == [4]
        assert producer.send(Message(topic, b"second")).status is SendStatus.SEND_OK
    consumer = LitePullConsumer(ns, group=uniq("cg-auto"), consume_from="FIRST_OFFSET")
    consumer.subscribe(topic)
    with consumer.start():
        assert sorted(m.body for m in drain(consumer, 2)) == [b"first", b"second"]


@pytest.mark.parametrize("dead_first", [True, False])
def test_name_server_list_with_a_dead_entry(server: Server, dead_first: bool) -> None:
    live, dead = server.namesrv_addr, dead_addr()
    addrs = f"{dead};{live}" if dead_first else f"{live};{dead}"
    topic = uniq("ClientNs")
    for i in range(4):  # the starting entry is random: several clients try both orders
        with Producer(addrs, group=uniq("pg-ns")) as producer:
            assert producer.send(Message(topic, f"m{i}".encode())).status is SendStatus.SEND_OK
    consumer = LitePullConsumer(addrs, group=uniq("cg-ns"), consume_from="FIRST_OFFSET")
    consumer.subscribe(topic)
    with consumer.start():
        assert len(drain(consumer, 4)) == 4


def test_name_server_fail_over_moves_to_the_next_entry(server: Server) -> None:
    live, dead = server.namesrv_addr, dead_addr()

    async def main() -> None:
        remote = RemotingClient([dead, live])
        remote._ns_index = 0
        routes = RouteManager(remote)
        try:
            assert await routes.query_route("NoSuchTopicAnywhere") is None
            assert remote.current_namesrv == live
            assert await routes.query_route("TBW102") is not None
        finally:
            await remote.close()
        all_dead = RemotingClient([dead, dead_addr()])
        with pytest.raises(ClientError):
            await RouteManager(all_dead).query_route("TBW102")
        await all_dead.close()

    asyncio.run(asyncio.wait_for(main(), 20))


# ---- groups and errors -------------------------------------------------------------------------------


def test_two_consumers_of_a_group_split_the_queues(server: Server) -> None:
    ns = server.namesrv_addr
    topic, group = uniq("ClientRebalance"), uniq("cg-rebalance")
    with Producer(ns, group=uniq("pg-rebalance")) as producer:
        for i in range(40):
            producer.send(Message(topic, f"m{i}".encode()))
    a = LitePullConsumer(ns, group=group, consume_from="FIRST_OFFSET", auto_commit=False)
    b = LitePullConsumer(ns, group=group, consume_from="FIRST_OFFSET", auto_commit=False)
    a.subscribe(topic)
    b.subscribe(topic)
    a.start()
    try:
        assert len(a.assignment()) == 4
        b.start()  # its heartbeat makes the broker tell `a` to rebalance
        try:
            eventually(
                lambda: len(a.assignment()) == 2 and len(b.assignment()) == 2,
                what="queues split between the two members",
            )
            assert a.assignment() | b.assignment() == {MessageQueue(topic, "broker-a", i) for i in range(4)}
        finally:
            b.shutdown()
        # b left: the broker notifies a, which takes every queue again
        eventually(lambda: len(a.assignment()) == 4, what="queues back to the remaining member")
    finally:
        a.shutdown()


@pytest.mark.skipif(TARGET != "ferrymq", reason="needs a ferrymq broker with maxMessageSize=1024")
def test_broker_error_carries_code_and_remark(server_factory: type[FerryServer], tmp_path: Path) -> None:
    server = server_factory(tmp_path / "small", "maxMessageSize=1024").start()
    with Producer(
        server.namesrv_addr, group=uniq("pg-errors"), max_message_size=1 << 20, compress_over=-1
    ) as producer:
        with pytest.raises(BrokerError) as info:
            producer.send(Message("ClientErrors", b"x" * 2048))
        assert info.value.code == ResponseCode.MESSAGE_ILLEGAL
        assert "over max value" in info.value.remark
        with pytest.raises(ValidationError):
            producer.send(Message("bad topic", b"x"))
        with pytest.raises(ClientError, match="select message queue return null"):
            producer.send_orderly(Message("ClientErrors", b"x"), lambda qs, m, a: None)
    with pytest.raises(ClientError, match="not started"):
        producer.send(Message("ClientErrors", b"x"))


def test_seek_and_shutdown_do_not_wait_for_parked_long_polls(server: Server) -> None:
    ns = server.namesrv_addr
    topic = uniq("ClientLongPoll")
    with Producer(ns, group=uniq("pg-longpoll")) as producer:
        sent = producer.send(Message(topic, b"only"))
        queues = producer.fetch_publish_queues(topic)
    consumer = LitePullConsumer(ns, group=uniq("cg-longpoll"), consume_from="FIRST_OFFSET")
    consumer.assign(queues)
    consumer.start()
    try:
        assert [m.body for m in drain(consumer, 1)] == [b"only"]
        assert consumer.poll(timeout=0.3) == []  # every queue now has a pull parked at the broker
        started = time.monotonic()
        consumer.seek(sent.queue, 0)
        assert [m.body for m in drain(consumer, 1)] == [b"only"]
        assert time.monotonic() - started < 5  # not the 20 s a parked pull may last
    finally:
        started = time.monotonic()
        consumer.shutdown()
        assert time.monotonic() - started < 5


@pytest.mark.skipif(TARGET != "ferrymq", reason="restarts the server under test")
def test_clients_carry_on_after_a_server_restart(ferrymq_server: FerryServer) -> None:
    ns = ferrymq_server.namesrv_addr
    topic = uniq("ClientRestart")
    producer = Producer(ns, group=uniq("pg-restart")).start()
    consumer = LitePullConsumer(ns, group=uniq("cg-restart"), consume_from="FIRST_OFFSET")
    consumer.subscribe(topic)
    try:
        producer.send(Message(topic, b"before"))
        consumer.start()
        assert [m.body for m in drain(consumer, 1)] == [b"before"]
        ferrymq_server.restart()  # same ports and data; every connection is dropped
        assert producer.send(Message(topic, b"after")).status is SendStatus.SEND_OK
        assert [m.body for m in drain(consumer, 1, timeout=15)] == [b"after"]
    finally:
        consumer.shutdown()
        producer.shutdown()
