"""Message trace (core/broker/message_trace.py, GET /api/messages/{id}/trace): records in the
Java client's TraceDataEncoder format, decoded, and joined with where this broker stored the
message. The unmodified Java client writing them is compat-tests/test_java_trace.py."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ferrymq.cli.embedded import EmbeddedBroker, embedded
from ferrymq.core.broker.message_trace import (
    PubRecord,
    SubAfterRecord,
    SubBeforeRecord,
    decode_trace_data,
)

A, B = "\x01", "\x02"


def pub(msg_id: str, offset_id: str = "OFFSETID", ts: int = 1000) -> str:
    # type, time, region, group, topic, msgId, tags, keys, storeHost, bodyLength, cost, msgType,
    # offsetMsgId, success (TraceDataEncoder, Pub)
    fields = ["Pub", ts, "DefaultRegion", "pg", "Orders", msg_id, "TagA", "k1", "10.0.0.1:10911", 5, 3, 0]
    return A.join(map(str, [*fields, offset_id, "true"])) + B


def sub_before(msg_id: str, req: str, ts: int, group: str = "cg") -> str:
    return A.join(map(str, ["SubBefore", ts, "DefaultRegion", group, req, msg_id, 0, "k1"])) + B


def sub_after(msg_id: str, req: str, cost: int, ok: bool, ts: int) -> str:
    return A.join(map(str, ["SubAfter", req, msg_id, cost, str(ok).lower(), "k1", 0, ts])) + B


def test_decodes_the_java_clients_records_and_skips_what_does_not_parse() -> None:
    text = pub("M1") + sub_before("M1", "r1", 2000) + sub_after("M1", "r1", 7, True, 2007)
    text += "Pub" + A + "not-a-number" + A * 12 + B + "EndTransaction" + A + "x" + B
    records = decode_trace_data(text)
    assert records == [
        PubRecord(1000, "pg", "Orders", "M1", "10.0.0.1:10911", 3, "OFFSETID", True, None),
        SubBeforeRecord(2000, "cg", "r1", "M1", 0),
        SubAfterRecord("r1", "M1", 7, True, 2007, None),
    ]
    # the old 13-field Pub (no offsetMsgId) and the 15-field one with the client host
    old = A.join(["Pub", "1", "r", "g", "T", "M2", "", "", "h:1", "1", "2", "0", "false"]) + B
    assert decode_trace_data(old)[0] == PubRecord(1, "g", "T", "M2", "h:1", 2, None, False, None)
    new = pub("M3")[:-1] + A + "client:1" + B
    assert decode_trace_data(new)[0].client_host == "client:1"  # type: ignore[union-attr]


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with embedded() as b:
        yield b


def test_trace_api_joins_store_publish_and_consumption(broker: EmbeddedBroker) -> None:
    broker.create_topic("Orders", queues=1)
    with httpx.Client(base_url=broker.admin_url) as http:
        sent = http.post("/api/topics/Orders/messages", json={"body": "traced"}).json()
        msg = http.get(f"/api/messages/{sent['msg_id']}").json()
        uniq = msg["unique_key"]
        # as Apache RocketMQ's broker stamps every message: a consumer's trace hook drops messages
        # without a region, so without these no consumption would ever be traced
        props = msg["properties"]
        assert (props.get("MSG_REGION"), props.get("TRACE_ON")) == ("DefaultRegion", "true")
        trace = pub(uniq, sent["msg_id"]) + sub_before(uniq, "r1", 2000)
        trace += sub_after(uniq, "r1", 7, True, 2007)
        trace += sub_before(uniq, "r2", 3000, group="other")  # still in its listener
        resp = http.post("/api/topics/RMQ_SYS_TRACE_TOPIC/messages", json={"body": trace, "keys": [uniq]})
        assert resp.status_code == 201, resp.text

        for ident in (sent["msg_id"], uniq):  # by offset id or by unique key
            t = http.get(f"/api/messages/{ident}/trace").json()
            assert t["stored"]["topic"] == "Orders" and t["stored"]["queue_offset"] == msg["queue_offset"]
            assert t["stored"]["store_timestamp"] == msg["store_timestamp"]
            assert [p["producer_group"] for p in t["published"]] == ["pg"]
            assert [(c["group"], c["end_timestamp"], c["success"]) for c in t["consumed"]] == [
                ("cg", 2007, True),
                ("other", None, None),
            ]
        assert http.get("/api/messages/NOSUCHID/trace").status_code == 404
