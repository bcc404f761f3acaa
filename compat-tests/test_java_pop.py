"""POP consumption with the unmodified Java 5.3.3 remoting push consumer (compat-tests/java
PopConsume, one JVM): the group is switched to POP with SET_MESSAGE_REQUEST_MODE, the consumer
learns it with QUERY_ASSIGNMENT (clientRebalance=false) and pops, acks what it consumed, and a
message its listener answers RECONSUME_LATER comes back after the invisible time the client set
(CHANGE_MESSAGE_INVISIBLETIME) with reconsume times 1. The group's consume offset ends past all.

Before: QUERY_ASSIGNMENT and the POP codes were answered REQUEST_CODE_NOT_SUPPORTED, so the
consumer never received a message.
"""

from __future__ import annotations

import asyncio

import java_support as js
import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from tests.test_consumer_support import broker_conn, create_topic

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]

TOPIC = "JPopTopic"
GROUP = "pop-java-group"


def test_java_push_consumer_in_pop_mode(shared_server: FerryServer) -> None:
    server = shared_server
    create_topic(server, TOPIC, 2)
    results = js.run_java("PopConsume", server.namesrv_addr, server.broker_addr, TOPIC, GROUP, timeout=90)
    msgs = js.of_type(results, "msg")
    assert js.of_type(results, "done")[0]["complete"] is True
    assert all(m["popCk"] for m in msgs), "consumed by pull, not by POP"
    got = sorted((str(m["body"]), int(m["reconsumeTimes"])) for m in msgs)
    assert got == [("fail", 0), ("fail", 1), ("ok-0", 0), ("ok-1", 0)]
    assert sum(asyncio.run(committed(server)).values()) == 3  # every message acked


async def committed(server: FerryServer) -> dict[int, int]:
    """QUERY_CONSUMER_OFFSET of each queue: the consume offsets POP acks moved."""
    conn = await broker_conn(server)
    try:
        out = {}
        for q in range(2):
            cmd = RemotingCommand(
                code=RequestCode.QUERY_CONSUMER_OFFSET,
                ext_fields={"consumerGroup": GROUP, "topic": TOPIC, "queueId": str(q)},
            )
            resp = await conn.invoke(cmd)
            out[q] = int(resp.ext_fields.get("offset", 0)) if resp.code == ResponseCode.SUCCESS else 0
        return out
    finally:
        conn.close()
