"""Message trace from the official Java client (rocketmq-client, unmodified) with trace on: one
JVM (compat-tests/java TraceRoundTrip) sends with ``DefaultMQProducer(group, true, null)`` and
consumes with ``DefaultMQPushConsumer(group, true, null)``; ferrymq's GET /api/messages/{id}/trace then says
where each message was stored and that the group consumed it, from the records the client wrote
to RMQ_SYS_TRACE_TOPIC. Skipped with the reason shown without java or mvn.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import java_support as js
import pytest

from ferrymq.cli.testing import FerryServer

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]


def traces(http: httpx.Client, msg_ids: list[str], timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    """Each message's trace once it names its send and a finished consumption (the client's trace
    dispatcher sends in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        out = {m: http.get(f"/api/messages/{m}/trace").raise_for_status().json() for m in msg_ids}
        complete = all(t["published"] and any(c["success"] for c in t["consumed"]) for t in out.values())
        if complete or time.monotonic() > deadline:
            return out
        time.sleep(0.2)


def test_java_trace_shows_store_publish_and_consumption(ferrymq_server: FerryServer, tmp_path: Path) -> None:
    topic, pg, cg = js.unique_name("trace"), js.unique_name("tpg"), js.unique_name("tcg")
    stop = tmp_path / "stop"
    args = [ferrymq_server.namesrv_addr, topic, pg, cg, "3", "--stop-file", str(stop)]
    with httpx.Client(base_url=ferrymq_server.admin_url, timeout=10) as http:
        http.post("/api/topics", json={"name": topic, "queues": 2}).raise_for_status()
        cmd = js.java_command("TraceRoundTrip", *args)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            lines = []
            for raw in proc.stdout:  # the JVM's watchdog ends it if it hangs
                lines += js.parse_results(raw)
                if js.of_type(lines, "consumedAll"):
                    break
            sends = js.of_type(lines, "send")
            assert len(sends) == 3 and js.of_type(lines, "consumedAll")[0]["ok"], lines
            found = traces(http, [s["msgId"] for s in sends])
        finally:
            stop.touch()
            proc.wait(60)
        assert proc.returncode == 0
        for s in sends:
            t = found[s["msgId"]]
            assert t["stored"] is not None, t
            assert (t["stored"]["topic"], t["stored"]["queue_id"], t["stored"]["queue_offset"]) == (
                topic,
                s["queueId"],
                s["queueOffset"],
            )
            [pub] = t["published"]
            assert pub["producer_group"] == pg and pub["topic"] == topic and pub["success"]
            assert pub["offset_msg_id"] == s["offsetMsgId"]
            done = [c for c in t["consumed"] if c["success"]]
            assert [c["group"] for c in done] == [cg], t
            assert done[0]["begin_timestamp"] >= t["stored"]["store_timestamp"]
            # the same trace by the offset message id
            by_offset = http.get(f"/api/messages/{s['offsetMsgId']}/trace").json()
            assert by_offset["published"] == t["published"]
