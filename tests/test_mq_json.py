"""fastjson's MessageQueue-keyed maps (core/remoting/mq_json.py): what the broker writes for
mqadmin and for RESET_CONSUMER_CLIENT_OFFSET, and what the Python client reads back."""

from __future__ import annotations

from ferrymq.core.remoting.mq_json import dumps_mq_map, loads_mq_offsets, with_mq_map


def test_object_keys_as_fastjson_writes_them() -> None:
    text = dumps_mq_map({("T", "broker-a", 1): {"maxOffset": 3}})
    assert text == '{{"brokerName":"broker-a","queueId":1,"topic":"T"}:{"maxOffset":3}}'


def test_with_other_fields() -> None:
    body = with_mq_map({"topicPutTps": 0.0}, "offsetTable", {})
    assert body == b'{"offsetTable":{},"topicPutTps":0.0}'
    assert with_mq_map({}, "offsetTable", {}) == b'{"offsetTable":{}}'


def test_reset_body_round_trip() -> None:
    table = {("Top\\ic\u00e9", "b", 0): 5, ("T", "b", 7): 0}
    body = with_mq_map({}, "offsetTable", table)
    assert loads_mq_offsets(body) == table


def test_malformed_reset_body_is_empty() -> None:
    assert loads_mq_offsets(b'{"offsetTable":[]}') == {}
    assert loads_mq_offsets(b"[]") == {}
