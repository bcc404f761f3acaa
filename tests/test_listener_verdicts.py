"""What a push-consumer listener's return value means: returning normally is success; raising,
returning RECONSUME_LATER (SUSPEND_CURRENT_QUEUE_A_MOMENT when orderly) or False is failure; any
other value is success, logged once with the listener's name."""

from __future__ import annotations

import logging
import threading

import pytest

from ferrymq.cli.embedded import EmbeddedBroker
from ferrymq.client import ConsumeOrderlyStatus, ConsumeStatus, Message, Producer, PushConsumer
from ferrymq.client.consume_service import FAILED, Verdicts

SUCCESS = [
    None,
    True,
    ConsumeStatus.CONSUME_SUCCESS,
    ConsumeOrderlyStatus.SUCCESS,
    "CONSUME_SUCCESS",
    "SUCCESS",
]
FAILURE = [
    FAILED,
    False,
    ConsumeStatus.RECONSUME_LATER,
    ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT,
    "RECONSUME_LATER",
    "SUSPEND_CURRENT_QUEUE_A_MOMENT",
]


def on_orders(msgs: object) -> None:
    return None


@pytest.mark.parametrize("result", SUCCESS)
def test_returning_normally_is_success(result: object, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ferrymq.client"):
        assert Verdicts(on_orders).succeeded(result)
    assert caplog.records == []


@pytest.mark.parametrize("result", FAILURE)
def test_failure_verdicts(result: object) -> None:
    assert not Verdicts(on_orders).succeeded(result)


def test_unexpected_value_is_success_logged_once_with_the_listeners_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    verdicts = Verdicts(on_orders)
    with caplog.at_level(logging.WARNING, logger="ferrymq.client"):
        assert verdicts.succeeded(42)
        assert verdicts.succeeded("done")
    assert len(caplog.records) == 1
    assert "on_orders" in caplog.records[0].getMessage()


def test_listener_returning_none_consumes_once(ferrymq_broker: EmbeddedBroker) -> None:
    """End to end: a listener without a return statement; nothing is sent back for retry."""
    ferrymq_broker.create_topic("verdict", queues=1)
    producer = Producer(namesrv_addr=ferrymq_broker.namesrv_addr, group="verdict-p")
    producer.start()
    try:
        for i in range(3):
            producer.send(Message("verdict", f"m{i}".encode()))
    finally:
        producer.shutdown()
    got: list[bytes] = []
    all_in = threading.Event()

    def listener(msgs: list) -> None:  # returns None: success
        got.extend(m.body for m in msgs)
        if len(got) >= 3:
            all_in.set()

    consumer = PushConsumer(ferrymq_broker.namesrv_addr, "verdict-g", consume_from="FIRST_OFFSET")
    consumer.subscribe("verdict")
    consumer.register_listener(listener)
    consumer.start()
    try:
        assert all_in.wait(30)
    finally:
        consumer.shutdown()  # after the listener returned: its verdict was acted on
    assert sorted(got) == [b"m0", b"m1", b"m2"]
    # a failure verdict sends each message back: to the retry topic, through the delay levels
    sent_back = ferrymq_broker.messages("%RETRY%verdict-g") + ferrymq_broker.messages("SCHEDULE_TOPIC_XXXX")
    assert [m.body for m in sent_back] == []
