"""ferrymq.client's SQL92 subscriptions (``subscribe(topic, sql=...)``) against a real
``ferrymq serve``: the push and lite-pull consumers receive exactly the messages whose
properties match, and a push consumer whose expression does not parse fails to start."""

from __future__ import annotations

import time

import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.client import BrokerError, LitePullConsumer, Message, MessageExt, Producer, PushConsumer
from ferrymq.client.errors import ValidationError
from ferrymq.core.remoting.codes import ResponseCode
from tests.test_consumer_push import FAST
from tests.test_consumer_support import Recorder, create_topic

SQL = "a > 2 AND (color IN ('red', 'blue') OR color IS NULL)"
LAST = "last"


def send_mix(server: FerryServer, topic: str) -> list[bytes]:
    """Messages with and without the properties; returns the bodies SQL matches, in order. The
    last one matches and marks the end (one queue: everything before it has been decided)."""
    wanted = []
    with Producer(server.namesrv_addr, group="sql-producer") as producer:
        for i in range(40):
            props = {"a": str(i % 6)}
            if i % 3 == 1:
                props["color"] = ("red", "green", "blue")[i % 9 // 3]
            if i % 7 == 6:
                props = {"a": "x"}  # does not parse as a number: not delivered
            body = b"m%d" % i
            assert producer.send(Message(topic, body, properties=props)).ok
            a = props.get("a", "")
            if a.isdigit() and int(a) > 2 and props.get("color") in ("red", "blue", None):
                wanted.append(body)
        assert producer.send(Message(topic, LAST.encode(), properties={"a": "9"})).ok
    return [*wanted, LAST.encode()]


def test_push_consumer_gets_exactly_the_matching_messages(shared_server: FerryServer) -> None:
    create_topic(shared_server, "SqlPushT", 1)
    rec = Recorder()
    c = PushConsumer(shared_server.namesrv_addr, "sql-push", consume_from="FIRST_OFFSET", **FAST)
    c.subscribe("SqlPushT", sql=SQL)
    c.register_listener(rec.listener("c"))
    c.start()
    try:
        wanted = send_mix(shared_server, "SqlPushT")
        assert rec.wait_for(lambda: LAST.encode() in rec.bodies())
        assert [m.body for m in rec.got["c"]] == wanted
    finally:
        c.shutdown()


def test_lite_pull_consumer_gets_exactly_the_matching_messages(shared_server: FerryServer) -> None:
    create_topic(shared_server, "SqlLiteT", 1)
    wanted = send_mix(shared_server, "SqlLiteT")
    got: list[MessageExt] = []
    c = LitePullConsumer(shared_server.namesrv_addr, "sql-lite", consume_from="FIRST_OFFSET")
    c.subscribe("SqlLiteT", sql=SQL)
    with c:
        deadline = time.monotonic() + 20
        while LAST.encode() not in [m.body for m in got] and time.monotonic() < deadline:
            got.extend(c.poll(timeout=1.0))
    assert [m.body for m in got] == wanted


def test_a_push_consumer_with_a_malformed_expression_does_not_start(shared_server: FerryServer) -> None:
    create_topic(shared_server, "SqlBadT", 1)
    c = PushConsumer(shared_server.namesrv_addr, "sql-bad", **FAST)
    c.subscribe("SqlBadT", sql="a >")
    c.register_listener(lambda msgs: True)
    with pytest.raises(BrokerError) as info:
        c.start()
    assert info.value.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
    assert "Unexpected" in str(info.value)


def test_subscribe_checks_its_arguments() -> None:
    c = LitePullConsumer("127.0.0.1:1", "sql-args")
    with pytest.raises(ValidationError):
        c.subscribe("T", "TagA", sql="a > 1")
    with pytest.raises(ValidationError):
        c.subscribe("T", sql="  ")
