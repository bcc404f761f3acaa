"""Unit tests of ferrymq.client's pure parts: ids, validation, selectors, allocation, routes,
subscriptions, headers, errors and the background loop. No server needed."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading

import pytest

from ferrymq.client import (
    AllocateMessageQueueAveragely,
    BrokerError,
    ClientError,
    Message,
    MessageQueue,
    SelectMessageQueueByHash,
    SelectMessageQueueByMachineRoom,
    SelectMessageQueueByRandom,
    SendStatus,
    SubscriptionData,
    ValidationError,
    _api,
    allocate_averagely,
    create_uniq_id,
)
from ferrymq.client._ids import UniqueIdGenerator, make_client_id, uniq_id_ip, uniq_id_time_ms
from ferrymq.client._loop import LoopThread
from ferrymq.client._remote import parse_namesrv_addrs
from ferrymq.client.producer import message_properties
from ferrymq.client.rebalance import consume_from_key
from ferrymq.client.route import (
    TopicPublishInfo,
    default_route_for,
    publish_info_from_route,
    subscribe_queues_from_route,
)
from ferrymq.client.selectors import hash_index, java_hash_code, run_selector
from ferrymq.client.validators import check_batch, check_group, check_message, check_topic
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.message import PROPERTY_KEYS, PROPERTY_TAGS, java_string_hash
from ferrymq.core.remoting.route import PERM_READ, PERM_WRITE, BrokerData, QueueData, TopicRouteData

# ---- unique ids -------------------------------------------------------------------------------------

HEX32 = re.compile(r"^[0-9A-F]{32}$")


def test_uniq_id_is_32_uppercase_hex_and_unique():
    ids = {create_uniq_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(HEX32.match(i) for i in ids)


def test_uniq_id_layout_follows_message_client_id_setter():
    gen = UniqueIdGenerator(ip=bytes([10, 0, 0, 5]), pid=0x12345, salt=b"\xde\xad\xbe\xef")
    now = int(dt.datetime(2024, 3, 15, 12, 0, 0).timestamp() * 1000)
    first, second = gen.create(now), gen.create(now)
    start_of_month = int(dt.datetime(2024, 3, 1).timestamp() * 1000)
    span = now - start_of_month
    # ip(4) | pid low 16 bits(2) | per-process salt(4) | ms since start of month(4) | counter(2)
    assert first == "0A000005" + "2345" + "DEADBEEF" + f"{span:08X}" + "0000"
    assert second[-4:] == "0001" and second[:-4] == first[:-4]
    assert uniq_id_ip(first) == "10.0.0.5"
    assert uniq_id_time_ms(first, now_ms=now + 1000) == now


def test_uniq_id_counter_wraps_at_16_bits_and_month_rolls_over():
    gen = UniqueIdGenerator(ip=bytes(4), pid=1, salt=bytes(4))
    now = int(dt.datetime(2024, 1, 31, 23, 59, 59).timestamp() * 1000)
    gen._counter = 0xFFFF
    assert gen.create(now).endswith("FFFF")
    assert gen.create(now).endswith("0000")
    next_month = int(dt.datetime(2024, 2, 1, 0, 0, 1).timestamp() * 1000)
    assert gen.create(next_month)[20:28] == f"{1000:08X}"


def test_client_id_is_ip_at_instance_and_distinct_per_client():
    a, b = make_client_id("10.1.2.3"), make_client_id("10.1.2.3")
    assert a.startswith("10.1.2.3@") and a != b
    assert make_client_id("1.2.3.4", "inst") == "1.2.3.4@inst"


# ---- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["T", "a-b_c%D|9", "x" * 127, "%RETRY%g"])
def test_legal_topics(topic):
    assert check_topic(topic) == topic


@pytest.mark.parametrize("topic", ["", "   ", "x" * 128, "a b", "a.b", "主题", None])
def test_illegal_topics(topic):
    with pytest.raises(ValidationError):
        check_topic(topic)


def test_groups():
    assert check_group("g-1") == "g-1"
    for bad in ("", "g 1", "g" * 256, "g/1"):
        with pytest.raises(ValidationError):
            check_group(bad)


def test_message_checks():
    check_message(Message("T", b"x"))
    with pytest.raises(ValidationError, match="length is zero"):
        check_message(Message("T", b""))
    with pytest.raises(ValidationError, match="over max value, MAX: 10"):
        check_message(Message("T", b"x" * 11), max_message_size=10)
    with pytest.raises(ValidationError, match="forbidden"):
        check_message(Message("SCHEDULE_TOPIC_XXXX", b"x"))
    with pytest.raises(ValidationError, match="must be bytes"):
        check_message(Message("T", "text"))
    with pytest.raises(ValidationError, match="separator"):
        check_message(Message("T", b"x", properties={"k": "a\x01b"}))
    with pytest.raises(ValidationError):
        check_message(None)
    # a ValidationError is both a ClientError and a ValueError
    assert issubclass(ValidationError, ClientError) and issubclass(ValidationError, ValueError)


def test_batch_checks():
    assert len(check_batch([Message("T", b"a"), Message("T", b"b")])) == 2
    with pytest.raises(ValidationError, match="same"):
        check_batch([Message("T", b"a"), Message("U", b"b")])
    with pytest.raises(ValidationError, match="Retry"):
        check_batch([Message("%RETRY%g", b"a")])
    with pytest.raises(ValidationError, match="Delay"):
        check_batch([Message("T", b"a", properties={"DELAY": "3"})])
    with pytest.raises(ValidationError, match="empty"):
        check_batch([])


def test_message_properties_tolerates_none_and_joins_keys():
    msg = Message("T", b"x", tags="TagA", keys=["k1", "k2"], properties=None)
    assert message_properties(msg) == {PROPERTY_TAGS: "TagA", PROPERTY_KEYS: "k1 k2"}


# ---- selectors ---------------------------------------------------------------------------------------

QUEUES = [MessageQueue("T", b, i) for b in ("broker-a", "broker-b") for i in range(4)]


def test_java_hash_code_matches_java():
    assert java_hash_code("TagA") == 2598919
    assert java_hash_code("Aa") == java_hash_code("BB") == 2112
    assert java_hash_code("polygenelubricants") == -(2**31)
    assert java_hash_code(42) == 42 and java_hash_code(-7) == -7
    assert java_hash_code(2**40) == 256  # Long.hashCode: (int)(v ^ (v >>> 32))
    assert java_hash_code(True) == 1231 and java_hash_code(False) == 1237
    assert java_hash_code(b"\x01\xff") == (31 * (31 * 1 + 1) - 1)  # Arrays.hashCode, signed bytes


def test_hash_index_is_javas_abs_of_remainder():
    assert hash_index(-7, 4) == 3  # Java: -7 % 4 == -3 -> 3
    assert hash_index("polygenelubricants", 3) == 2  # MIN_VALUE % 3 == -2 -> 2


def test_select_by_hash_is_stable_and_java_compatible():
    sel = SelectMessageQueueByHash()
    msg = Message("T", b"x")
    h = java_string_hash("order-1")
    java_rem = h - 8 * int(h / 8)  # Java's % truncates toward zero
    assert sel.select(QUEUES, msg, "order-1") == QUEUES[abs(java_rem)]
    assert sel.select(QUEUES, msg, 13) == QUEUES[5]
    assert sel.select([], msg, 1) is None


def test_select_by_random_covers_all_queues():
    sel = SelectMessageQueueByRandom()
    seen = {sel.select(QUEUES, Message("T", b"x"), None) for _ in range(500)}
    assert seen == set(QUEUES)


def test_select_by_machine_room():
    queues = [MessageQueue("T", f"{idc}@b{i}", q) for idc, i in (("hz", 1), ("sh", 2)) for q in range(2)]
    msg = Message("T", b"x")
    assert SelectMessageQueueByMachineRoom().select(queues, msg, 1) is None  # Java's behaviour
    sel = SelectMessageQueueByMachineRoom({"sh"})
    assert sel.select(queues, msg, 0) == MessageQueue("T", "sh@b2", 0)
    assert sel.select(queues, msg, 1) == MessageQueue("T", "sh@b2", 1)
    assert SelectMessageQueueByMachineRoom({"bj"}).select(queues, msg, 1) is None


def test_run_selector_accepts_functions_and_rejects_garbage():
    assert run_selector(lambda qs, m, a: qs[a], QUEUES, Message("T", b"x"), 3) == QUEUES[3]
    with pytest.raises(TypeError):
        run_selector(lambda qs, m, a: "nope", QUEUES, Message("T", b"x"), 3)


# ---- allocation --------------------------------------------------------------------------------------


def mqs(n: int) -> list[MessageQueue]:
    return sorted(MessageQueue("T", "broker-a", i) for i in range(n))


def test_allocate_averagely_matches_java_examples():
    cids = ["c0", "c1", "c2"]
    assert [[q.queue_id for q in allocate_averagely(c, mqs(8), cids)] for c in cids] == [
        [0, 1, 2],
        [3, 4, 5],
        [6, 7],
    ]
    assert [[q.queue_id for q in allocate_averagely(c, mqs(5), cids)] for c in cids] == [[0, 1], [2, 3], [4]]
    assert [[q.queue_id for q in allocate_averagely(c, mqs(2), cids)] for c in cids] == [[0], [1], []]
    assert allocate_averagely("stranger", mqs(4), cids) == []


@pytest.mark.parametrize("n_mq", [1, 3, 4, 7, 16, 33])
@pytest.mark.parametrize("n_c", [1, 2, 3, 5, 8])
def test_allocate_averagely_partitions_exactly(n_mq, n_c):
    cids = sorted(f"10.0.0.1@{i}" for i in range(n_c))
    parts = [AllocateMessageQueueAveragely().allocate("g", c, mqs(n_mq), cids) for c in cids]
    flat = [q for p in parts for q in p]
    assert sorted(flat) == mqs(n_mq)  # every queue exactly once
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


# ---- routes ------------------------------------------------------------------------------------------


def route(*qds: QueueData, brokers: dict[str, dict[int, str]] | None = None, order: str | None = None):
    brokers = brokers if brokers is not None else {qd.broker_name: {0: "127.0.0.1:1"} for qd in qds}
    return TopicRouteData(
        queue_datas=list(qds),
        broker_datas=[BrokerData("C", name, addrs) for name, addrs in brokers.items()],
        order_topic_conf=order,
    )


def test_publish_queues_are_writable_queues_of_groups_with_a_master():
    r = route(
        QueueData("b", 4, 2, PERM_READ | PERM_WRITE),
        QueueData("a", 4, 3, PERM_READ | PERM_WRITE),
        QueueData("ro", 4, 4, PERM_READ),
        QueueData("slave-only", 4, 4, PERM_READ | PERM_WRITE),
        brokers={"a": {0: "x:1"}, "b": {0: "y:1", 1: "y:2"}, "ro": {0: "z:1"}, "slave-only": {1: "w:1"}},
    )
    info = publish_info_from_route("T", r)
    assert [(q.broker_name, q.queue_id) for q in info.queues] == [
        ("a", 0),
        ("a", 1),
        ("a", 2),
        ("b", 0),
        ("b", 1),
    ]
    subs = subscribe_queues_from_route("T", r)
    assert {q.broker_name for q in subs} == {"a", "b", "ro", "slave-only"} and len(subs) == 16


def test_order_topic_conf_lists_the_queues():
    info = publish_info_from_route("T", route(QueueData("a", 8, 8, 6), order="a:2;b:1"))
    assert info.order_topic
    assert [(q.broker_name, q.queue_id) for q in info.queues] == [("a", 0), ("a", 1), ("b", 0)]


def test_default_route_is_trimmed_to_default_queue_nums():
    r = default_route_for(route(QueueData("a", 8, 8, 6), QueueData("b", 2, 2, 6)), 4)
    assert [(q.broker_name, q.read_queue_nums, q.write_queue_nums) for q in r.queue_datas] == [
        ("a", 4, 4),
        ("b", 2, 2),
    ]


def test_round_robin_and_retry_on_another_broker():
    info = TopicPublishInfo("T", list(QUEUES), route())
    picks = [info.select() for _ in range(16)]
    assert set(picks) == set(QUEUES)
    assert all(picks[i] != picks[i + 1] for i in range(15))
    for _ in range(20):
        assert info.select(last_broker="broker-a").broker_name == "broker-b"
        assert info.select(avoid={"broker-b"}).broker_name == "broker-a"
    # every group avoided: still not the one that just failed
    assert info.select(last_broker="broker-a", avoid={"broker-b"}).broker_name == "broker-b"
    with pytest.raises(ClientError, match="No route info"):
        TopicPublishInfo("T", [], route()).select()


# ---- subscriptions -----------------------------------------------------------------------------------


def test_subscription_expressions():
    assert SubscriptionData.build("T", "*").matches_all
    assert SubscriptionData.build("T", "").matches_all
    assert SubscriptionData.build("T", " || ").matches_all
    sub = SubscriptionData.build("T", " TagA ||TagB|| TagA ")
    assert sub.tags_set == ["TagA", "TagB"]
    assert sub.code_set == [2598919, java_string_hash("TagB")]
    assert sub.matches("TagA") and not sub.matches("TagC") and not sub.matches(None)
    js = sub.to_json()
    assert js["subString"] == "TagA ||TagB|| TagA"
    assert js["expressionType"] == "TAG" and js["tagsSet"] == ["TagA", "TagB"]


def test_consume_from_names():
    assert consume_from_key("last_offset") == "LAST_OFFSET"
    assert consume_from_key("CONSUME_FROM_FIRST_OFFSET") == "FIRST_OFFSET"
    with pytest.raises(ValidationError):
        consume_from_key("NEWEST")


# ---- wire details ------------------------------------------------------------------------------------


def test_send_header_v2_uses_one_letter_names():
    h = _api.send_header_v2(
        group="g",
        topic="T",
        default_topic="TBW102",
        default_topic_queue_nums=4,
        queue_id=2,
        sys_flag=1,
        born_timestamp=123,
        flag=0,
        properties="TAGS\x01A\x02",
        broker_name="broker-a",
        batch=True,
    )
    assert h == {
        "a": "g",
        "b": "T",
        "c": "TBW102",
        "d": "4",
        "e": "2",
        "f": "1",
        "g": "123",
        "h": "0",
        "i": "TAGS\x01A\x02",
        "j": "0",
        "k": "false",
        "m": "true",
        "n": "broker-a",
    }


def test_message_queue_sorts_like_java_and_prints_like_java():
    a, b, c = MessageQueue("T", "a", 10), MessageQueue("T", "a", 2), MessageQueue("S", "z", 0)
    assert sorted([a, b, c]) == [c, b, a]
    assert str(b) == "MessageQueue [topic=T, brokerName=a, queueId=2]"
    assert {a: 1}[MessageQueue("T", "a", 10)] == 1


def test_send_status_and_broker_error():
    assert SendStatus.from_response_code(0) is SendStatus.SEND_OK
    assert SendStatus.from_response_code(10) is SendStatus.FLUSH_DISK_TIMEOUT
    assert SendStatus.from_response_code(12) is SendStatus.FLUSH_SLAVE_TIMEOUT
    assert SendStatus.from_response_code(11) is SendStatus.SLAVE_NOT_AVAILABLE
    assert SendStatus.from_response_code(13) is None
    err = BrokerError(13, "the message body size over max value", addr="1.2.3.4:10911")
    assert err.code == ResponseCode.MESSAGE_ILLEGAL and err.remark.startswith("the message")
    assert "CODE: 13 (MESSAGE_ILLEGAL)" in str(err) and "1.2.3.4:10911" in str(err)


def test_namesrv_address_lists():
    assert parse_namesrv_addrs("a:1; b:2,c:3") == ["a:1", "b:2", "c:3"]
    assert parse_namesrv_addrs(["x:9876"]) == ["x:9876"]
    for bad in ("", "nohost", "a:b"):
        with pytest.raises(ClientError):
            parse_namesrv_addrs(bad)


# ---- background loop ---------------------------------------------------------------------------------


def test_loop_thread_runs_submits_and_refuses_reentry():
    lt = LoopThread("test-loop")
    with pytest.raises(ClientError):
        lt.submit(asyncio.sleep(0))
    lt.start()
    try:

        async def where() -> str:
            return threading.current_thread().name

        assert lt.run(where()) == "test-loop"
        assert lt.submit(where()).result(5) == "test-loop"

        async def reenter() -> None:
            lt.run(asyncio.sleep(0))

        with pytest.raises(ClientError, match="own event loop"):
            lt.run(reenter())

        async def boom() -> None:
            raise KeyError("x")

        with pytest.raises(KeyError):
            lt.run(boom())
    finally:
        lt.stop()
    assert not lt.running
    with pytest.raises(ClientError):
        lt.run(asyncio.sleep(0))
